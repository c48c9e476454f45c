"""Self-contained HTML reports: headings, plain sentences, tables and embedded figures.

One file that opens in any browser, with figures embedded as base64 PNG, so a report can be
mailed or archived without its folder. Written atomically.
"""

from __future__ import annotations

import base64
import html
import io
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_wake.io.artefacts import atomic_path, package_versions

__all__ = ["HtmlReport"]

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #bbb; }
h3 { font-size: 1.1em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f0f0f0; }
td.text, th.text { text-align: left; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .9em; color: #555; }
.verdict { background: #f4f8ff; border-left: 4px solid #3467b3; padding: .5em 1em; }
.warning { background: #fff0f0; border-left: 4px solid #c0392b; padding: .5em 1em;
           font-weight: bold; color: #8b0000; }
.note { color: #555; font-size: .9em; }
footer { margin-top: 3em; font-size: .8em; color: #777; }
"""


class HtmlReport:
    """Build a report section by section, then :meth:`write` it.

    Parameters
    ----------
    title
        The report's title (also the page title).
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self._parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]

    def heading(self, text: str, level: int = 2) -> HtmlReport:
        """Add a section heading (``level`` 2 or 3)."""
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")
        return self

    def paragraph(self, text: str, kind: str | None = None) -> HtmlReport:
        """Add a paragraph; ``kind`` ``verdict``, ``warning`` or ``note`` styles it."""
        css = f' class="{kind}"' if kind else ""
        self._parts.append(f"<p{css}>{html.escape(text)}</p>")
        return self

    def bullets(self, items: list[str]) -> HtmlReport:
        """Add a bulleted list."""
        rows = "".join(f"<li>{html.escape(item)}</li>" for item in items)
        self._parts.append(f"<ul>{rows}</ul>")
        return self

    def table(self, frame: pd.DataFrame, *, caption: str | None = None, digits: int = 3,
              max_rows: int = 200, counts=None) -> HtmlReport:
        """Add a table; numbers rounded to ``digits``, NA shown as "NA", integers and counts
        with thousands separators.

        ``counts`` marks the cells that hold counts stored as floats: a boolean array
        broadcast to the table's rows x columns (one row, e.g. ``[[False, True]]``, marks
        columns; one column marks rows). A whole count is shown as an integer, one that is
        not (a quantile of counts) with ``digits`` decimals. By default a float column whose
        values are all whole numbers is taken as counts.
        """
        if counts is None:
            counts = [[pd.api.types.is_float_dtype(frame[c])
                       and bool(np.all(np.mod(frame[c].dropna().to_numpy(), 1) == 0))
                       for c in frame.columns]]
        counts = np.broadcast_to(np.asarray(counts, dtype=bool), frame.shape)[:max_rows]
        frame = frame.head(max_rows)
        head = "".join(
            f'<th class="{"text" if not pd.api.types.is_numeric_dtype(frame[c]) else ""}">'
            f"{html.escape(str(c))}</th>" for c in frame.columns)
        body = []
        for row, is_count in zip(frame.itertuples(index=False), counts, strict=True):
            cells = []
            for value, count in zip(row, is_count, strict=True):
                if isinstance(value, (float, np.floating)):
                    text = ("NA" if value != value else f"{value:,.0f}"
                            if count and float(value).is_integer() else f"{value:.{digits}f}")
                    cells.append(f"<td>{text}</td>")
                elif isinstance(value, (int, np.integer)) and not isinstance(value,
                                                                            (bool, np.bool_)):
                    cells.append(f"<td>{value:,}</td>")
                else:
                    cells.append(f'<td class="text">{html.escape(str(value))}</td>')
            body.append("<tr>" + "".join(cells) + "</tr>")
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self._parts.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>"
                           + "".join(body) + "</tbody></table>")
        return self

    def figure(self, figure_or_png, caption: str | None = None) -> HtmlReport:
        """Embed a matplotlib figure (closed afterwards) or a PNG file, as base64."""
        if isinstance(figure_or_png, (str, os.PathLike)):
            data = Path(figure_or_png).read_bytes()
        else:
            import matplotlib.pyplot as plt

            buffer = io.BytesIO()
            figure_or_png.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
            plt.close(figure_or_png)
            data = buffer.getvalue()
        encoded = base64.b64encode(data).decode("ascii")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        alt = html.escape(caption or "figure")
        self._parts.append(f'<figure><img alt="{alt}" src="data:image/png;base64,{encoded}">'
                           f"{cap}</figure>")
        return self

    def html(self) -> str:
        """The whole document as text."""
        versions = ", ".join(f"{k} {v}" for k, v in package_versions().items())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        footer = (f"<footer>Made by bayes_wake on {stamp}. Versions: "
                  f"{html.escape(versions)}.</footer>")
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>"
                "<body>" + "\n".join(self._parts) + footer + "</body></html>\n")

    def write(self, path: str | os.PathLike) -> Path:
        """Write the report atomically."""
        with atomic_path(path) as tmp:
            tmp.write_text(self.html(), encoding="utf-8")
        return Path(path)
