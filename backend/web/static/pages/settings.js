// Settings: worker and retry configuration, loaded from and saved to /api/config.
(() => {
  "use strict";
  const App = window.App;

  const form = App.byTestId("settings-form");
  const errorBox = App.byTestId("settings-error");
  const saved = App.byTestId("settings-saved");
  const submit = App.byTestId("settings-submit");
  const reloadButton = App.byTestId("settings-reload");
  const controls = Array.from(form.querySelectorAll("[data-field]"));
  let loaded = {};

  function getPath(object, path) {
    return path.split(".").reduce((value, key) => (value == null ? undefined : value[key]), object);
  }

  function setPath(object, path, value) {
    const keys = path.split(".");
    const last = keys.pop();
    let target = object;
    for (const key of keys) {
      if (typeof target[key] !== "object" || target[key] === null) {
        target[key] = {};
      }
      target = target[key];
    }
    target[last] = value;
  }

  function fillForm(config) {
    loaded = config;
    for (const control of controls) {
      const value = getPath(config, control.dataset.field);
      control.value = value == null ? "" : String(value);
    }
  }

  /** The loaded config (unknown keys kept) with the form's values; empty fields become null. */
  function readForm() {
    const config = structuredClone(loaded);
    for (const control of controls) {
      setPath(config, control.dataset.field, App.numberOf(control));
    }
    return config;
  }

  async function load() {
    App.clearErrors(form);
    saved.textContent = "";
    App.setBusy(reloadButton, true);
    try {
      fillForm(await App.api("GET", "/api/config"));
    } catch (error) {
      App.handleApiError(error, (apiError) => App.showApiError(form, errorBox, apiError));
    } finally {
      App.setBusy(reloadButton, false);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    App.clearErrors(form);
    saved.textContent = "";
    App.setBusy(submit, true);
    try {
      fillForm(await App.api("PUT", "/api/config", readForm()));
      saved.textContent = "Settings saved.";
      loadEffective(); // PUT answers once the live workers follow: show what they use now
    } catch (error) {
      App.handleApiError(error, (apiError) => App.showApiError(form, errorBox, apiError));
    } finally {
      App.setBusy(submit, false);
    }
  });
  const liveRows = App.byTestId("live-settings-rows");

  function cell(text, label) {
    const td = document.createElement("td");
    td.textContent = text;
    td.dataset.label = label;
    return td;
  }

  async function loadEffective() {
    try {
      const report = await App.api("GET", "/api/config/effective");
      const why = new Map(report.differences.map((d) => [`${d.worker_id}/${d.setting}`, d.why]));
      const rows = [];
      for (const worker of report.workers) {
        for (const [name, value] of Object.entries(worker.effective || {})) {
          const row = document.createElement("tr");
          row.dataset.worker = worker.worker_id;
          row.dataset.setting = name;
          row.append(
            cell(worker.worker_id, "Worker"),
            cell(name.replaceAll("_", " "), "Setting"),
            cell(JSON.stringify(report.stored[name] ?? null), "Stored"),
            cell(JSON.stringify(value), "In use"),
            cell(why.get(`${worker.worker_id}/${name}`) || "—", "Why it differs"),
          );
          rows.push(row);
        }
      }
      if (rows.length === 0) {
        const empty = document.createElement("tr");
        empty.append(cell("No live worker reports its settings.", ""));
        empty.firstChild.colSpan = 5;
        rows.push(empty);
      }
      liveRows.replaceChildren(...rows);
    } catch (error) {
      App.handleApiError(error, (apiError) => {
        liveRows.replaceChildren(cell(`Could not load the workers' settings: ${apiError.message}`, ""));
      });
    }
  }

  reloadButton.addEventListener("click", () => { load(); loadEffective(); });
  load();
  loadEffective();
})();
