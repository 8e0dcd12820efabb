"""HTML views of the demo UI: each one renders a page shell, the data comes from the JSON API."""

from dataclasses import dataclass
from typing import Literal, get_args

from flask import render_template

from backend.bus import DOMAIN
from backend.bus.behaviors import BehaviorType
from backend.schemas.commands import TERMINAL_STATUSES, CommandStatus
from backend.web import web_bp

PageName = Literal["dashboard", "send", "commands", "tsq", "audit", "settings"]

StatKey = Literal["pending", "in_progress", "completed", "failed", "canceled", "in_tsq"]

# Values as the JSON API spells them; the templates render selects and buttons from these.
BEHAVIOR_TYPES: tuple[BehaviorType, ...] = get_args(BehaviorType)
COMMAND_STATUSES: tuple[CommandStatus, ...] = get_args(CommandStatus)
PAGE_SIZES: tuple[int, ...] = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25
# The command type the dashboard's quick actions send.
QUICK_ACTION_COMMAND_TYPE = "TestCommand"
QUICK_ACTION_DOMAIN = DOMAIN  # named, so a same-named type in another domain can't take it

# The one name of the queue an operator works through, used by nav, cards, badges and titles.
TSQ_NAME = "Troubleshooting queue"

# One readable label per status; app.css gives each status its own colour (.status-<slug>).
STATUS_LABELS: dict[CommandStatus, str] = {
    "PENDING": "Pending",
    "IN_PROGRESS": "In progress",
    "COMPLETED": "Completed",
    "FAILED": "Failed",
    "CANCELED": "Canceled",
    "IN_TROUBLESHOOTING_QUEUE": TSQ_NAME,
}

BEHAVIOR_LABELS: dict[BehaviorType, str] = {
    "success": "Success",
    "fail_permanent": "Permanent failure",
    "fail_transient": "Transient failure",
    "fail_transient_then_succeed": "Transient, then success",
    "timeout": "Timeout",
}


@dataclass(frozen=True)
class NavLink:
    """One entry of the main navigation."""

    page: PageName
    endpoint: str
    label: str


@dataclass(frozen=True)
class StatCard:
    """One dashboard card, filled from ``GET /api/stats[key]``; links to its status's commands."""

    key: StatKey
    status: CommandStatus

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]


NAV_LINKS: tuple[NavLink, ...] = (
    NavLink("dashboard", "web.dashboard", "Dashboard"),
    NavLink("send", "web.send_command", "Send command"),
    NavLink("commands", "web.commands", "Commands"),
    NavLink("tsq", "web.troubleshooting", TSQ_NAME),
    NavLink("audit", "web.audit", "Audit trail"),
    NavLink("settings", "web.settings", "Settings"),
)

STAT_CARDS: tuple[StatCard, ...] = (
    StatCard("pending", "PENDING"),
    StatCard("in_progress", "IN_PROGRESS"),
    StatCard("completed", "COMPLETED"),
    StatCard("failed", "FAILED"),
    StatCard("canceled", "CANCELED"),
    StatCard("in_tsq", "IN_TROUBLESHOOTING_QUEUE"),
)


def ui_config() -> dict[str, object]:
    """What the browser scripts need to name things exactly as the server does (App.config)."""
    return {
        "statusLabels": STATUS_LABELS,
        "terminalStatuses": list(TERMINAL_STATUSES),
        "behaviorLabels": BEHAVIOR_LABELS,
        "tsqName": TSQ_NAME,
    }


def _render_page(
    template: str, active_page: PageName, nav_count_from_page: bool = False, **context: object
) -> str:
    """Render ``web/<template>`` inside the base layout with ``active_page`` marked in the nav.

    The nav's queue count is loaded by app.js, unless the page loads that number anyway
    (``nav_count_from_page``) and fills it itself.
    """
    return render_template(
        f"web/{template}",
        nav_links=NAV_LINKS,
        active_page=active_page,
        nav_count_from_page=nav_count_from_page,
        ui_config=ui_config(),
        tsq_name=TSQ_NAME,
        status_labels=STATUS_LABELS,
        behavior_labels=BEHAVIOR_LABELS,
        **context,
    )


@web_bp.get("/")
def dashboard() -> str:
    """Statistics cards, one-click test commands and the latest activity."""
    return _render_page(
        "dashboard.html",
        "dashboard",
        stat_cards=STAT_CARDS,
        behavior_types=BEHAVIOR_TYPES,
        quick_action_command_type=QUICK_ACTION_COMMAND_TYPE,
        quick_action_domain=QUICK_ACTION_DOMAIN,
        nav_count_from_page=True,  # its stats poll fills the nav's count
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
    return _render_page("troubleshooting.html", "tsq", nav_count_from_page=True)


@web_bp.get("/audit")
def audit() -> str:
    """Audit trail of one command, searched by command id."""
    return _render_page("audit.html", "audit")


@web_bp.get("/settings")
def settings() -> str:
    """Worker and retry configuration form."""
    return _render_page("settings.html", "settings")
