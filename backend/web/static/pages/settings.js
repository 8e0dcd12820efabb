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
    } catch (error) {
      App.handleApiError(error, (apiError) => App.showApiError(form, errorBox, apiError));
    } finally {
      App.setBusy(submit, false);
    }
  });
  reloadButton.addEventListener("click", load);
  load();
})();
