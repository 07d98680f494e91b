"""Self-contained HTML: escaped text, tables and inline images, with inline CSS only.

Nothing here fetches anything: no scripts, no fonts, no stylesheets from elsewhere; the
images are ``data:`` URIs. Every value is HTML-escaped.
"""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd

__all__ = ["CSS", "page", "section", "table", "figure", "paragraph", "bullets"]

CSS = """
body{font-family:Arial,Helvetica,sans-serif;margin:0 auto;max-width:1000px;padding:1em 2em;
color:#231f20;line-height:1.4}
h1{color:#005eb8;border-bottom:3px solid #005eb8;padding-bottom:.2em}
h2{color:#005eb8;margin-top:1.6em}
nav ol{columns:2}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
th,td{border:1px solid #d8dde0;padding:.25em .5em;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f0f4f5}
figure{margin:1em 0}
figure img{max-width:100%;height:auto;border:1px solid #d8dde0}
figcaption{font-size:.85em;color:#425563}
.caution{background:#fff9c4;border-left:6px solid #ffeb3b;padding:.5em 1em}
.missing{color:#8a1538;font-style:italic}
footer{margin-top:2em;font-size:.8em;color:#425563}
"""


def _cell(value) -> tuple[str, bool]:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "&ndash;", False
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), False
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}", True
    if isinstance(value, (float, np.floating)):
        return f"{float(value):,.10g}", True
    return escape(str(value)), False


def table(frame: pd.DataFrame, *, columns=None, caption: str | None = None) -> str:
    """An HTML table of ``frame`` (missing values shown as a dash; numbers right-aligned).

    Examples
    --------
    >>> import pandas as pd
    >>> from pophealth.reports.html import table
    >>> print(table(pd.DataFrame({"area": ["<A>"], "n": [1200]})))
    <table><thead><tr><th>area</th><th>n</th></tr></thead><tbody><tr><td>&lt;A&gt;</td><td class="num">1,200</td></tr></tbody></table>
    """
    cols = [c for c in (columns or frame.columns) if c in frame.columns]
    head = "".join(f"<th>{escape(str(c))}</th>" for c in cols)
    body = []
    for row in frame[cols].astype(object).itertuples(index=False, name=None):
        cells = []
        for v in row:
            text, num = _cell(v)
            cells.append(f'<td class="num">{text}</td>' if num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return (f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
            "</tbody></table>")


def figure(uri: str, alt: str, caption: str = "") -> str:
    """An ``<img>`` with a ``data:`` URI (anything else is refused: the page stays offline)."""
    if not uri.startswith("data:image/png;base64,"):
        raise ValueError("report figures must be inline PNG data URIs (rule 'no_network')")
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{uri}" alt="{escape(alt)}">{cap}</figure>'


def paragraph(text: str, cls: str | None = None) -> str:
    """An escaped paragraph, optionally with a CSS class."""
    attr = f' class="{escape(cls)}"' if cls else ""
    return f"<p{attr}>{escape(text)}</p>"


def bullets(items) -> str:
    """An escaped bullet list."""
    return "<ul>" + "".join(f"<li>{escape(str(i))}</li>" for i in items) + "</ul>"


def section(sid: str, heading: str, body: str) -> str:
    """A ``<section>`` with an id and an ``<h2>`` heading."""
    return f'<section id="{escape(sid)}"><h2>{escape(heading)}</h2>{body}</section>'


def page(title: str, subtitle: str, sections: list[tuple[str, str, str]]) -> str:
    """The whole document: title, contents and the sections ``(id, heading, body)``."""
    nav = "".join(f'<li><a href="#{escape(s)}">{escape(h)}</a></li>' for s, h, _ in sections)
    body = "".join(section(s, h, b) for s, h, b in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "img-src data:; style-src 'unsafe-inline'\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>"
            f"<nav><h2>Contents</h2><ol>{nav}</ol></nav>{body}"
            "<footer>Aggregate figures only: no patient-level data. Made with pophealth."
            "</footer></body></html>\n")
