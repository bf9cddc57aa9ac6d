"""Small display helpers shared by pages and loaders."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

GAP = "—"  # how a missing value (no git SHA, NaN metric) is shown


def age(when: object, now: datetime | None = None) -> str:
    # pd.NaT is a datetime instance too: test for missing first (a source with no full pass yet).
    if when is None or pd.isna(when):
        return "never"
    now = now or datetime.now(timezone.utc)
    ts = pd.Timestamp(when)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    seconds = (pd.Timestamp(now) - ts).total_seconds()
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def short_sha(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        return GAP
    return value[:10]


# -- tables a person reads --------------------------------------------------------------------------
# Words that keep their capitals when a snake_case header is turned into a title.
_ACRONYMS = {"id": "ID", "sha": "SHA", "slo": "SLO", "url": "URL", "uc": "UC", "ms": "ms", "pct": "%",
             "p50": "p50", "p95": "p95", "n": "count"}
STATUS_WORDS = {"ok": "OK", "failed": "Failed", "failing": "Failing", "red": "Red", "amber": "Amber",
                "green": "Green", "no_data": "No data", "no data": "No data", "not_started": "Not started",
                "in_progress": "In progress", "done": "Done", "blocked": "Blocked", "stays": "Stays",
                "out_of_scope": "Out of scope", "incremental": "Incremental", "full": "Full",
                "READY": "Ready", "PENDING_REGISTRATION": "Pending", "FAILED_REGISTRATION": "Failed"}


def title(column: str) -> str:
    """`git_sha` → "Git SHA", `traffic_pct` → "Traffic %": a header a person reads."""
    words = [_ACRONYMS.get(w, w) for w in str(column).split("_") if w]
    if not words:
        return str(column)
    first = words[0] if words[0] in _ACRONYMS.values() else words[0].capitalize()
    return " ".join([first, *words[1:]])


def status_word(value: object) -> object:
    """A status code as the word a person reads (`not_started` → "Not started"); other values unchanged."""
    return STATUS_WORDS.get(value, value) if isinstance(value, str) else value


def _missing(value: object) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):      # lists, dicts: present
        return False


def readable(frame: pd.DataFrame, columns: list[str] | None = None, *, status: tuple[str, ...] = (),
             numeric: tuple[str, ...] = ()) -> pd.DataFrame:
    """A copy for display: the chosen columns in the order given (decisive first), status codes as
    words, missing values as the gap mark, times without microseconds. `numeric` columns stay numbers
    (they sort and take a number format; the grid shows their holes empty)."""
    out = frame[columns].copy() if columns is not None else frame.copy()
    for name in out.columns:
        col = out[name]
        if name in status:
            out[name] = col.map(status_word)
        if pd.api.types.is_datetime64_any_dtype(col):
            out[name] = col.dt.floor("s")
        elif pd.api.types.is_bool_dtype(col):
            continue
        elif pd.api.types.is_numeric_dtype(col):
            if col.isna().any() and name not in numeric:         # a number column with holes: the hole reads as "—", not "None"
                out[name] = [GAP if pd.isna(v) else (int(v) if float(v).is_integer() else round(float(v), 4))
                              for v in col]
                out[name] = out[name].astype(str)
        else:
            values = [GAP if _missing(v) or (isinstance(v, str) and not v.strip()) else v for v in out[name]]
            if any(v is not GAP and not isinstance(v, str) for v in values):
                # A column mixing text with the gap mark must be one type for the grid: yes/no, lists
                # joined, the rest as text.
                values = [_cell_text(v) for v in values]
            out[name] = values
    return out


def _cell_text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or GAP
    return str(value)


def column_config(frame: pd.DataFrame, given: dict[str, object] | None = None, *, pin: int = 1) -> dict[str, object]:
    """Every column titled (given titles or configs win), times to the minute, the first `pin`
    columns pinned so the name stays when a table scrolls sideways."""
    import streamlit as st

    given = given or {}
    config: dict[str, object] = {}
    for i, name in enumerate(frame.columns):
        spec = given.get(name)
        if spec is None:
            if pd.api.types.is_datetime64_any_dtype(frame[name]):
                spec = st.column_config.DatetimeColumn(title(name), format="YYYY-MM-DD HH:mm")
            else:
                spec = st.column_config.Column(title(name))
        elif isinstance(spec, str):
            spec = (st.column_config.DatetimeColumn(spec, format="YYYY-MM-DD HH:mm")
                    if pd.api.types.is_datetime64_any_dtype(frame[name]) else st.column_config.Column(spec))
        if i < pin:
            spec = {**spec, "pinned": True} if isinstance(spec, dict) else spec
        config[name] = spec
    return config


def show_table(frame: pd.DataFrame, columns: list[str] | None = None, config: dict[str, object] | None = None, *,
               empty: str, status: tuple[str, ...] = (), pin: int = 1, **kwargs: object) -> None:
    """One table as a person reads it (see `readable`, `column_config`), or `empty` in words."""
    import streamlit as st

    if frame is None or frame.empty:
        st.caption(empty)
        return
    numeric = tuple(n for n, spec in (config or {}).items()
                    if isinstance(spec, dict) and (spec.get("type_config") or {}).get("type") in ("number", "progress"))
    shown = readable(frame, columns, status=status, numeric=numeric)
    st.dataframe(shown, hide_index=True, width="stretch", column_config=column_config(shown, config, pin=pin),
                 **kwargs)


# -- links between pages ------------------------------------------------------------------------------
def page_url(page: str, **params: object) -> str:
    """A relative link to one of our pages with its state in the query string. `page` is our own
    url path; every value is percent-encoded, so a collected name cannot break out of the link."""
    from urllib.parse import quote, urlencode

    query = urlencode({k: str(v) for k, v in params.items() if v is not None and str(v) != ""}, quote_via=quote)
    return f"{quote(page)}?{query}" if query else quote(page)


def when_label(when: object) -> str:
    """A time to the minute, UTC ("2026-11-30 14:05"); missing is the gap mark."""
    if _missing(when):
        return GAP
    ts = pd.Timestamp(when)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%d %H:%M")
