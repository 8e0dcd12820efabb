// Audit trail: events of one command, searched by id (kept in ?command_id=).
(() => {
  "use strict";
  const App = window.App;

  const form = App.byTestId("audit-form");
  const input = App.byTestId("audit-command-id");
  const submit = App.byTestId("audit-submit");
  const errorBox = App.byTestId("audit-error");
  const results = App.byTestId("audit-results");
  const prompt = App.byTestId("audit-prompt");
  const loading = App.byTestId("audit-loading");
  let sequence = 0;

  function idFromUrl() {
    return (new URLSearchParams(window.location.search).get("command_id") || "").trim();
  }

  async function load(commandId) {
    const mine = ++sequence;
    errorBox.hidden = true;
    results.hidden = true;
    prompt.hidden = commandId !== "";
    loading.hidden = commandId === "";
    if (commandId === "") {
      return;
    }
    App.setBusy(submit, true);
    try {
      const data = await App.api("GET", `/api/audit?${new URLSearchParams({ command_id: commandId })}`);
      if (mine !== sequence) {
        return;
      }
      App.setCommandLink(App.byTestId("audit-command-link"), data.command_id || commandId);
      App.renderAuditEvents(results, data.events);
      results.hidden = false;
    } catch (error) {
      App.handleApiError(error, (apiError) => {
        if (mine === sequence) {
          errorBox.textContent = apiError.message;
          errorBox.hidden = false;
        }
      });
    } finally {
      if (mine === sequence) {
        loading.hidden = true;
      }
      App.setBusy(submit, false);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const commandId = input.value.trim();
    const query = commandId === "" ? "" : `?${new URLSearchParams({ command_id: commandId })}`;
    if (query !== window.location.search) {
      window.history.pushState(null, "", `${window.location.pathname}${query}`);
    }
    load(commandId);
  });
  window.addEventListener("popstate", () => {
    input.value = idFromUrl();
    load(input.value);
  });

  input.value = idFromUrl();
  load(input.value);
})();
