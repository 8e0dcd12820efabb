"""The web UI blueprint: every page renders its shell, nav, scripts and stable data-testids."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend.schemas.commands import TERMINAL_STATUSES
from backend.web import STATIC_URL_PATH, web_bp
from backend.web.routes import COMMAND_STATUSES, STATUS_LABELS, TSQ_NAME, ui_config

STATIC_DIR = Path(__file__).resolve().parents[2] / "backend" / "web" / "static"


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


@dataclass
class Page:
    """A rendered page, parsed into its start tags (markup inside <template> included)."""

    elements: list[Element] = field(default_factory=list)

    def with_attr(self, name: str) -> list[Element]:
        return [e for e in self.elements if name in e.attrs]

    def testids(self) -> set[str]:
        return {e.attrs["data-testid"] for e in self.with_attr("data-testid")}

    def by_testid(self, testid: str) -> Element:
        found = [e for e in self.with_attr("data-testid") if e.attrs["data-testid"] == testid]
        assert found, f"no element with data-testid={testid!r}"
        return found[0]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._open_buttons: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.page.elements.append(element)
        if tag == "button":
            self._open_buttons.append(element)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._open_buttons:
            self._open_buttons.pop()

    def handle_data(self, data: str) -> None:
        for button in self._open_buttons:
            button.text += data


def parse(html: str) -> Page:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.page


@dataclass(frozen=True)
class PageCase:
    path: str
    nav: str
    script: str
    testids: tuple[str, ...]


PAGES = (
    PageCase(
        "/",
        "nav-dashboard",
        "pages/dashboard.js",
        (
            "stat-pending",
            "stat-in-progress",
            "stat-completed",
            "stat-failed",
            "stat-canceled",
            "stat-in-tsq",
            "quick-action-success",
            "quick-action-fail-permanent",
            "quick-action-fail-transient",
            "quick-action-fail-transient-then-succeed",
            "quick-action-timeout",
            "quick-action-link",
        ),
    ),
    PageCase(
        "/send",
        "nav-send",
        "pages/send_command.js",
        (
            "send-form",
            "command-type",
            "payload",
            "behavior-type",
            "execution-time-ms",
            "transient-failures",
            "error-code",
            "error-message",
            "send-submit",
            "send-result-link",
            "bulk-count",
            "bulk-submit",
            "bulk-progress",
            "field-error-payload",
        ),
    ),
    PageCase(
        "/commands",
        "nav-commands",
        "pages/commands.js",
        (
            "filter-status",
            "filter-domain",
            "filter-command-type",
            "filter-created-after",
            "filter-created-before",
            "filter-page-size",
            "command-row",
            "command-link",
            "page-prev",
            "page-info",
            "page-next",
        ),
    ),
    PageCase(
        "/commands/0b0e5f55-4c1a-4b7e-9a43-2b7c3f1d9e01",
        "nav-commands",
        "pages/command_detail.js",
        ("command-detail", "command-status", "command-not-found", "audit-event", "command-result"),
    ),
    PageCase(
        "/tsq",
        "nav-tsq",
        "pages/troubleshooting.js",
        (
            "tsq-row",
            "tsq-select",
            "tsq-select-all",
            "tsq-retry",
            "tsq-cancel",
            "tsq-complete",
            "tsq-bulk-retry",
            "tsq-bulk-cancel",
            "tsq-bulk-complete",
        ),
    ),
    PageCase(
        "/audit",
        "nav-audit",
        "pages/audit.js",
        ("audit-command-id", "audit-submit", "audit-events", "audit-event-details"),
    ),
    PageCase(
        "/settings",
        "nav-settings",
        "pages/settings.js",
        (
            "setting-visibility-timeout",
            "setting-concurrency",
            "setting-poll-interval",
            "setting-batch-size",
            "setting-max-attempts",
            "setting-base-delay-ms",
            "setting-max-delay-ms",
            "setting-backoff-multiplier",
            "settings-submit",
            "field-error-setting-concurrency",
        ),
    ),
)
LAYOUT_TESTIDS = (
    "nav",
    "nav-dashboard",
    "nav-send",
    "nav-commands",
    "nav-tsq",
    "nav-audit",
    "nav-settings",
    "page-title",
    "flash-region",
    "flash-message",
)


@pytest.fixture
def client() -> FlaskClient:
    app = Flask(__name__)
    app.register_blueprint(web_bp)
    return app.test_client()


def render(client: FlaskClient, path: str) -> Page:
    response = client.get(path)
    assert response.status_code == 200, f"GET {path} -> {response.status_code}"
    assert response.mimetype == "text/html"
    return parse(response.get_data(as_text=True))


def documented_testids() -> set[str]:
    """The catalogue in the comment block at the top of static/app.js."""
    source = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    header = source[: source.index("*/")]
    catalogue = header[header.index("data-testid catalogue") :]
    return set(re.findall(r"^ \*   ([a-z][a-z0-9-]*)\b", catalogue, flags=re.MULTILINE))


@pytest.mark.parametrize("case", PAGES, ids=lambda case: case.path)
def test_page_renders_with_nav_and_scripts(client: FlaskClient, case: PageCase) -> None:
    page = render(client, case.path)

    current = [e for e in page.elements if e.attrs.get("aria-current") == "page"]
    assert [e.attrs["data-testid"] for e in current] == [case.nav]
    assert page.by_testid("nav").attrs.get("aria-label") == "Main"

    scripts = [e.attrs["src"] for e in page.elements if e.tag == "script" and "src" in e.attrs]
    assert scripts == [f"{STATIC_URL_PATH}/app.js", f"{STATIC_URL_PATH}/{case.script}"]
    stylesheets = [e.attrs["href"] for e in page.elements if e.attrs.get("rel") == "stylesheet"]
    assert stylesheets == [f"{STATIC_URL_PATH}/app.css"]
    assert not [s for s in scripts + stylesheets if "//" in s], "no CDN: assets are local"

    missing = set(case.testids + LAYOUT_TESTIDS) - page.testids()
    assert not missing, f"{case.path} lacks data-testids {sorted(missing)}"


@pytest.mark.parametrize("case", PAGES, ids=lambda case: case.path)
def test_page_controls_are_labelled(client: FlaskClient, case: PageCase) -> None:
    page = render(client, case.path)
    ids = [e.attrs["id"] for e in page.with_attr("id")]
    assert len(ids) == len(set(ids)), f"duplicate ids on {case.path}"

    labelled = {e.attrs["for"] for e in page.elements if e.tag == "label"}
    for element in page.elements:
        testid = element.attrs.get("data-testid", element.tag)
        if element.tag in {"input", "select", "textarea"}:
            assert element.attrs.get("id") in labelled or "aria-label" in element.attrs, testid
            assert "data-testid" in element.attrs, f"{element.tag} without data-testid"
        if element.tag == "button":
            assert element.text.strip() or element.attrs.get("aria-label"), testid
            assert "data-testid" in element.attrs, f"button {element.text.strip()!r} lacks testid"
        if "data-field" in element.attrs:
            # A control named by the API's details.field shows its error beside it.
            assert element.attrs["id"] == element.attrs["data-testid"]
            page.by_testid(f"field-error-{element.attrs['id']}")


def test_rendered_testids_match_the_catalogue_in_app_js(client: FlaskClient) -> None:
    rendered: set[str] = set()
    for case in PAGES:
        rendered |= render(client, case.path).testids()
    documented = documented_testids()

    assert rendered - documented == set(), "add these to the comment block of static/app.js"
    assert documented - rendered == set(), "these documented testids are rendered nowhere"


def test_status_options_are_the_api_values(client: FlaskClient) -> None:
    page = render(client, "/commands")
    options = [e.attrs["value"] for e in page.elements if e.tag == "option"]
    assert options[:7] == [
        "",
        "PENDING",
        "IN_PROGRESS",
        "COMPLETED",
        "FAILED",
        "CANCELED",
        "IN_TROUBLESHOOTING_QUEUE",
    ]
    assert options[7:] == ["10", "25", "50", "100"]


def test_unknown_command_id_page_renders_and_escapes_the_id(client: FlaskClient) -> None:
    response = client.get("/commands/no-such-<b>id")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<b>" not in html
    page = parse(html)
    assert page.by_testid("command-detail").attrs["data-command-id"] == "no-such-<b>id"
    assert page.by_testid("command-not-found")  # filled by the script from the API's 404


@pytest.mark.parametrize(
    ("asset", "mimetype"),
    [
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
        *[(f"pages/{case.script.split('/')[-1]}", "text/javascript") for case in PAGES],
    ],
)
def test_static_assets_are_served(client: FlaskClient, asset: str, mimetype: str) -> None:
    response = client.get(f"{STATIC_URL_PATH}/{asset}")

    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.get_data() == (STATIC_DIR / asset).read_bytes()
    response.close()


def test_static_route_is_not_shadowed_by_the_app_static_folder() -> None:
    app = Flask(__name__)  # owns /static/<path:filename>, as create_app's app does
    app.register_blueprint(web_bp)

    with app.test_request_context():
        adapter = app.url_map.bind("localhost")
        endpoint, _ = adapter.match(f"{STATIC_URL_PATH}/app.js")
    assert endpoint == "web.static"


def test_console_output_goes_through_one_json_reporter() -> None:
    app_js = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    assert re.findall(r"console\[\w+\]\(([^;]*)\);", app_js) == ["JSON.stringify(event)"]
    for script in STATIC_DIR.rglob("*.js"):
        code = re.sub(r"/\*.*?\*/", "", script.read_text(encoding="utf-8"), flags=re.DOTALL)
        assert "console." not in code, f"{script.name}: log through App.api / report(), not console"
    for kind in ("api_call", "api_error", "js_error"):
        assert f'kind: "{kind}"' in app_js


# -- names: one label and one colour per status, one name for the queue -------------------


def _ui_config(html: str) -> dict[str, object]:
    match = re.search(r'<script type="application/json" id="ui-config">(.*?)</script>', html, re.S)
    assert match, "no #ui-config on the page"
    return dict(json.loads(match.group(1)))


def test_every_page_carries_the_server_names_for_the_scripts(client: FlaskClient) -> None:
    for case in PAGES:
        html = client.get(case.path).get_data(as_text=True)
        assert _ui_config(html) == json.loads(json.dumps(ui_config())), case.path


def test_the_scripts_take_the_terminal_statuses_from_the_server(client: FlaskClient) -> None:
    """Defined once (backend.schemas.commands), sent in #ui-config, never spelled in app.js."""
    html = client.get("/").get_data(as_text=True)
    assert _ui_config(html)["terminalStatuses"] == list(TERMINAL_STATUSES)
    assert set(TERMINAL_STATUSES) < set(COMMAND_STATUSES)
    app_js = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    assert "new Set(config.terminalStatuses)" in app_js
    code = "\n".join(line for line in app_js.splitlines() if not line.lstrip().startswith("*"))
    for status in COMMAND_STATUSES:
        assert f'"{status}"' not in code, f"app.js spells the status {status} itself"


