"""Data for the pages, shaped for display and cached.

Every loader takes the store path and a `stamp` (the store file's modification time), so a new
snapshot invalidates the cache at once while repeated reruns cost nothing; the ttl bounds memory.
Pages call these and only lay out what they return.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import streamlit as st

from lineage.producing_run import producing_runs
from store import Store, StoreMissing
from store import queries as q
from ui.format import GAP, age, page_url, short_sha

TTL = 300


def store_stamp(store_path: Path) -> int:
    """Changes whenever a snapshot is committed (file: its mtime; DuckLake: its latest snapshot id)."""
    return Store(store_path).stamp()


@st.cache_data(ttl=TTL, show_spinner=False)
def source_status(store_path: str, stamp: int) -> pd.DataFrame:
    """One row per source: health, last good snapshot and its age, failures since."""
    store = Store(store_path)
    try:
        frame = q.source_health(store)
    except StoreMissing:
        return pd.DataFrame()
    now = datetime.now(timezone.utc)
    frame["age"] = frame["last_good_at"].map(lambda t: age(t, now))
    frame["state"] = frame.apply(
        lambda r: "never collected" if pd.isna(r["last_good_id"])
        else ("failing" if r["last_status"] == "failed" else "ok"), axis=1)
    frame["last_error"] = frame["last_errors"].map(_first_error)
    return frame[["source", "platform", "kind", "state", "last_good_at", "age", "last_good_mode",
                  "last_good_id", "failures_since_good", "last_attempt_at", "last_error"]]


def _first_error(raw: object) -> str:
    import json

    if not isinstance(raw, str):
        return ""
    errors = json.loads(raw) or []
    return errors[0] if errors else ""


@st.cache_data(ttl=TTL, show_spinner=False)
def headline(store_path: str, stamp: int) -> dict[str, object]:
    """Figures for the top of the Overview page, as of now."""
    store = Store(store_path)
    try:
        counts = q.entity_counts(store)
        health = q.source_health(store)
    except StoreMissing:
        return {}
    total = counts.groupby("entity")["count"].sum().to_dict() if not counts.empty else {}
    good = health["last_good_at"].dropna()
    return {
        "sources": len(health),
        "failing": int((health["last_status"] == "failed").sum()),
        "oldest_good": age(good.min(), datetime.now(timezone.utc)) if not good.empty else "never",
        "experiments": int(total.get("experiments", 0)),
        "runs": int(total.get("runs", 0)),
        "registered_models": int(total.get("registered_models", 0)),
        "model_versions": int(total.get("model_versions", 0)),
        "aliases": int(total.get("model_aliases", 0)),
    }


@st.cache_data(ttl=TTL, show_spinner=False)
def counts_by_source(store_path: str, stamp: int) -> pd.DataFrame:
    """Entities (rows) × sources (columns), current snapshot."""
    try:
        counts = q.entity_counts(Store(store_path))
    except StoreMissing:
        return pd.DataFrame()
    if counts.empty:
        return counts
    table = counts.pivot_table(index="entity", columns="source", values="count", fill_value=0, aggfunc="sum")
    table.columns.name = None
    return table.reset_index()


@st.cache_data(ttl=TTL, show_spinner=False)
def aliases_now(store_path: str, stamp: int) -> pd.DataFrame:
    """Every alias as of now, with the run that produced its version and that run's git SHA.

    The run is the one `lineage.producing_run` names (registry run_id, MLmodel origin, LoggedModel),
    found on whichever platform holds it.
    """
    store = Store(store_path)
    try:
        points = q.resolve_as_of(store)
        aliases = q.entity_as_of(store, "model_aliases", points=points)
        versions = q.entity_as_of(store, "model_versions", points=points,
                                  columns=["name", "version", "run_id", "model_id", "status"])
        origins = q.entity_as_of(store, "model_origins", points=points, columns=["name", "version", "origin_run_id"])
        logged = q.entity_as_of(store, "logged_models", points=points, columns=["model_id", "source_run_id"])
        runs = q.entity_as_of(store, "runs", points=points, columns=["run_id", "run_name", "git_sha"])
    except StoreMissing:
        return pd.DataFrame()
    if aliases.empty:
        return pd.DataFrame()
    resolved = producing_runs(versions, origins, logged, collected=set(runs["run_id"]))
    merged = aliases.merge(resolved[["source", "name", "version", "status", "producing_run"]],
                           on=["source", "name", "version"], how="left")
    run_index = runs.drop_duplicates("run_id").set_index("run_id")
    found = merged["producing_run"].map(lambda r: r in run_index.index if isinstance(r, str) else False)
    merged["run"] = [
        (_run_name(run_index.at[r, "run_name"], r)
         + ("" if run_index.at[r, "platform"] == p else f" ({run_index.at[r, 'platform']})"))
        if ok else (GAP if not isinstance(r, str) else f"{r[:8]}… (not collected)")
        for r, ok, p in zip(merged["producing_run"], found, merged["platform"])]
    merged["git_sha"] = [short_sha(run_index.at[r, "git_sha"]) if ok else GAP
                         for r, ok in zip(merged["producing_run"], found)]
    # Each row opens its Audit trace: a link built from our own ids, percent-encoded.
    merged["audit"] = [page_url("audit_trace", source=s, model=n, alias=a)
                       for s, n, a in zip(merged["source"], merged["name"], merged["alias"])]
    return merged[["platform", "source", "name", "alias", "version", "status", "run", "git_sha", "audit"]].sort_values(
        ["name", "alias", "platform"]).reset_index(drop=True)


def _run_name(name: object, run_id: str) -> str:
    """A run without a name (MLflow allows it) is shown by its id, not a crash."""
    return name if isinstance(name, str) and name.strip() else f"{run_id[:8]} (no name)"


@st.cache_data(ttl=TTL, show_spinner=False)
def snapshot_history(store_path: str, stamp: int, source: str | None = None) -> pd.DataFrame:
    try:
        frame = q.snapshots(Store(store_path), source)
    except StoreMissing:
        return pd.DataFrame()
    for kind in ("added", "changed", "removed"):
        frame[kind] = frame["counts"].map(lambda c, k=kind: sum(v.get(k, 0) for v in (c or {}).values()))
    frame["warnings_n"] = frame["warnings"].map(len)
    frame["errors_n"] = frame["errors"].map(len)
    return frame


@st.cache_data(ttl=TTL, show_spinner=False)
def last_full_passes(store_path: str, stamp: int, sources: tuple[str, ...]) -> pd.DataFrame:
    """Per configured source: when its last full pass finished, how long ago, and why it was full."""
    try:
        frame = q.last_full_passes(Store(store_path))
    except StoreMissing:
        frame = pd.DataFrame(columns=["source", "last_full_at", "full_reason", "snapshot_id"])
    frame = pd.DataFrame({"source": list(sources)}).merge(frame, on="source", how="left")
    frame["ago"] = [age(t) for t in frame["last_full_at"]]
    frame["full_reason"] = frame["full_reason"].fillna(GAP)
    return frame[["source", "last_full_at", "ago", "full_reason", "snapshot_id"]]


def snapshot_report(history: pd.DataFrame, snapshot_id: int) -> dict[str, object]:
    """The report of one snapshot from an already-loaded history frame."""
    row = history.loc[history["snapshot_id"] == snapshot_id].iloc[0]
    counts = pd.DataFrame.from_dict(row["counts"] or {}, orient="index")
    if not counts.empty:
        counts = counts.reset_index(names="entity")[["entity", "seen", "added", "changed", "removed"]]
    return {"row": row, "counts": counts, "warnings": list(row["warnings"]), "errors": list(row["errors"])}


def clear() -> None:
    st.cache_data.clear()


def snapshot_outcomes(output: str) -> list[dict[str, object]] | None:
    """Per source, from `collectors snapshot --json`: result, counts of added / changed / removed,
    warnings and errors. None when the output is not that report (a usage or config error)."""
    import json

    try:
        report = json.loads(output)
        sources = report["sources"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None
    rows = []
    for o in sources:
        counts = o.get("counts") or {}
        totals = {k: sum(int(c.get(k, 0)) for c in counts.values()) for k in ("added", "changed", "removed")}
        rows.append({"source": o.get("source"), "ok": bool(o.get("ok")), "snapshot_id": o.get("snapshot_id"),
                     "mode": o.get("mode"), "seconds": float(o.get("seconds") or 0), **totals,
                     "warnings": list(o.get("warnings") or []), "errors": list(o.get("errors") or [])})
    return rows
