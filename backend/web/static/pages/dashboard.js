// Dashboard: status cards, the latest activity and live quick-action results, refreshed every 2 s.
(() => {
  "use strict";
  const App = window.App;
  const REFRESH_MS = 2000;
  const MAX_RESULTS = 6;
  const ACTIVITY_SIZE = 8;

  const updated = App.byTestId("stats-updated");
  const statsError = App.byTestId("stats-error");
  const quickActions = App.byTestId("quick-actions");
  const results = App.byTestId("quick-action-results");
  const activity = App.byTestId("recent-activity");
  const activityEmpty = App.byTestId("activity-empty");
  const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

  async function loadStats() {
    try {
      const stats = await App.api("GET", "/api/stats");
      for (const element of document.querySelectorAll("[data-stat]")) {
        const value = stats[element.dataset.stat];
        element.textContent = Number.isInteger(value) ? String(value) : "–";
        element.dataset.state = "loaded";
      }
      App.setNavCount(stats.in_tsq);
      statsError.hidden = true;
      updated.textContent = `Live · updated ${clock.format(new Date())}`;
    } catch (error) {
      App.handleApiError(error, (apiError) => {
        statsError.textContent = `Statistics unavailable: ${apiError.message}`;
        statsError.hidden = false;
        updated.textContent = "Statistics unavailable";
      });
    }
  }

  function activityItem(command) {
    const item = App.cloneTemplate("activity-item-template");
    item.dataset.commandId = command.command_id;
    item.dataset.href = App.commandUrl(command.command_id);
    App.setStatus(App.byTestId("activity-status", item), command.status);
    App.setCommandLink(App.byTestId("activity-link", item), command.command_id);
    const behavior = command.behavior && command.behavior.type;
    App.fill(item, {
      summary: `${command.command_type} · ${App.behaviorLabel(behavior)}`,
      updated_at: command.updated_at,
    });
    return item;
  }

  async function loadActivity() {
    try {
      const data = await App.api("GET", `/api/commands?page=1&page_size=${ACTIVITY_SIZE}`);
      if (activity.matches(":hover") && activity.querySelector('[data-testid="activity-item"]')) {
        return; // the pointer is on the list: do not move items under it
      }
      activity.replaceChildren(...data.items.map(activityItem));
      activity.setAttribute("aria-busy", "false");
      activityEmpty.hidden = data.items.length > 0;
    } catch (error) {
      App.handleApiError(error, () => activity.setAttribute("aria-busy", "false"));
    }
  }

  /** Follow each sent command that has not settled yet. */
  async function loadQuickResults() {
    const open = Array.from(results.querySelectorAll('[data-testid="quick-action-result"]')).filter(
      (item) => !App.TERMINAL_STATUSES.has(item.dataset.status),
    );
    await Promise.all(
      open.map(async (item) => {
        try {
          const command = await App.api("GET", `/api/commands/${encodeURIComponent(item.dataset.commandId)}`);
          setResultStatus(item, command.status);
        } catch (error) {
          App.handleApiError(error, () => {});
        }
      }),
    );
  }

  function setResultStatus(item, status) {
    item.dataset.status = status;
    App.setStatus(App.byTestId("quick-action-status", item), status);
  }

  // One refresh at a time: a refresh asked for while one runs happens right after it.
  let timer = null;
  let running = false;
  let again = false;

  function refresh() {
    clearTimeout(timer);
    if (running) {
      again = true;
      return;
    }
    running = true;
    const work = document.hidden ? Promise.resolve() : Promise.all([loadStats(), loadActivity(), loadQuickResults()]);
    work.finally(() => {
      running = false;
      if (again) {
        again = false;
        refresh();
      } else {
        timer = setTimeout(refresh, REFRESH_MS);
      }
    });
  }

  async function sendQuickCommand(button) {
    const behavior = button.dataset.behavior;
    App.setBusy(button, true);
    try {
      const created = await App.api("POST", "/api/commands", {
        command_type: quickActions.dataset.commandType,
        domain: quickActions.dataset.commandDomain,
        payload: {},
        behavior: { type: behavior },
      });
      const item = App.cloneTemplate("quick-action-result-template");
      item.dataset.behavior = behavior;
      item.dataset.commandId = created.command_id;
      item.dataset.href = App.commandUrl(created.command_id);
      App.fill(item, { behavior: App.behaviorLabel(behavior) });
      App.setCommandLink(App.byTestId("quick-action-link", item), created.command_id);
      setResultStatus(item, created.status);
      results.prepend(item);
      while (results.children.length > MAX_RESULTS) {
        results.lastElementChild.remove();
      }
      refresh();
    } catch (error) {
      App.handleApiError(error, App.flashApiError);
    } finally {
      App.setBusy(button, false);
    }
  }

  quickActions.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-behavior]");
    if (button !== null) {
      sendQuickCommand(button);
    }
  });
  App.linkRows(results);
  App.linkRows(activity);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      refresh();
    }
  });
  refresh();
})();
