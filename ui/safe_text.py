"""Text from a platform or a config is data, never markup.

Streamlit renders Markdown in `st.markdown`, alerts, captions, headers, metric and widget labels,
button labels, radio / segmented-control options, tabs, expanders and `help=` tooltips, plus its own
extensions: `:color[…]` directives, `:material/…:` icons, emoji shortcodes and `$…$` LaTeX. A model
named `![x](http://host/p.png)` would make every viewer's browser fetch that URL. So every value
that came from outside (names, tags, table names, error texts, config paths) goes through `md()`
before it is placed in such a string; our own words around it keep their Markdown.

CommonMark shows any backslash-escaped ASCII punctuation literally. Escaped everywhere: the
characters that open inline markup — links and images `[ ] ( ) !`, emphasis `* _ ~`, code `` ` ``,
HTML and entities `< > &`, tables `|`, headings `#`, Streamlit's directives, icons and emoji
shortcodes `:`, LaTeX `$`, braces and the backslash itself. Escaped at the
start of a line only, where they open blocks: list and rule markers `- + =` and `1.`. Common name
characters (`-`, `.`, `/`, `@`) stay readable elsewhere.

GFM autolinks (`http://…`, `www.…`, `a@b.c`) are found in the text *after* escapes are resolved, so
no escape stops them; they only start after a space or punctuation, so an invisible WORD JOINER
(U+2060) before `http`, `www.`, `mailto:`/`xmpp:` and `@` leaves the text as it reads, and no link.
"""
from __future__ import annotations

import math
import re

from ui.format import GAP

_INLINE = re.compile(r"([\\`*_{}\[\]()!#<>|~$:&])")
_LINE_START = re.compile(r"^([ \t]*)([-+=]|\d+\.)", re.MULTILINE)
_AUTOLINK = re.compile(r"(?=https?:|www\.|mailto:|xmpp:|@)", re.IGNORECASE)
WORD_JOINER = "\u2060"
# C0/C1 controls (except tab and newline) and the bidi embedding/override/isolate controls, which
# can make a name read differently from what it is ("Trojan Source"). Plain RTL text needs none.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile(r"\r\n?|\n")


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def md(value: object, limit: int | None = None, *, one_line: bool = False) -> str:
    """`value` as literal text inside Streamlit Markdown: missing is the gap mark, markup is escaped.

    `limit` cuts very long values (a 100 KB tag) for display; `one_line` turns line breaks into
    spaces, for labels and headings where a break would end the element.
    """
    if _is_missing(value):
        return GAP
    text = _INVISIBLE.sub("", str(value))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    if one_line:
        text = _LINE_BREAKS.sub(" ", text)
    text = _AUTOLINK.sub(WORD_JOINER, text)
    text = _INLINE.sub(r"\\\1", text)
    return _LINE_START.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], text)


def label(value: object, limit: int = 200) -> str:
    """A collected value used as a widget, button, metric, tab or expander label (one short line)."""
    return md(value, limit, one_line=True)
