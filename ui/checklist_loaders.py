"""Data for the Checklist page (and the Overview's migration figure), shaped for display and cached.

Cached loaders take the store path and stamp (ui.loaders.store_stamp) plus the plan folder and
its stamp, so a snapshot, a manual edit (the write checkpoints the file) or an edited plan file
invalidates them at once. Saving goes through `checklist.manual` in one short transaction.
"""
from __future__ import annotations

from datetime import date
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from checklist import manual, progress
from checklist.plan import Plan, PlanError, load_plan, plan_stamp
from gates.identity import Identity
from store import Store, StoreError, StoreMissing

TTL = 300
EVIDENCE_LABEL = "(from evidence)"
RULE_LABEL = "(classifier rule)"
STATUS_COLORS = {"done": "#1f6f5c", "stays": "#5b7fa6", "in_progress": "#d4a017", "blocked": "#c0392b",
                 "not_started": "#9e9e9e"}


def plan_key() -> tuple[str, int]:
    """(plan folder, stamp): the plan arguments every cached loader takes."""
    return plan_stamp()


@st.cache_data(ttl=TTL, show_spinner=False)
def plan(plan_dir: str, stamp: int) -> Plan | str:
    """The plan, or the validation message naming file, entry and field."""
    try:
        return load_plan(plan_dir)
    except PlanError as e:
        return str(e)


def _snapshot_key(store: Store) -> tuple[tuple[str, int], ...]:
    """Which snapshots "now" is: a manual save changes the store file, not this."""
    from store.queries import resolve_as_of

    return tuple(sorted((s, p.snapshot_id) for s, p in resolve_as_of(store).items()))


@st.cache_data(ttl=TTL, show_spinner="Reading the estate from the store…")
def _estate(store_path: str, snapshot_key: tuple[tuple[str, int], ...]) -> tuple[list, set[str]]:
    return progress.estate_now(Store(store_path))


@st.cache_data(ttl=TTL, show_spinner="Checking the migration against the store…")
def assessment(store_path: str, stamp: int, plan_dir: str, plan_stamp_: int) -> progress.Assessment | str | None:
    """Everything the page shows now; None without a store, a message when the plan or store is unusable.

    The estate is cached per snapshot set, so after a save only the log is read again."""
    loaded = plan(plan_dir, plan_stamp_)
    if isinstance(loaded, str):
        return loaded
    store = Store(store_path)
    try:
        assets, collected = _estate(store_path, _snapshot_key(store))
        return progress.assess_estate(loaded, assets, collected, manual.manual_log(store))
    except StoreMissing:
        return None
    except StoreError as e:
        return str(e)


@st.cache_data(ttl=TTL, show_spinner="Replaying the snapshot history…")
def _burn_up_past(store_path: str, snapshot_key: tuple[tuple[str, int], ...], plan_dir: str, plan_stamp_: int,
                  log_key: tuple) -> pd.DataFrame:
    store = Store(store_path)
    assets, collected = _estate(store_path, snapshot_key)
    return progress.burn_up_past(store, plan(plan_dir, plan_stamp_), progress.snapshot_points(store),
                                 manual.manual_log(store), assets, collected)


@st.cache_data(ttl=TTL, show_spinner=False)
def burn_up(store_path: str, stamp: int, plan_dir: str, plan_stamp_: int) -> pd.DataFrame:
    """The burn-up: past points cached per snapshot set and log-as-of-then (a save now keeps them),
    plus the point "now" when something was recorded since the last snapshot."""
    loaded = plan(plan_dir, plan_stamp_)
    if isinstance(loaded, str):
        return pd.DataFrame()
    store = Store(store_path)
    try:
        points = progress.snapshot_points(store)
        if not points:
            return pd.DataFrame(columns=["time", "series", "workloads"])
        log = manual.manual_log(store)
        key = _snapshot_key(store)
        assets, collected = _estate(store_path, key)
        past = _burn_up_past(store_path, key, plan_dir, plan_stamp_, progress.past_log_key(points, log))
        return pd.concat([past, progress.burn_up_now(loaded, points, log, assets, collected)], ignore_index=True)
    except StoreError:
        return pd.DataFrame()


@st.cache_data(ttl=TTL, show_spinner=False)
def migration_headline(store_path: str, stamp: int) -> dict[str, Any]:
    """The Overview's figure: {} when nothing is collected, {"error": …} when the plan is broken."""
    found = assessment(store_path, stamp, *plan_key())
    if found is None:
        return {}
    if isinstance(found, str):
        return {"error": found}
    figures = dict(found.headline)
    figures["label"] = ("—" if figures["progress"] is None else f"{figures['progress']:.0%}")
    figures["help"] = (f"{figures['complete']} of {figures['workloads']} workloads done or decided to stay; "
                       f"{figures['proven']} proven by evidence")
    return figures


