"""Repeats of one test (`--repeat-each N`): their node ids, grouped, with a pass rate.

Repeat K of N of `tests/test_x.py::test_y` is `tests/test_x.py::test_y[repeat-KofN]`
(`...::test_y[a-repeat-2of5]` for a parametrized one), so every repeat has a folder, a test
id (X-Test-Id) and a results line of its own. The report and summary group them back under
the test's own node id: "2/3 passed". A repeat that passed only on retry is flaky, not
passed (the flake is what a repeat run chases).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Protocol

from orchestrator.artifacts.text import code_span
from orchestrator.util import split_repeat, test_slug

GROUPS_SHOWN = 200  # repeated tests listed in the summary (the report lists all)


class RepeatedTest(Protocol):
    @property
    def nodeid(self) -> str: ...
    @property
    def outcome(self) -> str: ...


@dataclass(frozen=True)
class RepeatGroup:
    """The repeats of one test, in repeat order."""

    nodeid: str  # the test's own node id
    repeats: tuple[RepeatedTest, ...]

    @property
    def passed(self) -> int:
        return sum(1 for test in self.repeats if test.outcome in ("passed", "xfailed"))

    @property
    def rate(self) -> str:
        """`2/3 passed`, and the flaky and skipped repeats when there are any."""
        text = f"{self.passed}/{len(self.repeats)} passed"
        for outcome in ("flaky", "skipped"):
            found = sum(1 for test in self.repeats if test.outcome == outcome)
            text += f" · {found} {outcome}" if found else ""
        return text


def group_repeats(tests: Iterable[RepeatedTest]) -> list[RepeatGroup]:
    """One group per repeated test (tests without a repeat id are left out), the lowest pass
    rate first (else in the order their first repeat appears); each group's repeats by K."""
    groups: dict[str, list[tuple[int, RepeatedTest]]] = {}
    for test in tests:
        found = split_repeat(test.nodeid)
        if found is not None:
            groups.setdefault(found[0], []).append((found[1], test))
    made = [
        RepeatGroup(nodeid, tuple(t for _, t in sorted(repeats, key=lambda pair: pair[0])))
        for nodeid, repeats in groups.items()
    ]
    return sorted(made, key=lambda group: group.passed / len(group.repeats))


# -- how the report and summary show them ----------------------------------------------------

REPEATS_CSS = """
.repeats td.rate{white-space:nowrap;font-weight:600}.repeats td.n{font-family:var(--mono);
word-break:break-all}.strip{display:flex;flex-wrap:wrap;gap:3px}
.strip a,.strip span{display:inline-block;min-width:22px;text-align:center;border-radius:4px;
color:#fff;font-size:11px;padding:0 4px;text-decoration:none}
"""


def repeats_section(groups: Sequence[RepeatGroup], has_anchor: set[str]) -> str:
    """The report's "Repeated tests" section: per test its pass rate and one small badge per
    repeat (linked to its failure when it has one: node ids in `has_anchor`)."""
    if not groups:
        return ""
    rows = []
    for group in groups:
        cells = []
        for number, test in enumerate(group.repeats, start=1):
            label = f'title="{escape(test.nodeid)}: {escape(test.outcome)}"'
            css = f'class="s-{escape(test.outcome)}"'
            if test.nodeid in has_anchor:
                href = "#t-" + escape(test_slug(test.nodeid))
                cells.append(f'<a {css} {label} href="{href}">{number}</a>')
            else:
                cells.append(f"<span {css} {label}>{number}</span>")
        rows.append(
            f'<tr><td class="n">{escape(group.nodeid)}</td>'
            f'<td class="rate">{escape(group.rate)}</td>'
            f'<td><div class="strip">{"".join(cells)}</div></td></tr>'
        )
    return (
        f'<section id="repeats"><h2>Repeated tests ({len(groups)})</h2>'
        '<table class="repeats"><thead><tr><th>test</th><th>pass rate</th><th>repeats</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def repeats_markdown(groups: Sequence[RepeatGroup]) -> list[str]:
    """summary.md's lines for the repeated tests (none when nothing was repeated)."""
    if not groups:
        return []
    lines = ["", f"## Repeated tests ({len(groups)})", ""]
    for group in groups[:GROUPS_SHOWN]:
        marks = "".join(_MARK.get(test.outcome, "?") for test in group.repeats)
        lines.append(f"- {code_span(group.nodeid)}: **{group.rate}** {code_span(marks)}")
    if len(groups) > GROUPS_SHOWN:
        lines.append(f"- … {len(groups) - GROUPS_SHOWN} more in the report")
    return lines


# One character per repeat in the summary: . passed, F failed, E error, f flaky, s skipped
_MARK = {"passed": ".", "failed": "F", "error": "E", "flaky": "f", "skipped": "s"}
_MARK |= {"xfailed": "x", "xpassed": "X"}
