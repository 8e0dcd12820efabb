"""HTML views of the demo UI: each one renders a page shell, the data comes from the JSON API."""

from dataclasses import dataclass
from typing import Literal, get_args

from flask import render_template

from backend.web import web_bp

PageName = Literal["dashboard", "send", "commands", "tsq", "audit", "settings"]

# Values as the JSON API spells them; the templates render selects and buttons from these.
BehaviorType = Literal[
    "success", "fail_permanent", "fail_transient", "fail_transient_then_succeed", "timeout"
]
CommandStatus = Literal[
    "PENDING", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELED", "IN_TROUBLESHOOTING_QUEUE"
]
StatKey = Literal["pending", "in_progress", "completed", "failed", "canceled", "in_tsq"]

BEHAVIOR_TYPES: tuple[BehaviorType, ...] = get_args(BehaviorType)
COMMAND_STATUSES: tuple[CommandStatus, ...] = get_args(CommandStatus)
PAGE_SIZES: tuple[int, ...] = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25
# The command type the dashboard's quick actions send.
QUICK_ACTION_COMMAND_TYPE = "TestCommand"


@dataclass(frozen=True)
class NavLink:
    """One entry of the main navigation."""

    page: PageName
    endpoint: str
    label: str


@dataclass(frozen=True)
class StatCard:
    """One dashboard card, filled from the key of the same name in ``GET /api/stats``."""

    key: StatKey
    label: str


NAV_LINKS: tuple[NavLink, ...] = (
    NavLink("dashboard", "web.dashboard", "Dashboard"),
    NavLink("send", "web.send_command", "Send Command"),
    NavLink("commands", "web.commands", "Commands"),
    NavLink("tsq", "web.troubleshooting", "Troubleshooting"),
    NavLink("audit", "web.audit", "Audit"),
    NavLink("settings", "web.settings", "Settings"),
)

STAT_CARDS: tuple[StatCard, ...] = (
    StatCard("pending", "Pending"),
    StatCard("in_progress", "In progress"),
    StatCard("completed", "Completed"),
    StatCard("failed", "Failed"),
    StatCard("canceled", "Canceled"),
    StatCard("in_tsq", "In TSQ"),
)


def _render_page(template: str, active_page: PageName, **context: object) -> str:
    """Render ``web/<template>`` inside the base layout with ``active_page`` marked in the nav."""
    return render_template(
        f"web/{template}", nav_links=NAV_LINKS, active_page=active_page, **context
    )


@web_bp.get("/")
def dashboard() -> str:
    """Statistics cards and one-click test commands."""
    return _render_page(
        "dashboard.html",
        "dashboard",
        stat_cards=STAT_CARDS,
        behavior_types=BEHAVIOR_TYPES,
        quick_action_command_type=QUICK_ACTION_COMMAND_TYPE,
    )


@web_bp.get("/send")
def send_command() -> str:
    """Form to send one command or a bulk batch with a chosen behavior."""
    return _render_page("send_command.html", "send", behavior_types=BEHAVIOR_TYPES)


@web_bp.get("/commands")
def commands() -> str:
    """Filterable, paginated list of commands."""
    return _render_page(
        "commands.html",
        "commands",
        statuses=COMMAND_STATUSES,
        page_sizes=PAGE_SIZES,
        default_page_size=DEFAULT_PAGE_SIZE,
    )


@web_bp.get("/commands/<command_id>")
def command_detail(command_id: str) -> str:
    """One command with its audit trail; an unknown id is reported by the page's script."""
    return _render_page("command_detail.html", "commands", command_id=command_id)


@web_bp.get("/tsq")
def troubleshooting() -> str:
    """Commands in the troubleshooting queue with retry, cancel and complete actions."""
    return _render_page("troubleshooting.html", "tsq")


@web_bp.get("/audit")
def audit() -> str:
    """Audit trail of one command, searched by command id."""
    return _render_page("audit.html", "audit")


@web_bp.get("/settings")
def settings() -> str:
    """Worker and retry configuration form."""
    return _render_page("settings.html", "settings")
