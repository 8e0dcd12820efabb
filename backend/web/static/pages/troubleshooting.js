// Troubleshooting queue: per-row and bulk retry / cancel / complete; reloads after each action.
(() => {
  "use strict";
  const App = window.App;

  const page = document.getElementById("main");
  const body = App.byTestId("tsq-body");
  const table = App.byTestId("tsq-table");
  const total = App.byTestId("tsq-total");
  const empty = App.byTestId("tsq-empty");
  const errorBox = App.byTestId("tsq-error");
  const selectAll = App.byTestId("tsq-select-all");
  const selectedCount = App.byTestId("tsq-selected-count");
  const bulkButtons = Array.from(document.querySelectorAll("[data-bulk-action]"));
  const bulkResults = App.byTestId("tsq-bulk-results");
  const completeResult = App.byTestId("tsq-complete-result");
  const refreshButton = App.byTestId("tsq-refresh");

  const bulkBar = App.byTestId("tsq-bulk-bar");
  const options = App.byTestId("tsq-options");

  const ACTION_LABELS = { retry: "Retry", cancel: "Cancel", complete: "Complete" };
  // What the confirmation says each bulk action does.
  const BULK_EFFECTS = {
    retry: "They are sent to the workers again.",
    cancel: "They are marked Canceled and leave the queue for good.",
    complete: "They are marked Completed without running again.",
  };
  const selected = new Set();
  let busy = false;

  // ---- selection ----

  function rowBoxes() {
    return Array.from(body.querySelectorAll('[data-role="select"]'));
  }

  function syncSelection() {
    const boxes = rowBoxes();
    const checked = boxes.filter((box) => box.checked).length;
    selectAll.checked = boxes.length > 0 && checked === boxes.length;
    selectAll.indeterminate = checked > 0 && checked < boxes.length;
    selectAll.disabled = boxes.length === 0;
    selectedCount.textContent = `${selected.size} selected`;
    bulkBar.dataset.active = String(selected.size > 0);
    for (const box of boxes) {
      box.closest("tr").classList.toggle("selected", box.checked);
    }
    for (const button of bulkButtons) {
      button.disabled = busy || selected.size === 0;
    }
  }

  selectAll.addEventListener("change", () => {
    for (const box of rowBoxes()) {
      box.checked = selectAll.checked;
      const id = box.closest("tr").dataset.commandId;
      if (box.checked) {
        selected.add(id);
      } else {
        selected.delete(id);
      }
    }
    syncSelection();
  });

  body.addEventListener("change", (event) => {
    const box = event.target.closest('[data-role="select"]');
    if (box === null) {
      return;
    }
    const id = box.closest("tr").dataset.commandId;
    if (box.checked) {
      selected.add(id);
    } else {
      selected.delete(id);
    }
    syncSelection();
  });

  // ---- loading ----

  function renderRow(item) {
    const row = App.cloneTemplate("tsq-row-template");
    row.dataset.commandId = item.command_id;
    row.dataset.href = App.commandUrl(item.command_id);
    const box = App.byTestId("tsq-select", row);
    box.checked = selected.has(item.command_id);
    box.setAttribute("aria-label", `Select command ${item.command_id}`);
    for (const button of row.querySelectorAll("[data-action]")) {
      button.setAttribute("aria-label", `${ACTION_LABELS[button.dataset.action]} command ${item.command_id}`);
    }
    App.setCommandLink(App.byTestId("tsq-command-link", row), item.command_id);
    const lastError = item.last_error || {};
    App.fill(row, {
      domain: item.domain,
      command_type: item.command_type,
      behavior: App.behaviorLabel(item.behavior && item.behavior.type),
      attempts: `${item.attempts} / ${item.max_attempts}`,
      error_code: lastError.code,
      error_message: lastError.message,
      updated_at: item.updated_at,
    });
    return row;
  }

  async function load() {
    table.setAttribute("aria-busy", "true");
    App.setBusy(refreshButton, true);
    try {
      const data = await App.api("GET", "/api/tsq");
      errorBox.hidden = true;
      const ids = new Set(data.items.map((item) => item.command_id));
      for (const id of Array.from(selected)) {
        if (!ids.has(id)) {
          selected.delete(id);
        }
      }
      body.replaceChildren(...data.items.map(renderRow));
      empty.hidden = data.items.length > 0;
      bulkBar.hidden = data.items.length === 0; // nothing to select
      const shown = data.items.length < data.total ? ` (showing the latest ${data.items.length})` : "";
      total.textContent = `${data.total} ${data.total === 1 ? "command" : "commands"} in the queue${shown}`;
      App.setNavCount(data.total);
    } catch (error) {
      App.handleApiError(error, (apiError) => {
        body.replaceChildren();
        errorBox.textContent = apiError.message;
        errorBox.hidden = false;
        total.textContent = "Queue unavailable";
        App.setNavCount(null);
      });
    } finally {
      table.setAttribute("aria-busy", "false");
      App.setBusy(refreshButton, false);
      syncSelection();
    }
  }

  // ---- actions ----

  function setBusyAll(value) {
    busy = value;
    for (const button of page.querySelectorAll("[data-action]")) {
      button.disabled = value;
    }
    syncSelection();
  }

  /** Body of a row's Complete: {"result": ...} when the textarea holds JSON; null if invalid. */
  function completeBody() {
    App.clearErrors(page);
    try {
      const result = App.parseJsonInput(completeResult);
      return result === undefined ? {} : { result };
    } catch (error) {
      options.open = true;
      App.showErrors(page, errorBox, "The result for Complete is not valid JSON.", [
        ["result", error.message],
      ]);
      return null;
    }
  }

  async function runRowAction(action, commandId) {
    const requestBody = action === "complete" ? completeBody() : {};
    if (requestBody === null) {
      return;
    }
    setBusyAll(true);
    try {
      const outcome = await App.api(
        "POST",
        `/api/tsq/${encodeURIComponent(commandId)}/${action}`,
        requestBody,
      );
      App.flash(`${ACTION_LABELS[action]}: command ${App.shortId(outcome.command_id)} is now ${App.statusLabel(outcome.status)}.`, {
        level: "success",
      });
    } catch (error) {
      App.handleApiError(error, App.flashApiError);
    } finally {
      setBusyAll(false);
      await load();
    }
  }

  function showBulkResults(action, results) {
    bulkResults.replaceChildren(
      ...results.map((result) => {
        const item = App.cloneTemplate("tsq-bulk-result-template");
        item.dataset.ok = String(Boolean(result.ok));
        item.dataset.commandId = result.command_id;
        App.fill(item, {
          command_id: App.shortId(result.command_id),
          outcome: result.ok ? App.statusLabel(result.status) : `not changed: ${result.error || "unknown error"}`,
        });
        return item;
      }),
    );
    bulkResults.hidden = false;
    const failed = results.filter((result) => !result.ok).length;
    App.flash(
      `${ACTION_LABELS[action]} selected: ${results.length - failed} succeeded, ${failed} failed.`,
      { level: failed === 0 ? "success" : "error" },
    );
  }

  async function runBulkAction(action) {
    const commandIds = Array.from(selected);
    const count = `${commandIds.length} ${commandIds.length === 1 ? "command" : "commands"}`;
    const confirmed = await App.confirmAction({
      title: `${ACTION_LABELS[action]} ${count}?`,
      message: BULK_EFFECTS[action],
      confirmLabel: `${ACTION_LABELS[action]} ${count}`,
      danger: action === "cancel",
    });
    if (!confirmed) {
      return;
    }
    setBusyAll(true);
    try {
      const response = await App.api("POST", "/api/tsq/bulk", { action, command_ids: commandIds });
      showBulkResults(action, response.results);
      selected.clear();
    } catch (error) {
      App.handleApiError(error, App.flashApiError);
    } finally {
      setBusyAll(false);
      await load();
    }
  }

  body.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button !== null) {
      runRowAction(button.dataset.action, button.closest("tr").dataset.commandId);
    }
  });
  for (const button of bulkButtons) {
    button.addEventListener("click", () => runBulkAction(button.dataset.bulkAction));
  }
  // A click on the checkbox cell toggles the checkbox; anywhere else on a row opens the command.
  body.addEventListener("click", (event) => {
    const cell = event.target.closest("td.select-cell");
    if (cell !== null && event.target === cell) {
      cell.querySelector("input").click();
    }
  });
  App.linkRows(body);
  refreshButton.addEventListener("click", load);
  load();
})();