def burn_up_chart(frame: pd.DataFrame) -> alt.Chart:
    series = ["in scope", "complete (evidence or decision)", "done by evidence"]
    # A legend under the chart (it does not steal width), dates as dates, labels level and thinned.
    return alt.Chart(frame).mark_line(point=True, interpolate="step-after").encode(
        x=alt.X("time:T", title=None, axis=alt.Axis(format="%d %b", labelAngle=0, labelOverlap=True, tickCount=8)),
        y=alt.Y("workloads:Q", title="workloads", axis=alt.Axis(tickMinStep=1)),
        color=alt.Color("series:N", title=None, sort=series,
                        scale=alt.Scale(domain=series, range=["#9e9e9e", "#5b7fa6", "#1f6f5c"]),
                        legend=alt.Legend(orient="bottom", direction="horizontal", labelLimit=300)),
        strokeDash=alt.StrokeDash("series:N", sort=series, legend=None,
                                  scale=alt.Scale(domain=series, range=[[4, 3], [1, 0], [1, 0]])),
        tooltip=[alt.Tooltip("time:T", format="%Y-%m-%d %H:%M"), "series:N", "workloads:Q"],
    ).properties(height=260)


def owners(workloads: pd.DataFrame) -> list[str]:
    return sorted(o for o in workloads["owner"].dropna().unique())


def filter_workloads(workloads: pd.DataFrame, *, kinds: list[str], statuses: list[str], owner: str,
                     only_disagreements: bool, include_out_of_scope: bool, text: str) -> pd.DataFrame:
    """The rows the filters keep. `owner` is "anyone", "unowned" or an owner's name."""
    keep = pd.Series(True, index=workloads.index)
    if kinds:
        keep &= workloads["kind"].isin(kinds)
    if statuses:
        keep &= workloads["status"].isin(statuses)
    if owner == "unowned":
        keep &= workloads["owner"].isna()
    elif owner != "anyone":
        keep &= workloads["owner"] == owner
    if only_disagreements:
        keep &= workloads["disagreement"] != ""
    if not include_out_of_scope:
        keep &= workloads["in_scope"]
    if text.strip():
        needle = text.strip().lower()
        keep &= workloads["name"].str.lower().str.contains(needle, regex=False) | \
            workloads["asset_key"].str.lower().str.contains(needle, regex=False)
    return workloads[keep].reset_index(drop=True)


def workloads_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


STEP_EXPORT = ["number", "title", "state", "progress", "complete", "workloads", "blocked", "manual_status", "owner",
               "due", "measure", "kinds", "detail", "step_key"]


def steps_csv(frame: pd.DataFrame) -> bytes:
    """The checklist steps as CSV, as the workloads export: raw values, one row per step."""
    return frame[[c for c in STEP_EXPORT if c in frame.columns]].to_csv(index=False).encode("utf-8")


def matrix_table(loaded: Plan) -> pd.DataFrame:
    return pd.DataFrame([{"kind": k.kind, "workload": k.workload, "target": k.target, "rationale": k.rationale,
                          "counted": k.in_scope} for k in loaded.kinds.values()])


def editable_items(found: progress.Assessment) -> dict[str, str]:
    """Asset key / step key → label, workloads first."""
    items = {r.asset_key: f"{r.name} · {r.asset_type.replace('_', ' ')} · {r.source}"
             for r in found.workloads.itertuples()}
    items.update({r.step_key: f"Step {r.number}: {r.title}" for r in found.steps.itertuples()})
    return items


def item_state(found: progress.Assessment, key: str) -> dict[str, Any]:
    """What the edit form starts from: the item's current manual state and what the store shows."""
    table = found.workloads if not key.startswith("step:") else found.steps
    column = "asset_key" if not key.startswith("step:") else "step_key"
    row = table[table[column] == key].iloc[0].to_dict()
    latest = manual.current_manual(found.log)
    entry = latest.loc[key].to_dict() if key in latest.index else {}
    due = entry.get("due")
    return {
        "is_step": key.startswith("step:"), "row": row,
        "status": entry.get("status") if isinstance(entry.get("status"), str) else None,
        "owner": entry.get("owner") if isinstance(entry.get("owner"), str) else "",
        "due": pd.Timestamp(due).date() if due is not None and not pd.isna(due) else None,
        "notes": entry.get("notes") if isinstance(entry.get("notes"), str) else "",
        "kind_override": (entry.get("kind_override") if entry.get("kind_override") in found.plan.kinds else None),
    }


def item_history(found: progress.Assessment, key: str) -> pd.DataFrame:
    """The item's entries, newest first; a cleared status reads "(from evidence)"."""
    frame = manual.item_history(found.log, key)
    frame["status"] = frame["status"].astype(object).where(frame["status"].notna(), EVIDENCE_LABEL)
    return frame


def save_manual_state(store_path: str, key: str, *, who: Identity, status: str | None, owner: str,
                      due: date | None, notes: str, kind_override: str | None, known_kinds: list[str]) -> int:
    """Append the item's new manual state, as `who` (ui.identity.current_identity); the cached
    tables refresh because the write changes the store's stamp."""
    return manual.record_manual_status(Store(store_path), key, status=status, owner=owner, due=due, notes=notes,
                                       kind_override=kind_override, who=who, known_kinds=known_kinds)
