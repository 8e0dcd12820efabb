/*
 * Shared client of the command-bus demo UI: JSON API helper, structured console events,
 * flash messages, template filling, ids, times, statuses, pagination, confirmation and form
 * errors. Plain script, no build step, no dependencies; page scripts under static/pages/ use
 * it as window.App. Names the server defines (status and behavior labels, the queue's name)
 * come from the JSON in <script id="ui-config"> (backend/web/routes.py ui_config()).
 *
 * Console events (exactly one JSON object per console call):
 *   console.info  {"kind":"api_call","method","path","status","duration_ms","sent_at",
 *                 "correlation_id"} once for every App.api() call, logged after the response
 *                 (status is null after a network error); sent_at: when the request was sent
 *                 (ISO 8601 UTC), where the test report's timeline places it;
 *   console.error {"kind":"api_error","method","path","status","code","correlation_id","message"}
 *                 for HTTP >= 400, network errors and event streams that fail (for a stream:
 *                 status null, correlation_id from its frames or null);
 *   console.error {"kind":"js_error","message","source","line","column","stack","correlation_id"}
 *                 from window "error" / "unhandledrejection" (correlation_id: the latest API call's).
 * A fetch the browser cancels because the page is being left reports nothing.
 *
 * Conventions the Playwright suite relies on:
 *   - a status badge shows the readable label; data-status holds the API's exact value;
 *   - a command link shows the first 8 characters of the id; href, title and
 *     data-command-id carry the whole id; its copy button (copy-id) copies the whole id;
 *   - a <time> has datetime=<ISO> and the exact local time (ms) as its title; the text is
 *     relative ("3 min ago"), or HH:MM:SS.mmm with class "clock" (audit events);
 *   - rows and feed items with data-href open that page when clicked outside their controls.
 *
 * data-testid catalogue. Stable: the Playwright suite relies on these names, and
 * tests/backend/test_web_pages.py checks that the rendered pages carry exactly this list
 * (row and item markup lives in <template> elements, so it is in the HTML too).
 * A form control's id equals its data-testid; its inline error is field-error-<testid>.
 *
 * Layout (every page)
 *   nav                          <nav aria-label="Main">
 *   nav-dashboard                nav link; the current page's link has aria-current="page"
 *   nav-send                     nav link
 *   nav-commands                 nav link (also current on /commands/<id>)
 *   nav-tsq                      nav link to the troubleshooting queue
 *   nav-tsq-count                its count badge; data-state="loading|loaded|error", data-nonzero
 *   nav-audit                    nav link
 *   nav-settings                 nav link
 *   page-title                   the page's <h1>
 *   flash-region                 container of flash messages (aria-live)
 *   flash-message                one message; data-level="info|success|error", role="alert" for errors
 *   flash-dismiss                close button of a flash message
 *   copy-id                      copy button beside a short id; data-copy = the whole id
 *   confirm-dialog               <dialog> asking before a bulk action
 *   confirm-title                its question
 *   confirm-message              what the action does
 *   confirm-accept               runs the action
 *   confirm-dismiss              closes without acting
 *   skeleton-row                 placeholder table row shown until the first load
 *
 * Dashboard (/)
 *   stats                        the status cards (<ul>)
 *   stat-card-pending            card link to /commands?status=PENDING
 *   stat-card-in-progress        ... IN_PROGRESS
 *   stat-card-completed          ... COMPLETED
 *   stat-card-failed             ... FAILED
 *   stat-card-canceled           ... CANCELED
 *   stat-card-in-tsq             ... IN_TROUBLESHOOTING_QUEUE
 *   stat-pending                 count from GET /api/stats, refreshed every 2 s
 *   stat-in-progress             count
 *   stat-completed               count
 *   stat-failed                  count
 *   stat-canceled                count
 *   stat-in-tsq                  count
 *   stats-updated                "Live · updated <time>" after each successful refresh
 *   stats-error                  shown while /api/stats fails
 *   quick-actions                group of quick-action buttons
 *   quick-action-success         sends one TestCommand with behavior "success"
 *   quick-action-fail-permanent  ... behavior "fail_permanent"
 *   quick-action-fail-transient  ... behavior "fail_transient"
 *   quick-action-fail-transient-then-succeed  ... behavior "fail_transient_then_succeed"
 *   quick-action-timeout         ... behavior "timeout"
 *   quick-action-results         list of sent commands, newest first
 *   quick-action-result          one item; data-behavior, data-command-id, data-status (live)
 *   quick-action-link            link to /commands/<command_id>
 *   quick-action-status          status badge, followed until the command settles
 *   quick-action-hint            note under the results
 *   recent-activity              the latest commands, refreshed with the cards
 *   activity-skeleton            placeholder item until the first load
 *   activity-item                one command; data-command-id, data-href
 *   activity-status              its status badge
 *   activity-link                link to the command
 *   activity-empty               shown when there are no commands
 *   activity-all-link            link to /commands
 *
 * Send Command (/send)
 *   send-form                    single-command form
 *   command-type                 <select> of GET /api/command-types (value = name)
 *   payload                      JSON object textarea (optional)
 *   behavior-type                <select> of behavior types (value = API value)
 *   execution-time-ms            number input
 *   transient-failures           number input
 *   error-code                   text input
 *   error-message                text input
 *   send-error                   error message of the form (role="alert")
 *   send-submit                  submit button
 *   send-result                  shown after 201; data-command-id
 *   send-result-link             link to /commands/<command_id>
 *   send-result-status           status badge of the API's answer
 *   send-result-note             the API's note when the command will reach the TSQ first
 *                                (fail_transient_then_succeed, failures >= max attempts);
 *                                data-expected = the answer's "expected"
 *   bulk-form                    bulk form (uses the command type and behavior above)
 *   bulk-count                   number of commands
 *   bulk-error                   error message of the bulk form
 *   bulk-submit                  submit button
 *   bulk-panel                   progress panel, shown once a task is running
 *   bulk-task-id                 task id from 202
 *   bulk-state                   running | reconnecting | completed | failed | closed | error
 *   bulk-progress                <progress max="1">, value = data.progress
 *   bulk-sent                    "<sent> / <total>"
 *   bulk-progress-text           latest data.text
 *   bulk-result                  final summary ("Sent 10 of 10 commands." or the failure)
 *   bulk-notes                   the 202's notes: one bulk-note <li> per share that will
 *                                reach the TSQ first (data-field, data-expected)
 *   bulk-commands-link           link to /commands
 *   field-error-command-type     inline field errors (from details.field of a 400) ...
 *   field-error-payload
 *   field-error-behavior-type
 *   field-error-execution-time-ms
 *   field-error-transient-failures
 *   field-error-error-code
 *   field-error-error-message
 *   field-error-bulk-count
 *
 * Commands (/commands; filters live in the query string)
 *   commands-filter-form         filter form (on phones folded: data-open="true" when unfolded)
 *   filters-toggle               unfolds the filters on phones; aria-expanded
 *   filters-active               "<n> active" in the toggle
 *   filter-status                <select>: "" (any) or a status value
 *   filter-domain                text input
 *   filter-command-type          text input
 *   filter-created-after         datetime-local (sent to the API as ISO 8601 UTC)
 *   filter-created-before        datetime-local
 *   filter-page-size             <select> 10 | 25 | 50 | 100
 *   filter-apply                 submit button (goes to page 1)
 *   filter-reset                 clears all filters
 *   commands-error               error of the last load
 *   commands-total               "<total> commands" (under the title)
 *   commands-table               the table (aria-busy while loading)
 *   commands-body                its <tbody>
 *   command-row                  one row; data-command-id, data-status (exact API value), data-href
 *   command-link                 link to /commands/<command_id>
 *   command-row-status           status badge of the row
 *   commands-empty               shown when there are no items
 *   commands-foot                range and pagination, shown once loaded
 *   commands-range               "Showing <first>–<last> of <total>"
 *   pagination                   pagination <nav>
 *   page-prev                    previous page button
 *   page-numbers                 list of page-number buttons (page-number, data-page;
 *                                the current one has aria-current="page")
 *   page-info                    "Page X of Y" (for screen readers)
 *   page-next                    next page button
 *
 * Command detail (/commands/<command_id>)
 *   command-id                   the id (in the <h1>, short, with its copy button)
 *   command-detail               section; data-command-id
 *   command-loading              placeholder until the first load
 *   command-not-found            the 404 message of the API
 *   command-error                other load errors
 *   command-refresh              reload button (the page also polls while PENDING/IN_PROGRESS)
 *   command-audit-link           link to /audit?command_id=<id>
 *   command-back-link            link to /commands
 *   command-body                 shown once the command is loaded
 *   command-status               status badge; data-status = the API's value
 *   command-domain
 *   command-type-name
 *   command-attempts             "<attempts> / <max_attempts>"
 *   command-created-at           <time datetime="ISO">
 *   command-processed-at         <time datetime="ISO">, "—" when null
 *   command-correlation-id       short, with its copy button
 *   command-test-id
 *   command-last-error           container of the two below, "—" when null
 *   command-error-code
 *   command-error-message
 *   command-behavior             JSON
 *   command-payload              JSON
 *   command-result               JSON, "—" when null
 *   audit-events                 <ol> of audit events (also on /audit)
 *   audit-event                  one event; data-event-type
 *   audit-event-type
 *   audit-event-time             <time class="clock" datetime="ISO">: HH:MM:SS.mmm
 *   audit-event-gap              "first event", or the time since the previous event ("+5 ms")
 *   audit-event-attempt          "attempt N of M" when the event has one
 *   audit-event-error-code       the event's error code, when it has one
 *   audit-event-message          the event's error message or reason, when it has one
 *   audit-event-details          <details> holding all details as JSON
 *   audit-empty                  shown when the command has no events
 *
 * Troubleshooting queue (/tsq)
 *   tsq-total                    "<total> commands in the queue"
 *   tsq-refresh                  reload button
 *   tsq-bulk-bar                 selection bar (hidden while the queue is empty); data-active="true"
 *                                while rows are selected
 *   tsq-selected-count           "<n> selected"
 *   tsq-bulk-retry               bulk buttons, enabled when rows are selected; each asks
 *   tsq-bulk-cancel              in confirm-dialog first
 *   tsq-bulk-complete
 *   tsq-options                  <details> holding the result sent with Complete
 *   tsq-complete-result          optional result JSON sent with a row's Complete
 *   field-error-tsq-complete-result
 *   tsq-bulk-results             outcome list of the last bulk action
 *   tsq-bulk-result              one outcome; data-ok="true|false", data-command-id
 *   tsq-error                    error of the last load
 *   tsq-table                    the table
 *   tsq-body                     its <tbody>
 *   tsq-select-all               header checkbox (indeterminate when some rows are selected)
 *   tsq-row                      one row; data-command-id, data-href
 *   tsq-select                   row checkbox
 *   tsq-command-link             link to /commands/<command_id>
 *   tsq-error-code
 *   tsq-error-message
 *   tsq-retry                    row buttons
 *   tsq-cancel
 *   tsq-complete
 *   tsq-empty                    shown when the queue is empty
 *
 * Audit Trail (/audit?command_id=...)
 *   audit-form                   search form
 *   audit-command-id             command id input
 *   audit-submit                 submit button
 *   audit-error                  error (e.g. the API's 404 message)
 *   audit-prompt                 shown while no command id is given
 *   audit-loading                placeholder while the events load
 *   audit-results                shown once events are loaded
 *   audit-command-link           link to /commands/<command_id>
 *   (events: audit-events, audit-event, ... as on the detail page)
 *
 * Settings (/settings)
 *   settings-form                form
 *   setting-visibility-timeout   worker.visibility_timeout
 *   setting-concurrency          worker.concurrency
 *   setting-poll-interval        worker.poll_interval
 *   setting-batch-size           worker.batch_size
 *   setting-max-attempts         retry.max_attempts
 *   setting-base-delay-ms        retry.base_delay_ms
 *   setting-max-delay-ms         retry.max_delay_ms
 *   setting-backoff-multiplier   retry.backoff_multiplier
 *   field-error-setting-visibility-timeout
 *   field-error-setting-concurrency
 *   field-error-setting-poll-interval
 *   field-error-setting-batch-size
 *   field-error-setting-max-attempts
 *   field-error-setting-base-delay-ms
 *   field-error-setting-max-delay-ms
 *   field-error-setting-backoff-multiplier
 *   settings-error               error message of the form
 *   settings-submit              save button
 *   settings-reload              reload from the server
 *   settings-saved               "Settings saved." after a 200
 *   live-settings                the live workers' effective settings panel
 *   live-settings-table          its table
 *   live-settings-rows           one row per worker and setting (data-worker, data-setting)
 */
