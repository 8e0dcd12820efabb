// Command detail: the command, its last error and audit trail; polls while it is in flight.
(() => {
  "use strict";
  const App = window.App;
  const POLL_MS = 2000;
  const IN_FLIGHT = new Set(["PENDING", "IN_PROGRESS"]);

  const detail = App.byTestId("command-detail");
  const commandId = detail.dataset.commandId;
  const content = App.byTestId("command-body");
  const notFound = App.byTestId("command-not-found");
  const errorBox = App.byTestId("command-error");
  const refreshButton = App.byTestId("command-refresh");
  let timer = null;

  function render(command) {
    App.setStatus(App.byTestId("command-status", detail), command.status);
    const lastError = command.last_error || {};
    App.fill(content, {
      domain: command.domain,
      command_type: command.command_type,
      attempts: `${command.attempts} / ${command.max_attempts}`,
      created_at: command.created_at,
      processed_at: command.processed_at,
      correlation_id: command.correlation_id,
      test_id: command.test_id,
      error_code: lastError.code,
      error_message: lastError.message,
      behavior: App.formatJson(command.behavior),
      payload: App.formatJson(command.payload),
      result: App.formatJson(command.result),
    });
    App.byTestId("command-error-code", content).hidden = !command.last_error;
    App.renderAuditEvents(content, command.audit || []);
    content.hidden = false;
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
        timer = setTimeout(load, POLL_MS);
      }
    } catch (error) {
      App.handleApiError(error, (apiError) => {
        const box = apiError.status === 404 ? notFound : errorBox;
        box.textContent = apiError.message;
        box.hidden = false;
        if (apiError.status === 404) {
          content.hidden = true;
        }
      });
    } finally {
      App.setBusy(refreshButton, false);
    }
  }

  refreshButton.addEventListener("click", load);
  load();
})();