def test_each_status_has_its_own_label_and_colour() -> None:
    assert set(STATUS_LABELS) == set(COMMAND_STATUSES)
    assert len(set(STATUS_LABELS.values())) == len(COMMAND_STATUSES)
    css = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
    colours = set()
    for status in COMMAND_STATUSES:
        slug = status.lower().replace("_", "-")
        rule = re.search(rf"\.status-{slug} \{{ color: (#[0-9a-f]{{6}});", css)
        assert rule, f"app.css has no colour for .status-{slug}"
        colours.add(rule.group(1))
    assert len(colours) == len(COMMAND_STATUSES)


def test_the_queue_has_one_name_everywhere(client: FlaskClient) -> None:
    assert STATUS_LABELS["IN_TROUBLESHOOTING_QUEUE"] == TSQ_NAME == "Troubleshooting queue"
    for case in PAGES:
        html = client.get(case.path).get_data(as_text=True)
        text = re.sub(r"<script.*?</script>|<[^>]+>", " ", html, flags=re.S)
        for variant in ("Troubleshooting Queue", "In TSQ", "TSQ ", "IN_TROUBLESHOOTING_QUEUE"):
            assert variant not in text, f"{case.path} says {variant!r}"
    page = render(client, "/tsq")
    assert page.by_testid("nav-tsq-count")


def test_dashboard_cards_link_to_their_status(client: FlaskClient) -> None:
    page = render(client, "/")
    for status in COMMAND_STATUSES:
        key = {"IN_TROUBLESHOOTING_QUEUE": "in-tsq"}.get(status, status.lower().replace("_", "-"))
        card = page.by_testid(f"stat-card-{key}")
        assert card.tag == "a"
        assert card.attrs["href"] == f"/commands?status={status}"


def test_list_pages_render_placeholders_until_loaded(client: FlaskClient) -> None:
    for path in ("/commands", "/tsq"):
        skeletons = [
            e for e in render(client, path).elements if e.attrs.get("data-testid") == "skeleton-row"
        ]
        assert skeletons, f"{path} renders no placeholder rows"