(() => {
  "use strict";

  const MAX_FLASH_MESSAGES = 5;
  const EMPTY = "—";
  let lastCorrelationId = null;
  let leavingPage = false;
  window.addEventListener("beforeunload", () => { leavingPage = true; });
  window.addEventListener("pagehide", () => { leavingPage = true; });
  window.addEventListener("pageshow", () => { leavingPage = false; });

  // ---- console events ------------------------------------------------------------------

  function report(level, event) {
    console[level](JSON.stringify(event));
  }

  function reportApiError({ method, path, status, code = null, correlationId, message }) {
    report("error", {
      kind: "api_error",
      method,
      path,
      status,
      code,
      correlation_id: correlationId,
      message,
    });
  }

  // ---- API client ----------------------------------------------------------------------

  /** Failure of one App.api() call; already reported on the console when thrown. */
  class ApiError extends Error {
    constructor({ message, method, path, status, code, details, correlationId, body }) {
      super(message);
      this.name = "ApiError";
      this.method = method;
      this.path = path;
      this.status = status; // null after a network error
      this.code = code;
      this.details = details;
      this.correlationId = correlationId;
      this.body = body;
    }
  }

  function newRequestId() {
    // crypto.randomUUID exists only in secure contexts (https, localhost); a CI browser may
    // reach the app by a container host name over plain http, so fall back to a v4 UUID.
    if (typeof crypto.randomUUID === "function") {
      return crypto.randomUUID();
    }
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function isObject(value) {
    return typeof value === "object" && value !== null && !Array.isArray(value);
  }

  async function readBody(response) {
    const text = await response.text();
    if (text === "") {
      return null;
    }
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }

  function errorMessageOf(response, body) {
    if (isObject(body) && typeof body.error === "string" && body.error !== "") {
      return body.error;
    }
    return `HTTP ${response.status} ${response.statusText}`.trim();
  }

  /**
   * Call the JSON API: sends `body` as JSON with a fresh X-Request-Id, returns the parsed
   * response body, throws ApiError for HTTP >= 400 and network errors. Logs one api_call
   * event per call, plus one api_error event per failure.
   */
  async function api(method, path, body) {
    const requestId = newRequestId();
    const headers = { Accept: "application/json", "X-Request-Id": requestId };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const sentAt = new Date().toISOString();
    const started = performance.now();
    let response = null;
    let data = null;
    let networkError = null;
    try {
      response = await fetch(path, init);
      data = await readBody(response);
    } catch (error) {
      networkError = error;
    }
    if (networkError !== null && leavingPage) {
      // The browser cancels in-flight fetches when the page is left: not an error of the app.
      throw new ApiError({ message: "request cancelled by navigation", method, path, status: null,
        code: null, details: {}, correlationId: requestId, body: null });
    }
    const status = response === null ? null : response.status;
    const correlationId =
      (response && response.headers.get("X-Request-Id")) ||
      (isObject(data) && typeof data.correlationId === "string" && data.correlationId) ||
      requestId;
    lastCorrelationId = correlationId;
    report("info", {
      kind: "api_call",
      method,
      path,
      status,
      duration_ms: Math.round(performance.now() - started),
      sent_at: sentAt,
      correlation_id: correlationId,
    });
    if (networkError === null && response.ok) {
      return data;
    }
    const message =
      networkError === null
        ? errorMessageOf(response, data)
        : `Network error on ${method} ${path}: ${networkError.message}`;
    const error = new ApiError({
      message,
      method,
      path,
      status,
      code: isObject(data) && data.code != null ? String(data.code) : null,
      details: isObject(data) && isObject(data.details) ? data.details : {},
      correlationId,
      body: data,
    });
    reportApiError({ method, path, status, code: error.code, correlationId, message });
    throw error;
  }

  /** Run `handler(error)` for an ApiError (already logged); rethrow anything else (a bug). */
  function handleApiError(error, handler) {
    if (!(error instanceof ApiError)) {
      throw error;
    }
    handler(error);
  }

  // ---- event streams -------------------------------------------------------------------

  const TERMINAL_TASK_EVENTS = new Set(["task_completed", "task_failed"]);
  const MAX_SILENT_RECONNECTS = 5;

  /**
   * Follow a task's server-sent events: `onEvent(taskEvent)` for each `task_event`,
   * `onState("reconnecting")` while the browser reconnects, and `onEnd({kind, message})`
   * exactly once, where kind is "closed" (connection_close, or the stream dropped after a
   * terminal event) or "error". The EventSource is closed at the end so it never reconnects.
   */
  function followTaskStream(path, { onEvent, onState, onEnd }) {
    const source = new EventSource(path);
    let ended = false;
    let terminalSeen = false;
    let failures = 0;
    let streamCorrelationId = null; // the server stamps it on every JSON frame

    function end(outcome) {
      if (ended) {
        return;
      }
      ended = true;
      source.close();
      onEnd(outcome);
    }

    function fail(message) {
      reportApiError({ method: "GET", path, status: null, correlationId: streamCorrelationId, message });
      end({ kind: "error", message });
    }

    function noteCorrelation(data) {
      if (isObject(data) && typeof data.correlation_id === "string") {
        streamCorrelationId = data.correlation_id;
        lastCorrelationId = data.correlation_id;
      }
    }

    source.addEventListener("connection_open", (message) => {
      failures = 0;
      noteCorrelation(JSON.parse(message.data));
    });
    source.addEventListener("task_event", (message) => {
      failures = 0;
      const event = JSON.parse(message.data);
      noteCorrelation(event);
      if (TERMINAL_TASK_EVENTS.has(event.event_type)) {
        terminalSeen = true;
      }
      onEvent(event);
    });
    source.addEventListener("connection_close", (message) => {
      const data = message.data ? JSON.parse(message.data) : {};
      end({ kind: "closed", message: data.reason ? String(data.reason) : "stream closed" });
    });
    source.addEventListener("stream_error", (message) => {
      // The server's own error event ({"error", "code"}), e.g. an unknown task id.
      if (ended) {
        return;
      }
      const data = JSON.parse(message.data);
      noteCorrelation(data);
      fail(isObject(data) && data.error ? String(data.error) : `Task stream error: ${message.data}`);
    });
    source.addEventListener("error", () => {
      // EventSource's own event: the connection failed or ended (the server's errors are
      // `stream_error`). A finished task answers a reconnect with 204, which closes it.
      if (ended) {
        return;
      }
      if (terminalSeen) {
        end({ kind: "closed", message: "stream ended" });
      } else if (source.readyState === EventSource.CLOSED) {
        fail(`Task stream ${path} failed (the server refused or closed it).`);
      } else if (++failures > MAX_SILENT_RECONNECTS) {
        fail(`Task stream ${path} dropped ${failures} times; gave up reconnecting.`);
      } else {
        onState("reconnecting");
      }
    });
    return { close: () => end({ kind: "closed", message: "closed by the page" }) };
  }

  // ---- uncaught errors -----------------------------------------------------------------

  window.addEventListener("error", (event) => {
    report("error", {
      kind: "js_error",
      message: event.message || String(event.error),
      source: event.filename || null,
      line: event.lineno || null,
      column: event.colno || null,
      stack: event.error && event.error.stack ? String(event.error.stack) : null,
      correlation_id: lastCorrelationId,
    });
  });

  window.addEventListener("unhandledrejection", (event) => {
    const reason = event.reason;
    if (reason instanceof ApiError) {
      event.preventDefault(); // api() has reported it already
      return;
    }
    report("error", {
      kind: "js_error",
      message: reason instanceof Error ? reason.message : String(reason),
      source: null,
      line: null,
      column: null,
      stack: reason instanceof Error && reason.stack ? String(reason.stack) : null,
      correlation_id: lastCorrelationId,
    });
  });

  // ---- names the server defines (routes.py, rendered into #ui-config) ---------------------

  const config = JSON.parse(document.getElementById("ui-config").textContent);
  const TERMINAL_STATUSES = new Set(config.terminalStatuses);

  function statusLabel(status) {
    return status == null ? EMPTY : config.statusLabels[status] || String(status);
  }

  function behaviorLabel(type) {
    return type == null ? EMPTY : config.behaviorLabels[type] || String(type);
  }

  // ---- DOM helpers ---------------------------------------------------------------------

  function byTestId(testId, root = document) {
    const element = root.querySelector(`[data-testid="${testId}"]`);
    if (element === null) {
      throw new Error(`No element with data-testid="${testId}" on this page.`);
    }
    return element;
  }

  function cloneTemplate(id) {
    const template = document.getElementById(id);
    if (!(template instanceof HTMLTemplateElement)) {
      throw new Error(`No <template id="${id}"> on this page.`);
    }
    return template.content.firstElementChild.cloneNode(true);
  }

  // ---- times: relative in the text, exact (to the millisecond) in the tooltip ----

  const exactFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    fractionalSecondDigits: 3,
    hour12: false,
    timeZoneName: "short",
  });
  const clockFormat = new Intl.DateTimeFormat(undefined, {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    fractionalSecondDigits: 3,
    hour12: false,
  });
  const relativeFormat = new Intl.RelativeTimeFormat("en", { numeric: "auto", style: "short" });
  const RELATIVE_STEPS = [
    [60, "second", 1],
    [3600, "minute", 60],
    [86400, "hour", 3600],
    [86400 * 30, "day", 86400],
    [86400 * 365, "month", 86400 * 30],
    [Infinity, "year", 86400 * 365],
  ];

  function parseTime(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? null : date;
  }

  function exactTime(iso) {
    const date = parseTime(iso);
    return date === null ? String(iso) : exactFormat.format(date);
  }

  function relativeTime(iso, now = Date.now()) {
    const date = parseTime(iso);
    if (date === null) {
      return String(iso);
    }
    const seconds = (date.getTime() - now) / 1000;
    if (Math.abs(seconds) < 5) {
      return "just now";
    }
    for (const [limit, unit, size] of RELATIVE_STEPS) {
      if (Math.abs(seconds) < limit) {
        return relativeFormat.format(Math.round(seconds / size), unit);
      }
    }
    return exactTime(iso);
  }

  /** "+5 ms", "+1.25 s", "+2 min 3 s": the time between two events. */
  function formatGap(milliseconds) {
    if (milliseconds < 1000) {
      return `+${Math.round(milliseconds)} ms`;
    }
    if (milliseconds < 60_000) {
      return `+${(milliseconds / 1000).toFixed(2)} s`;
    }
    const minutes = Math.floor(milliseconds / 60_000);
    return `+${minutes} min ${Math.round((milliseconds % 60_000) / 1000)} s`;
  }

  /** Fill a <time>: class "clock" shows HH:MM:SS.mmm, any other the relative time; both keep the exact tooltip. */
  function setTime(element, iso) {
    if (iso == null || iso === "") {
      element.removeAttribute("datetime");
      element.removeAttribute("title");
      element.textContent = EMPTY;
      return;
    }
    element.dateTime = String(iso);
    element.title = exactTime(iso);
    const date = parseTime(iso);
    if (element.classList.contains("clock") && date !== null) {
      element.textContent = clockFormat.format(date);
    } else {
      element.classList.add("rel");
      element.textContent = relativeTime(iso);
    }
  }

  function refreshRelativeTimes() {
    const now = Date.now();
    for (const element of document.querySelectorAll("time.rel[datetime]")) {
      element.textContent = relativeTime(element.dateTime, now);
    }
  }

  function formatJson(value) {
    return value === null || value === undefined ? EMPTY : JSON.stringify(value, null, 2);
  }

  /** Show `value` in `element`: times as <time datetime>, objects as JSON, null as "—". */
  function setValue(element, value) {
    if (element instanceof HTMLTimeElement) {
      setTime(element, value);
    } else if (typeof value === "object" && value !== null) {
      element.textContent = formatJson(value);
    } else {
      element.textContent = value == null || value === "" ? EMPTY : String(value);
    }
  }

  /** Fill the `data-slot` elements of `root` from `values` (every key needs its slot). */
  function fill(root, values) {
    for (const [slot, value] of Object.entries(values)) {
      const element = root.querySelector(`[data-slot="${slot}"]`);
      if (element === null) {
        throw new Error(`Template has no data-slot="${slot}".`);
      }
      setValue(element, value);
    }
  }

  /** A status badge: the readable label as text, the API's value in data-status, its colour class. */
  function setStatus(element, status) {
    const value = status == null ? "" : String(status);
    element.textContent = statusLabel(status);
    element.dataset.status = value;
    element.title = value;
    const size = element.classList.contains("status-large") ? " status-large" : "";
    element.className = `status status-${value.toLowerCase().replace(/[^a-z0-9]+/g, "-")}${size}`;
  }

  // ---- ids: the first 8 characters, the whole id in the tooltip and the copy button ----

  const SHORT_ID_LENGTH = 8;

  function shortId(id) {
    const text = String(id);
    return text.length > SHORT_ID_LENGTH + 4 ? text.slice(0, SHORT_ID_LENGTH) : text;
  }

  function commandUrl(commandId) {
    return `/commands/${encodeURIComponent(commandId)}`;
  }

  /** Add (once) a copy button for `id` after `anchor` when it sits in an .id-chip. */
  function attachCopyButton(element, id, what = "command id") {
    const chip = element.closest(".id-chip");
    if (chip === null) {
      return;
    }
    let button = chip.querySelector(".copy-button");
    if (button === null) {
      button = cloneTemplate("copy-button-template");
      chip.append(button);
    }
    button.dataset.copy = id;
    button.setAttribute("aria-label", `Copy ${what} ${id}`);
    button.title = `Copy ${what}`;
  }

  function setCommandLink(anchor, commandId) {
    anchor.href = commandUrl(commandId);
    anchor.textContent = shortId(commandId);
    anchor.title = String(commandId);
    anchor.dataset.commandId = String(commandId);
    attachCopyButton(anchor, String(commandId));
  }

  /** Show an id short with its copy button (no link). */
  function setIdText(element, id, what) {
    element.textContent = shortId(id);
    element.title = String(id);
    attachCopyButton(element, String(id), what);
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    if (!copied) {
      throw new Error("the browser refused to copy");
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".copy-button[data-copy]");
    if (button === null) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    copyText(button.dataset.copy).then(
      () => {
        button.dataset.copied = "true";
        button.title = "Copied";
        setTimeout(() => {
          button.dataset.copied = "false";
          button.title = "Copy";
        }, 1500);
      },
      (error) => flash(`Could not copy: ${error.message}`, { level: "error" }),
    );
  });

  // ---- whole-row links ----

  /** Rows (or items) with data-href open it on click, except clicks on their own controls. */
  function linkRows(container) {
    container.addEventListener("click", (event) => {
      const row = event.target.closest("[data-href]");
      if (row === null || event.target.closest("a, button, input, label, select, textarea, summary, .select-cell")) {
        return;
      }
      if (window.getSelection && String(window.getSelection()).length > 0) {
        return; // the user is selecting text, not navigating
      }
      if (event.ctrlKey || event.metaKey) {
        window.open(row.dataset.href, "_blank");
      } else {
        window.location.assign(row.dataset.href);
      }
    });
  }

  function setBusy(button, busy) {
    button.disabled = busy;
    button.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // ---- pagination ----

  /** Page numbers to show: first, last, and a window around the current page; 0 marks a gap. */
  function pageWindow(page, totalPages, radius = 1) {
    const pages = new Set([1, totalPages]);
    for (let n = page - radius; n <= page + radius; n += 1) {
      if (n >= 1 && n <= totalPages) {
        pages.add(n);
      }
    }
    const sorted = Array.from(pages).sort((a, b) => a - b);
    const out = [];
    for (const n of sorted) {
      if (out.length > 0 && n - out[out.length - 1] > 1) {
        out.push(n - out[out.length - 1] === 2 ? n - 1 : 0);
      }
      out.push(n);
    }
    return out;
  }

  /** Fill a list of page-number buttons; `onGo(n)` when one is clicked. */
  function renderPageNumbers(list, page, totalPages, onGo) {
    list.replaceChildren(
      ...pageWindow(page, totalPages).map((n) => {
        const item = document.createElement("li");
        if (n === 0) {
          item.className = "page-gap";
          item.textContent = "…";
          item.setAttribute("aria-hidden", "true");
          return item;
        }
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = String(n);
        button.dataset.testid = "page-number";
        button.dataset.page = String(n);
        button.setAttribute("aria-label", `Page ${n}`);
        if (n === page) {
          button.setAttribute("aria-current", "page");
        }
        button.addEventListener("click", () => onGo(n));
        item.append(button);
        return item;
      }),
    );
  }

  // ---- the nav's queue count ----

  function setNavCount(count) {
    const badge = document.querySelector('[data-testid="nav-tsq-count"]');
    if (badge === null) {
      return;
    }
    if (Number.isInteger(count)) {
      badge.textContent = String(count);
      badge.dataset.state = "loaded";
      badge.dataset.nonzero = String(count > 0);
      badge.setAttribute("aria-label", `${count} ${count === 1 ? "command" : "commands"} in the ${config.tsqName}`);
    } else {
      badge.textContent = "";
      badge.dataset.state = "error";
    }
  }

  async function loadNavCount() {
    try {
      const stats = await api("GET", "/api/stats");
      setNavCount(stats.in_tsq);
    } catch (error) {
      handleApiError(error, () => setNavCount(null));
    }
  }

  // ---- flash messages ----

  function flash(message, { level = "info", correlationId = null } = {}) {
    const region = byTestId("flash-region");
    const node = cloneTemplate("flash-template");
    node.dataset.level = level;
    node.classList.add(`flash-${level}`);
    if (level === "error") {
      node.setAttribute("role", "alert");
    }
    node.querySelector('[data-slot="message"]').textContent = message;
    const meta = node.querySelector('[data-slot="correlation"]');
    if (correlationId) {
      node.dataset.correlationId = correlationId;
      meta.textContent = `correlation id ${correlationId}`;
    } else {
      meta.remove();
    }
    byTestId("flash-dismiss", node).addEventListener("click", () => node.remove());
    region.prepend(node);
    while (region.children.length > MAX_FLASH_MESSAGES) {
      region.lastElementChild.remove();
    }
    return node;
  }

  function flashApiError(error) {
    flash(error.message, { level: "error", correlationId: error.correlationId });
  }

  // ---- confirmation ----

  /** Ask before a bulk action: resolves true when the user confirms. */
  function confirmAction({ title, message, confirmLabel, danger = false }) {
    const dialog = byTestId("confirm-dialog");
    byTestId("confirm-title", dialog).textContent = title;
    byTestId("confirm-message", dialog).textContent = message;
    const accept = byTestId("confirm-accept", dialog);
    accept.textContent = confirmLabel;
    accept.classList.toggle("danger", danger);
    dialog.returnValue = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
      dialog.showModal();
      accept.focus();
    });
  }

  // ---- form errors ---------------------------------------------------------------------

  /** Hide the form errors and field errors inside `scope`. */
  function clearErrors(scope) {
    for (const element of scope.querySelectorAll('[data-role="field-error"], [data-role="form-error"]')) {
      element.textContent = "";
      element.hidden = true;
    }
    for (const control of scope.querySelectorAll('[aria-invalid="true"]')) {
      control.removeAttribute("aria-invalid");
    }
  }

  /** The control whose data-field names `field` ("behavior.type" also matches "type"). */
  function findControl(scope, field) {
    const controls = Array.from(scope.querySelectorAll("[data-field]"));
    return (
      controls.find((control) => control.dataset.field === field) ||
      controls.find(
        (control) =>
          control.dataset.field.endsWith(`.${field}`) || field.endsWith(`.${control.dataset.field}`),
      ) ||
      null
    );
  }

  /**
   * [field, message] pairs of a 400: details.field with details.reason, then every
   * {field, reason} of details.errors (the API lists all of pydantic's errors there).
   */
  function fieldErrorsOf(error) {
    const details = error.details || {};
    const pairs = [];
    if (typeof details.field === "string") {
      pairs.push([details.field, typeof details.reason === "string" ? details.reason : error.message]);
    }
    if (Array.isArray(details.errors)) {
      for (const entry of details.errors) {
        if (isObject(entry) && typeof entry.field === "string" && entry.field !== details.field) {
          pairs.push([entry.field, String(entry.reason ?? entry.message ?? error.message)]);
        }
      }
    }
    return pairs;
  }

  /** Show `message` in `formError` and each [field, message] next to its control in `scope`. */
  function showErrors(scope, formError, message, fieldErrors = []) {
    formError.textContent = message;
    formError.hidden = false;
    for (const [field, fieldMessage] of fieldErrors) {
      const control = findControl(scope, field);
      if (control === null) {
        continue;
      }
      control.setAttribute("aria-invalid", "true");
      const element = document.getElementById(`${control.id}-error`);
      if (element !== null) {
        element.textContent = fieldMessage;
        element.hidden = false;
      }
    }
  }

  function showApiError(scope, formError, error) {
    const suffix = error.correlationId ? ` (correlation id ${error.correlationId})` : "";
    showErrors(scope, formError, `${error.message}${suffix}`, fieldErrorsOf(error));
  }

  /** Parse an optional JSON textarea: undefined when empty, else the value; throws SyntaxError. */
  function parseJsonInput(control) {
    const text = control.value.trim();
    return text === "" ? undefined : JSON.parse(text);
  }

  /** Number of a numeric input: null when empty (the API reports what is missing). */
  function numberOf(control) {
    const text = control.value.trim();
    return text === "" ? null : Number(text);
  }

  // ---- audit events: inline facts, millisecond stamps, the gap to the previous event ----

  function attemptText(details) {
    if (!Number.isInteger(details.attempt)) {
      return "";
    }
    return Number.isInteger(details.max_attempts)
      ? `attempt ${details.attempt} of ${details.max_attempts}`
      : `attempt ${details.attempt}`;
  }

  function renderAuditEvents(scope, events) {
    const list = byTestId("audit-events", scope);
    let previous = null;
    list.replaceChildren(
      ...events.map((event) => {
        const item = cloneTemplate("audit-event-template");
        const details = isObject(event.details) ? event.details : {};
        const at = parseTime(event.timestamp);
        item.dataset.eventType = event.event_type;
        fill(item, { event_type: event.event_type, timestamp: event.timestamp, details: formatJson(details) });
        // Optional facts stay empty (and hidden by CSS) when the event has none.
        const facts = {
          gap: previous === null || at === null ? "first event" : formatGap(at - previous),
          attempt: attemptText(details),
          error_code: details.error_code == null ? "" : String(details.error_code),
          error_message: String(details.error_msg ?? details.reason ?? ""),
        };
        for (const [slot, text] of Object.entries(facts)) {
          item.querySelector(`[data-slot="${slot}"]`).textContent = text;
        }
        if (at !== null) {
          previous = at;
        }
        return item;
      }),
    );
    byTestId("audit-empty", scope).hidden = events.length > 0;
  }

  // ---- start-up ----

  setInterval(refreshRelativeTimes, 15_000);
  document.addEventListener("DOMContentLoaded", () => {
    if (document.getElementById("main").dataset.navCount !== "page") {
      loadNavCount();
    }
  });

  window.App = Object.freeze({
    api,
    ApiError,
    handleApiError,
    followTaskStream,
    config,
    TERMINAL_STATUSES,
    statusLabel,
    behaviorLabel,
    byTestId,
    cloneTemplate,
    fill,
    setValue,
    setTime,
    setStatus,
    shortId,
    formatJson,
    commandUrl,
    setCommandLink,
    setIdText,
    linkRows,
    setBusy,
    renderPageNumbers,
    setNavCount,
    flash,
    flashApiError,
    confirmAction,
    clearErrors,
    showErrors,
    showApiError,
    parseJsonInput,
    numberOf,
    renderAuditEvents,
  });
})();
