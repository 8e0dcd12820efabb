// Dashboard: statistics refreshed every 2 s, and one-click test commands.
(() => {
  "use strict";
  const App = window.App;
  const REFRESH_MS = 2000;
  const MAX_RESULTS = 10;

  const updated = App.byTestId("stats-updated");
  const statsError = App.byTestId("stats-error");
  const quickActions = App.byTestId("quick-actions");
  const results = App.byTestId("quick-action-results");

  async function loadStats() {
    try {
      const stats = await App.api("GET", "/api/stats");
      for (const element of document.querySelectorAll("[data-stat]")) {
        const value = stats[element.dataset.stat];
        element.textContent = Number.isInteger(value) ? String(value) : "–";
      }
      statsError.hidden = true;
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      App.handleApiError(error, (apiError) => {
        statsError.textContent = `Statistics unavailable: ${apiError.message}`;
        statsError.hidden = false;
      });
    }
  }

  // One request at a time: a refresh asked for while one runs happens right after it.
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
    const work = document.hidden ? Promise.resolve() : loadStats();
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
        payload: {},
        behavior: { type: behavior },
      });
      const item = App.cloneTemplate("quick-action-result-template");
      item.dataset.behavior = behavior;
      item.dataset.commandId = created.command_id;
      App.fill(item, { behavior });
      App.setCommandLink(App.byTestId("quick-action-link", item), created.command_id);
      App.setStatus(App.byTestId("quick-action-status", item), created.status);
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
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      refresh();
    }
  });
  refresh();
})();
