"""What the HTML report and the sweep page share: escaped text, test ids that wrap, tables.

Every piece of user text goes through :func:`escape_html`: markup escaped (``<script>`` shows as
written) and control characters shown as ``\\x1b`` (``formatting.visible``, as in the Markdown
summary). Test ids wrap only after their separators (:func:`wrappable_id`), figures only before
their interval (:func:`unbroken`), and a table leaves out the columns that hold nothing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from pytest_otel_overhead.formatting import NO_FIGURE, visible
from pytest_otel_overhead.stats.verdict import Verdict

__all__ = ["escape_html", "table", "unbroken", "verdict_span", "wrappable_id"]

_SEPARATORS = re.compile(r"(::|/|\[|-|,)")
_TAG = re.compile(r"(<[^>]*>)")
_KEPT_TOGETHER = re.compile(r"(?<!,) (?![\[(→])")


def escape_html(value: object) -> str:
    """``value`` as HTML text: markup escaped (``<script>`` shows as written), control characters shown as ``\\x1b``."""
    return html.escape(visible(str(value)), quote=True)


def wrappable_id(nodeid: str) -> str:
    """A test id as HTML that may wrap after ``/``, ``::``, ``[``, ``-`` and ``,``: never inside a word.

    ``<wbr>`` marks where; the page's style keeps ``word-break`` and ``overflow-wrap`` normal, so the
    browser breaks nowhere else (``overflow-wrap: anywhere`` would split ``test_service.p y``).
    """
    parts = _SEPARATORS.split(nodeid)
    return "".join(part + "<wbr>" if _SEPARATORS.fullmatch(part) else escape_html(part) for part in parts)


def verdict_span(verdict: Verdict | None, text: str | None = None) -> str:
    """The verdict (or ``text``) coloured by its verdict; empty without one."""
    if verdict is None:
        return ""
    return f'<span class="{verdict.value}">{escape_html(text or verdict.value)}</span>'


def table(
    header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = (), *, grouped: bool = False
) -> str:
    """Cells are given as HTML already escaped; header cells are plain text.

    A column with nothing in any row (every cell empty or ``NO_FIGURE``) is left out: an empty
    column only says that the table was made for another case. ``grouped``: the first column (a
    test) heads a group of rows on a line of its own, across the table, instead of taking a column:
    long test ids then cost no width, and the figures keep theirs on a narrow screen.
    """
    first = 1 if grouped else 0
    kept = [c for c in range(first, len(header)) if not rows or any(row[c] not in ("", NO_FIGURE) for row in rows)]
    head = "".join(f"<th>{escape_html(header[c])}</th>" for c in kept)
    body = []
    group = None
    for row in rows:
        if grouped and row[0] and row[0] != group:
            group = row[0]
            body.append(f'<tr class="group"><th colspan="{len(kept)}">{group}</th></tr>')
        cells = []
        for index in kept:
            css = ' class="num"' if index in numeric else (' class="id"' if index == 0 else "")
            cells.append(f"<td{css}>{unbroken(row[index]) if index in numeric else row[index]}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def unbroken(cell: str) -> str:
    """A figure that wraps only before its interval or origin, or inside an interval after its comma.

    ``+1.62 ms`` never breaks between number and unit; ``+1.62 ms [+1.02 ms, +2.53 ms] (marker)``
    breaks first before ``[`` and ``(``.
    """
    parts = _TAG.split(cell)  # text and tags alternate; the spaces inside a tag stay
    return "".join(p if p.startswith("<") else _KEPT_TOGETHER.sub("\u00a0", p) for p in parts)
