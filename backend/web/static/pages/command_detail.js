// Command detail: the command, its last error and audit trail; polls while it is in flight,
// quickly at first (most commands settle within a second) and every 2 s after that.
(() => {
  "use strict";
  const App = window.App;
  const FIRST_POLL_MS = 250;
  const MAX_POLL_MS = 2000;
  const IN_FLIGHT = new Set(["PENDING", "IN_PROGRESS"]);

  const detail = App.byTestId("command-detail");
  const commandId = detail.dataset.commandId;
  const content = App.byTestId("command-body");
  const notFound = App.byTestId("command-not-found");
  const errorBox = App.byTestId("command-error");
  const refreshButton = App.byTestId("command-refresh");
  const loading = App.byTestId("command-loading");
  const statusBadge = App.byTestId("command-status");
  App.setIdText(App.byTestId("command-id"), commandId);
  let timer = null;
  let pollMs = FIRST_POLL_MS;

  function render(command) {
    App.setStatus(statusBadge, command.status);
    const lastError = command.last_error || {};
    App.fill(content, {
      domain: command.domain,
      command_type: command.command_type,
      attempts: `${command.attempts} / ${command.max_attempts}`,
      created_at: command.created_at,
      processed_at: command.processed_at,
      test_id: command.test_id,
      error_code: lastError.code,
      error_message: lastError.message,
      behavior: App.formatJson(command.behavior),
      payload: App.formatJson(command.payload),
      result: App.formatJson(command.result),
    });
    App.byTestId("command-error-code", content).hidden = !command.last_error;
    App.setIdText(App.byTestId("command-correlation-id", content), command.correlation_id || "—", "correlation id");
    App.renderAuditEvents(content, command.audit || []);
    content.hidden = false;
    loading.hidden = true;
  }

  async function load() {
    clearTimeout(timer);
    App.setBusy(refreshButton, true);
    try {
      const command = await App.api("GET", `/api/commands/${encodeURIComponent(commandId)}`);
      errorBox.hidden = true;
      notFound.hidden = true;
      render(command);
      if (IN_FLIGHT.has(command.status)) {
        timer = setTimeout(load, pollMs);
        pollMs = Math.min(MAX_POLL_MS, pollMs * 2);
      }
    } catch (error) {
      App.handleApiError(error, (apiError) => {
        const box = apiError.status === 404 ? notFound : errorBox;
        box.textContent = apiError.message;
        box.hidden = false;
        loading.hidden = true;
        if (apiError.status === 404) {
          content.hidden = true;
          statusBadge.hidden = true;
        }
      });
    } finally {
      App.setBusy(refreshButton, false);
    }
  }

  refreshButton.addEventListener("click", () => {
    pollMs = FIRST_POLL_MS;
    load();
  });
  load();
})();
