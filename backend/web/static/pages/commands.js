// Commands browser: filters and page live in the query string, so reload and back keep them.
(() => {
  "use strict";
  const App = window.App;

  const form = App.byTestId("commands-filter-form");
  const body = App.byTestId("commands-body");
  const table = App.byTestId("commands-table");
  const total = App.byTestId("commands-total");
  const empty = App.byTestId("commands-empty");
  const errorBox = App.byTestId("commands-error");
  const prev = App.byTestId("page-prev");
  const next = App.byTestId("page-next");
  const pageInfo = App.byTestId("page-info");
  const pageNumbers = App.byTestId("page-numbers");
  const range = App.byTestId("commands-range");
  const foot = App.byTestId("commands-foot");
  const pageSizeSelect = App.byTestId("filter-page-size");

  const TEXT_FILTERS = ["status", "domain", "command_type"];
  const TIME_FILTERS = ["created_after", "created_before"];
  const PAGE_SIZES = Array.from(pageSizeSelect.options, (option) => Number(option.value));
  const DEFAULT_PAGE_SIZE = Number(form.dataset.defaultPageSize);

  // ---- state <-> URL <-> form ----

  function positiveInt(text, fallback) {
    const value = Number(text);
    return Number.isInteger(value) && value > 0 ? value : fallback;
  }

  function stateFromUrl() {
    const params = new URLSearchParams(window.location.search);
    const state = {};
    for (const name of [...TEXT_FILTERS, ...TIME_FILTERS]) {
      state[name] = params.get(name) || "";
    }
    state.page = positiveInt(params.get("page"), 1);
    const size = positiveInt(params.get("page_size"), DEFAULT_PAGE_SIZE);
    state.page_size = PAGE_SIZES.includes(size) ? size : DEFAULT_PAGE_SIZE;
    return state;
  }

  /** "2024-05-01T10:00:00.000Z" -> "2024-05-01T12:00:00" in the browser's time zone. */
  function isoToLocalInput(iso) {
    const date = new Date(iso);
    if (iso === "" || Number.isNaN(date.getTime())) {
      return "";
    }
    const pad = (n) => String(n).padStart(2, "0");
    return (
      `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
      `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
    );
  }

  /** A datetime-local value (browser's time zone) -> ISO 8601 UTC; "" stays "". */
  function localInputToIso(value) {
    const date = new Date(value);
    return value === "" || Number.isNaN(date.getTime()) ? "" : date.toISOString();
  }

  function applyStateToForm(state) {
    for (const name of TEXT_FILTERS) {
      form.elements[name].value = state[name];
    }
    for (const name of TIME_FILTERS) {
      form.elements[name].value = isoToLocalInput(state[name]);
    }
    pageSizeSelect.value = String(state.page_size);
  }

  function stateFromForm() {
    const state = {};
    for (const name of TEXT_FILTERS) {
      state[name] = form.elements[name].value.trim();
    }
    for (const name of TIME_FILTERS) {
      state[name] = localInputToIso(form.elements[name].value);
    }
    state.page = 1;
    state.page_size = Number(pageSizeSelect.value);
    return state;
  }

  /** Query string of the non-empty filters plus page and page_size. */
  function queryOf(state) {
    const params = new URLSearchParams();
    for (const name of [...TEXT_FILTERS, ...TIME_FILTERS]) {
      if (state[name] !== "") {
        params.set(name, state[name]);
      }
    }
    params.set("page", String(state.page));
    params.set("page_size", String(state.page_size));
    return params.toString();
  }

  // ---- loading ----

  let current = stateFromUrl();
  let lastTotalPages = 1;
  let sequence = 0;

  function renderRow(command) {
    const row = App.cloneTemplate("command-row-template");
    row.dataset.commandId = command.command_id;
    row.dataset.status = command.status;
    row.dataset.href = App.commandUrl(command.command_id);
    App.setCommandLink(App.byTestId("command-link", row), command.command_id);
    App.setStatus(App.byTestId("command-row-status", row), command.status);
    App.fill(row, {
      domain: command.domain,
      command_type: command.command_type,
      behavior: App.behaviorLabel(command.behavior && command.behavior.type),
      attempts: `${command.attempts} / ${command.max_attempts}`,
      created_at: command.created_at,
      updated_at: command.updated_at,
    });
    return row;
  }

  function countText(count) {
    return `${count.toLocaleString("en")} ${count === 1 ? "command" : "commands"}`;
  }

  function showPage(data) {
    lastTotalPages = Math.max(1, Math.ceil(data.total / data.page_size));
    const first = data.total === 0 ? 0 : (data.page - 1) * data.page_size + 1;
    const last = Math.min(data.total, first + data.items.length - 1);
    total.textContent = countText(data.total);
    range.textContent =
      data.items.length === 0
        ? `Showing 0 of ${data.total.toLocaleString("en")}`
        : `Showing ${first.toLocaleString("en")}–${last.toLocaleString("en")} of ${data.total.toLocaleString("en")}`;
    pageInfo.textContent = `Page ${data.page} of ${lastTotalPages}`;
    App.renderPageNumbers(pageNumbers, data.page, lastTotalPages, (n) => navigate({ ...current, page: n }));
    prev.disabled = data.page <= 1;
    next.disabled = data.page >= lastTotalPages;
    foot.hidden = data.total === 0 && data.page === 1;
  }

  async function load() {
    const mine = ++sequence;
    showActiveFilters();
    table.setAttribute("aria-busy", "true");
    try {
      const data = await App.api("GET", `/api/commands?${queryOf(current)}`);
      if (mine !== sequence) {
        return; // a newer load has started
      }
      errorBox.hidden = true;
      body.replaceChildren(...data.items.map(renderRow));
      empty.hidden = data.items.length > 0;
      showPage(data);
    } catch (error) {
      App.handleApiError(error, (apiError) => {
        if (mine === sequence) {
          body.replaceChildren();
          errorBox.textContent = apiError.message;
          errorBox.hidden = false;
          total.textContent = "Commands unavailable";
        }
      });
    } finally {
      if (mine === sequence) {
        table.setAttribute("aria-busy", "false");
      }
    }
  }

  function navigate(state) {
    current = state;
    const query = queryOf(state);
    if (query !== window.location.search.slice(1)) {
      window.history.pushState(null, "", `${window.location.pathname}?${query}`);
    }
    load();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    navigate(stateFromForm());
  });
  pageSizeSelect.addEventListener("change", () => navigate(stateFromForm()));
  App.byTestId("filter-reset").addEventListener("click", () => {
    form.reset();
    pageSizeSelect.value = String(DEFAULT_PAGE_SIZE);
    navigate(stateFromForm());
  });
  prev.addEventListener("click", () => navigate({ ...current, page: Math.max(1, current.page - 1) }));
  next.addEventListener("click", () =>
    navigate({ ...current, page: Math.min(lastTotalPages, current.page + 1) }),
  );
  window.addEventListener("popstate", () => {
    current = stateFromUrl();
    applyStateToForm(current);
    load();
  });

  // Phones show the filters folded behind one button that counts the active ones.
  const toggle = App.byTestId("filters-toggle");
  const activeCount = App.byTestId("filters-active");
  toggle.addEventListener("click", () => {
    const open = form.dataset.open !== "true";
    form.dataset.open = String(open);
    toggle.setAttribute("aria-expanded", String(open));
  });

  function showActiveFilters() {
    const active = [...TEXT_FILTERS, ...TIME_FILTERS].filter((name) => current[name] !== "").length;
    activeCount.textContent = active === 0 ? "none active" : `${active} active`;
  }

  App.linkRows(body);
  applyStateToForm(current);
  load();
})();
