"""HTML building blocks: escaping, tables, number formatting, and data embedded as JSON.

Every string from a run goes through :func:`esc` (or ``textContent`` in the page's script);
:class:`Html` marks text that is already safe markup so tables can hold badges and code.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from typing import Any

from slimforge.io import jsonable

__all__ = ["Html", "code", "embed_json", "esc", "fmt", "jsonable", "table"]


class Html(str):
    """Markup that is already escaped; :func:`esc` passes it through unchanged."""


def esc(value: Any) -> Html:
    """``value`` as HTML text (quotes escaped too, so it is safe in attributes); Html passes through."""
    if isinstance(value, Html):
        return value
    return Html(html.escape(value if isinstance(value, str) else fmt(value), quote=True))


def fmt(value: Any) -> str:
    """A short human form: 4 significant digits for floats, ``-`` for None and non-finite values."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def code(value: Any) -> Html:
    """``value`` as escaped ``<code>`` (architecture strings: monospace, wrapped anywhere)."""
    return Html(f"<code>{esc(value)}</code>")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, cls: str = "") -> Html:
    """A ``<table>``; cells are escaped (Html cells kept), numbers aligned right."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            num = isinstance(cell, (int, float)) and not isinstance(cell, bool)
            cells.append(f'<td class="num">{esc(cell)}</td>' if num else f"<td>{esc(cell)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    attr = f' class="{esc(cls)}"' if cls else ""
    return Html(f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def embed_json(value: Any) -> Html:
    """JSON text safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` become ``\\u`` escapes, so no string from the run can close the script
    element (``</script>``) or open a comment; ``JSON.parse`` reads them back unchanged.
    """
    text = json.dumps(jsonable(value), allow_nan=False, ensure_ascii=True, separators=(",", ":"))
    return Html(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
