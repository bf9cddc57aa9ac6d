"""The Markdown evidence pack as one self-contained HTML page that prints cleanly (A4, no app chrome).

Rendered by markdown-it with raw HTML off: the pack's collected text is already escaped Markdown,
and no tag in it can become markup here either. No external fonts, scripts or images.
"""
from __future__ import annotations

import html

from markdown_it import MarkdownIt

_CSS = """
@page { size: A4; margin: 16mm 14mm; }
body { font: 10.5pt/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #111; max-width: 60em;
       margin: 2em auto; padding: 0 1em; }
h1 { font-size: 16pt; margin: 0 0 .4em; } h2 { font-size: 12.5pt; margin: 1.2em 0 .4em; break-after: avoid; }
table { border-collapse: collapse; width: 100%; margin: .3em 0 .8em; font-size: 9pt; }
th, td { border: 1px solid #bbb; padding: 2px 5px; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #eef2ef; } tr { break-inside: avoid; }
code { font: 8.5pt ui-monospace, "DejaVu Sans Mono", monospace; overflow-wrap: anywhere; }
@media print { body { margin: 0; max-width: none; } }
"""


def printable(markdown: str, title: str) -> str:
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Evidence pack: {html.escape(title)}</title><style>{_CSS}</style></head>"
            f"<body>\n{body}</body></html>\n")
