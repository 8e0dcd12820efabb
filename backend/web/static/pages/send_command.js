// Send Command: one command, or a bulk batch followed live over the task's event stream.
(() => {
  "use strict";
  const App = window.App;

  const page = document.getElementById("main");
  const sendForm = App.byTestId("send-form");
  const bulkForm = App.byTestId("bulk-form");
  const commandType = App.byTestId("command-type");
  const commandTypeHint = document.getElementById("command-type-hint");
  const behaviorType = App.byTestId("behavior-type");
  const payload = App.byTestId("payload");
  const sendError = App.byTestId("send-error");
  const sendSubmit = App.byTestId("send-submit");
  const sendResult = App.byTestId("send-result");
  const sendNote = App.byTestId("send-result-note");
  const bulkCount = App.byTestId("bulk-count");
  const bulkError = App.byTestId("bulk-error");
  const bulkSubmit = App.byTestId("bulk-submit");
  const bulkPanel = App.byTestId("bulk-panel");
  const bulkProgress = App.byTestId("bulk-progress");
  const bulkSent = App.byTestId("bulk-sent");
  const bulkText = App.byTestId("bulk-progress-text");
  const bulkState = App.byTestId("bulk-state");
  const bulkResult = App.byTestId("bulk-result");
  const bulkNotes = App.byTestId("bulk-notes");

  const BEHAVIOR_FIELDS = ["execution_time_ms", "transient_failures", "error_code", "error_message"];

  // ---- command types ----

  function describeSelectedType() {
    const option = commandType.selectedOptions[0];
    commandTypeHint.textContent = option && option.dataset.description ? option.dataset.description : "";
  }

  function applyBehavior(behavior) {
    const spec = typeof behavior === "string" ? { type: behavior } : behavior;
    if (spec === null || typeof spec !== "object") {
      return;
    }
    if (typeof spec.type === "string") {
      behaviorType.value = spec.type;
    }
    for (const name of BEHAVIOR_FIELDS) {
      if (spec[name] !== undefined && spec[name] !== null) {
        sendForm.elements[name].value = String(spec[name]);
      }
    }
  }

  async function loadCommandTypes() {
    try {
      const types = await App.api("GET", "/api/command-types");
      const selected = commandType.value;
      commandType.replaceChildren(
        ...types.map((type) => {
          const option = new Option(`${type.domain} · ${type.name}`, type.name);
          option.dataset.domain = type.domain;
          option.dataset.description = type.description || "";
          option.dataset.defaultBehavior = JSON.stringify(type.default_behavior ?? null);
          return option;
        }),
      );
      if (types.some((type) => type.name === selected)) {
        commandType.value = selected;
      }
      describeSelectedType();
    } catch (error) {
      App.handleApiError(error, (apiError) => {
        commandTypeHint.textContent = `Command types unavailable (${apiError.message}); sending TestCommand.`;
      });
    }
  }

  commandType.addEventListener("change", () => {
    describeSelectedType();
    const option = commandType.selectedOptions[0];
    if (option && option.dataset.defaultBehavior) {
      applyBehavior(JSON.parse(option.dataset.defaultBehavior));
    }
  });

  // ---- reading the form ----

  function readBehavior() {
    const behavior = { type: behaviorType.value };
    for (const name of BEHAVIOR_FIELDS) {
      const control = sendForm.elements[name];
      if (control.value.trim() === "") {
        continue;
      }
      behavior[name] = control.dataset.kind === "int" ? App.numberOf(control) : control.value;
    }
    return behavior;
  }

  /** The payload object, or null after showing why the textarea is not one. */
  function readPayload() {
    let value;
    try {
      value = App.parseJsonInput(payload);
    } catch (error) {
      App.showErrors(page, sendError, "Payload is not valid JSON.", [["payload", error.message]]);
      return null;
    }
    if (value === undefined) {
      return {};
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      App.showErrors(page, sendError, "Payload must be a JSON object.", [
        ["payload", 'Write an object such as {"key": "value"}, or leave it empty.'],
      ]);
      return null;
    }
    return value;
  }

  // ---- single command ----

  sendForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    App.clearErrors(page);
    sendResult.hidden = true;
    sendNote.hidden = true;
    const payloadValue = readPayload();
    if (payloadValue === null) {
      return;
    }
    App.setBusy(sendSubmit, true);
    try {
      const created = await App.api("POST", "/api/commands", {
        command_type: commandType.value,
        domain: commandType.selectedOptions[0]?.dataset.domain,
        payload: payloadValue,
        behavior: readBehavior(),
      });
      App.setCommandLink(App.byTestId("send-result-link"), created.command_id);
      App.setStatus(App.byTestId("send-result-status"), created.status);
      sendResult.dataset.commandId = created.command_id;
      sendResult.hidden = false;
      // Accepted, but it will reach the troubleshooting queue first (the API says why).
      sendNote.textContent = typeof created.note === "string" ? created.note : "";
      sendNote.dataset.expected = typeof created.expected === "string" ? created.expected : "";
      sendNote.hidden = sendNote.textContent === "";
    } catch (error) {
      App.handleApiError(error, (apiError) => App.showApiError(page, sendError, apiError));
    } finally {
      App.setBusy(sendSubmit, false);
    }
  });

  // ---- bulk ----

  function setBulkState(state) {
    bulkState.textContent = state;
    bulkState.dataset.state = state;
  }

  function showProgress(data, total) {
    if (typeof data.progress === "number") {
      bulkProgress.value = Math.min(1, Math.max(0, data.progress));
    }
    if (typeof data.text === "string") {
      bulkText.textContent = data.text;
    }
    if (Number.isInteger(data.sent)) {
      bulkSent.textContent = `${data.sent} / ${Number.isInteger(data.total) ? data.total : total}`;
    }
  }

  /** The 202's notes: shares of the bulk that will reach the troubleshooting queue first. */
  function showNotes(notes) {
    bulkNotes.replaceChildren(
      ...notes.map((note) => {
        const item = document.createElement("li");
        item.dataset.testid = "bulk-note";
        item.dataset.field = String(note.field ?? "");
        item.dataset.expected = String(note.expected ?? "");
        item.textContent = `${note.count} command(s): ${note.note}`;
        return item;
      }),
    );
    bulkNotes.hidden = notes.length === 0;
  }

    function followTask(taskId, total) {
    let finalText = null;
    App.followTaskStream(`/api/tasks/${encodeURIComponent(taskId)}/stream`, {
      onEvent(event) {
        // task_completed carries its counts in data.result ({"sent", "total"}).
        const raw = event.data || {};
        const data = { ...(raw.result && typeof raw.result === "object" ? raw.result : {}), ...raw };
        showProgress(data, total);
        if (event.event_type === "progress_update") {
          setBulkState("running");
        } else if (event.event_type === "task_completed") {
          bulkProgress.value = 1;
          setBulkState("completed");
          const sent = Number.isInteger(data.sent) ? data.sent : total;
          finalText = `Sent ${sent} of ${Number.isInteger(data.total) ? data.total : total} commands.`;
        } else if (event.event_type === "task_failed") {
          setBulkState("failed");
          finalText = `Bulk send failed: ${data.text || data.error || "no reason given"}.`;
        }
      },
      onState: setBulkState,
      onEnd(outcome) {
        if (finalText === null) {
          setBulkState(outcome.kind === "error" ? "error" : "closed");
          finalText = `Stream ended before the task finished: ${outcome.message}.`;
        }
        bulkResult.textContent = finalText;
        bulkResult.hidden = false;
        App.setBusy(bulkSubmit, false);
      },
    });
  }

  bulkForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    App.clearErrors(page);
    const count = App.numberOf(bulkCount);
    App.setBusy(bulkSubmit, true);
    let accepted;
    try {
      accepted = await App.api("POST", "/api/commands/bulk", {
        command_type: commandType.value,
        domain: commandType.selectedOptions[0]?.dataset.domain,
        count,
        behavior: readBehavior(),
      });
    } catch (error) {
      App.setBusy(bulkSubmit, false);
      App.handleApiError(error, (apiError) => App.showApiError(page, bulkError, apiError));
      return;
    }
    App.byTestId("bulk-task-id").textContent = accepted.task_id;
    bulkPanel.dataset.taskId = accepted.task_id;
    bulkProgress.value = 0;
    bulkSent.textContent = `0 / ${count}`;
    bulkText.textContent = "";
    bulkResult.hidden = true;
    showNotes(Array.isArray(accepted.notes) ? accepted.notes : []);
    setBulkState("running");
    bulkPanel.hidden = false;
    followTask(accepted.task_id, count);
  });

  loadCommandTypes();
})();
