"""The migration's state: inventory × classification × evidence × manual status, and its history.

Status of a workload:
- evidence status — what the store proves (checklist.evidence): not_started / in_progress / done,
  or none when nothing collected can say;
- manual status — set on the Checklist page (checklist.manual), any of not_started /
  in_progress / blocked / done / stays;
- status — the manual one when set, else the evidence one (else not_started). "Complete" means
  done or stays. When the two disagree the row says how, so a claim without proof (or proof
  nobody recorded) stays visible.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from checklist.assets import PLATFORM_COLUMNS, Asset, estate_assets, source_assets
from checklist.evidence import DONE, IN_PROGRESS, NOT_STARTED, Evidence, evidence_for
from checklist.manual import COMPLETE, current_manual, manual_log
from checklist.plan import Plan, Step
from checklist.rules import UNCLASSIFIED, classify
from store import Store
from store import queries as q
from store.entities import ENTITIES
from store.visibility import visible_mask

MLFLOW_TABLES = ("experiments", "runs", "model_versions", "model_aliases", "model_origins", "registered_models")
NO_EVIDENCE = "nothing collected can say yet"
ONE_PASS = timedelta(minutes=10)   # snapshots of several sources closer than this are one point

WORKLOAD_COLUMNS = [
    "asset_key", "asset_type", "source", "name", "kind", "workload", "target", "rule", "reason", "overridden",
    "in_scope", "steps", "evidence_status", "evidence", "manual_status", "status", "complete", "owner", "due",
    "notes", "updated_by", "updated_at", "disagreement"]


# -- one point in time ---------------------------------------------------------------------------
def estate_now(store: Store, as_of: q.AsOf = None) -> tuple[list[Asset], set[str]]:
    """Every collected asset, on every platform, as of a point in time; and the platforms collected."""
    points = q.resolve_as_of(store, as_of)
    frames = {table: q.entity_as_of(store, table, points=points) for table in MLFLOW_TABLES}
    # Platform tables: only the columns the builders read (one query per table, never per asset).
    frames.update({table: q.entity_as_of(store, table, points=points, columns=list(columns))
                   for table, columns in PLATFORM_COLUMNS.items()})
    return estate_assets(frames), {p.platform for p in points.values()}


def effective_status(evidence_status: str | None, manual_status: str | None) -> str:
    return manual_status or evidence_status or NOT_STARTED


def disagreement(evidence: Evidence | None, manual_status: str | None) -> str:
    """How the recorded status and the evidence disagree; empty when they do not."""
    if evidence is None or not manual_status:
        return ""
    proved = evidence.status
    if manual_status == "done" and proved != DONE:
        return f"marked done, but the evidence shows {proved.replace('_', ' ')}: {evidence.detail}"
    if manual_status == "stays" and proved in (IN_PROGRESS, DONE):
        return f"decided to stay, yet the target already has it: {evidence.detail}"
    if manual_status in ("not_started", "in_progress", "blocked") and proved == DONE:
        return f"marked {manual_status.replace('_', ' ')}, but the evidence shows done: {evidence.detail}"
    if manual_status == "not_started" and proved == IN_PROGRESS:
        return f"marked not started, but the evidence shows work under way: {evidence.detail}"
    return ""


def _value(row: Any, name: str) -> Any:
    if row is None:
        return None
    value = row.get(name)
    return None if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)) else value


def workload_rows(plan: Plan, assets: Sequence[Asset], manual: pd.DataFrame,
                  rule_kinds: Mapping[str, str] | None = None,
                  collected_platforms: set[str] | None = None) -> pd.DataFrame:
    """One row per Databricks asset: kind (rule or override), target, evidence, manual state, status.

    `rule_kinds` (asset key → kind) replaces the rules for assets it names; the burn-up passes
    today's classification so yesterday's light frames are judged by the same kinds.
    """
    rows = []
    for asset in sorted(source_assets(assets), key=lambda a: (a.asset_type, a.source, a.name)):
        entry = manual.loc[asset.key] if asset.key in manual.index else None
        rows.append(_workload_row(plan, asset, assets, entry, rule_kinds, collected_platforms))
    return pd.DataFrame(rows, columns=WORKLOAD_COLUMNS)


def _workload_row(plan: Plan, asset: Asset, assets: Sequence[Asset], entry: Any,
                  rule_kinds: Mapping[str, str] | None, collected_platforms: set[str] | None) -> dict[str, Any]:
    found = classify(asset)
    rule_id, reason = found.rule_id, found.reason
    kind = rule_kinds[asset.key] if rule_kinds is not None and asset.key in rule_kinds else found.kind
    override = _value(entry, "kind_override")
    overridden = bool(override) and override in plan.kinds
    if overridden:
        kind = override
        reason = f"set by hand by {_value(entry, 'who')} (rule {rule_id} said {found.kind})"
        rule_id = "manual override"
    row_kind = plan.kind(kind)
    in_scope = row_kind.in_scope if row_kind else True
    evidence = (evidence_for(asset, assets, row_kind.target_platforms, collected_platforms)
                if row_kind and in_scope else None)
    manual_status = _value(entry, "status")
    status = effective_status(evidence.status if evidence else None, manual_status)
    who = _value(entry, "who")
    return {
        "asset_key": asset.key, "asset_type": asset.asset_type, "source": asset.source, "name": asset.name,
        "kind": kind, "workload": row_kind.workload if row_kind else "Unclassified — decide by hand",
        "target": row_kind.target if row_kind else "—", "rule": rule_id, "reason": reason,
        "overridden": overridden, "in_scope": in_scope,
        "steps": ", ".join(str(s.number) for s in plan.steps_for_kind(kind)),
        "evidence_status": evidence.status if evidence else None,
        "evidence": evidence.detail if evidence else (NO_EVIDENCE if in_scope else "not counted: out of scope"),
        "manual_status": manual_status, "status": status, "complete": status in COMPLETE,
        "owner": _value(entry, "owner"), "due": _value(entry, "due"), "notes": _value(entry, "notes"),
        "updated_by": (who if _value(entry, "who_verified") else f"{who} (unverified)") if who else None,
        "updated_at": _value(entry, "recorded_at"),
        "disagreement": disagreement(evidence, manual_status),
    }


def step_rows(plan: Plan, workloads: pd.DataFrame, manual: pd.DataFrame) -> pd.DataFrame:
    """Progress per checklist step (0..1, or None when the step covers no collected workload)."""
    # astype(bool): an empty object column would otherwise be read as a list of column names.
    in_scope = workloads[workloads["in_scope"].astype(bool)]
    rows = []
    for step in plan.steps:
        key = step_key(step)
        entry = manual.loc[key] if key in manual.index else None
        manual_status = _value(entry, "status")
        covered, complete, blocked, detail = _measure(step, workloads, in_scope, manual_status)
        # A step set to blocked by hand is blocked, whatever its workloads show.
        state = ("blocked" if manual_status == "blocked" or blocked else
                 "done" if covered and complete == covered else
                 "in_progress" if complete else "not_started")
        rows.append({
            "number": step.number, "step_key": key, "title": step.title, "measure": step.progress,
            "kinds": ", ".join(step.kinds), "workloads": covered, "complete": complete,
            "progress": (complete / covered) if covered else None, "blocked": blocked,
            "state": state, "manual_status": manual_status, "owner": _value(entry, "owner"),
            "due": _value(entry, "due"),
            "detail": detail,
        })
    return pd.DataFrame(rows)


def step_key(step: Step) -> str:
    return f"step:{step.id}"


def _measure(step: Step, workloads: pd.DataFrame, in_scope: pd.DataFrame,
             manual_status: str | None) -> tuple[int, int, int, str]:
    if step.progress == "inventory":
        n = len(workloads)
        return 1, int(n > 0), 0, f"{n} Databricks asset(s) collected" if n else "nothing collected from Databricks yet"
    if step.progress == "classification":
        classified = int((workloads["kind"] != UNCLASSIFIED).sum())
        overridden = int(workloads["overridden"].sum())
        return (len(workloads), classified, 0,
                f"{classified} of {len(workloads)} classified ({overridden} by hand)")
    if step.progress == "manual":
        done = manual_status in COMPLETE
        return 1, int(done), int(manual_status == "blocked"), (
            "set on this page" if manual_status else "no evidence in the store: set its status here")
    mine = in_scope[in_scope["kind"].isin(step.kinds)]
    if mine.empty:
        return 0, 0, 0, "no collected workload of these kinds"
    return (len(mine), int(mine["complete"].sum()), int((mine["status"] == "blocked").sum()),
            f"{int((mine['evidence_status'] == DONE).sum())} proven by evidence")


def kind_rows(plan: Plan, workloads: pd.DataFrame) -> pd.DataFrame:
    """Progress per workload kind, in decision-matrix order (unclassified last)."""
    rows = []
    order = list(plan.kinds) + [UNCLASSIFIED]
    for kind in order:
        mine = workloads[workloads["kind"] == kind]
        if mine.empty:
            continue
        row = plan.kind(kind)
        rows.append({
            "kind": kind, "workload": row.workload if row else "Unclassified", "target": row.target if row else "—",
            "in_scope": row.in_scope if row else True, "workloads": len(mine),
            "proven": int((mine["evidence_status"] == DONE).sum()), "complete": int(mine["complete"].sum()),
            "blocked": int((mine["status"] == "blocked").sum()), "unowned": int(mine["owner"].isna().sum()),
            "progress": float(mine["complete"].mean()),
        })
    return pd.DataFrame(rows, columns=["kind", "workload", "target", "in_scope", "workloads", "proven", "complete",
                                       "blocked", "unowned", "progress"])


def headline(workloads: pd.DataFrame) -> dict[str, Any]:
    """Figures for the top of the page and the Overview: in-scope workloads only."""
    mine = workloads[workloads["in_scope"]] if not workloads.empty else workloads
    total = len(mine)
    complete = int(mine["complete"].sum()) if total else 0
    return {
        "workloads": total, "complete": complete,
        "proven": int((mine["evidence_status"] == DONE).sum()) if total else 0,
        "progress": complete / total if total else None,
        "blocked": int((mine["status"] == "blocked").sum()) if total else 0,
        "unowned": int(mine["owner"].isna().sum()) if total else 0,
        "disagreements": int((mine["disagreement"] != "").sum()) if total else 0,
        "out_of_scope": len(workloads) - total,
    }


@dataclass
class Assessment:
    plan: Plan
    workloads: pd.DataFrame
    steps: pd.DataFrame
    kinds: pd.DataFrame
    headline: dict[str, Any]
    log: pd.DataFrame


def assess(store: Store, plan: Plan, as_of: q.AsOf = None) -> Assessment:
    """The migration now (or as of a point): every table the Checklist page shows."""
    assets, collected = estate_now(store, as_of)
    return assess_estate(plan, assets, collected, manual_log(store))


def assess_estate(plan: Plan, assets: list[Asset], collected: set[str], log: pd.DataFrame) -> Assessment:
    """`assess` on an estate already read: a manual edit changes only the log, so the page reuses
    the estate of the same snapshots and a save costs the classification, not the store reads."""
    manual = current_manual(log)
    workloads = workload_rows(plan, assets, manual, collected_platforms=collected)
    steps = step_rows(plan, workloads, manual)
    figures = headline(workloads)
    # Steps blocked by hand; a step blocked only through its workloads is already counted by them.
    figures["blocked_steps"] = int((steps["manual_status"] == "blocked").sum()) if not steps.empty else 0
    return Assessment(plan, workloads, steps, kind_rows(plan, workloads), figures, log)


# -- over time -----------------------------------------------------------------------------------
# Only the columns evidence needs: the burn-up replays history without run params and tags.
_HISTORY_COLUMNS = {
    "experiments": ("experiment_id", "name", "lifecycle_stage", "tags"),
    "runs": ("run_id", "experiment_id", "status", "lifecycle_stage", "start_time"),
    "model_versions": ("name", "version", "run_id", "model_id", "status", "tags"),
    "model_aliases": ("name", "alias", "version"),
    "model_origins": ("name", "version", "origin_run_id", "origin_model_id", "flavors"),
    "registered_models": ("name", "tags"),
    **PLATFORM_COLUMNS,
}


def _history_frames(store: Store) -> dict[str, pd.DataFrame]:
    """Every version of every row (one query per table), JSON columns parsed once."""
    frames = {}
    with store.reader() as con:
        for table, columns in _HISTORY_COLUMNS.items():
            # Identifiers come from the fixed map above; nothing user-supplied reaches the SQL.
            sql = "SELECT source, " + ", ".join(columns) + ", valid_from, valid_to FROM " + table
            frame = con.execute(sql).df()
            for col in ENTITIES[table].json_columns:
                if col in frame:
                    frame[col] = frame[col].map(lambda v: json.loads(v) if isinstance(v, str) else v)
            frames[table] = frame
    return frames


def _rows_at(frame: pd.DataFrame, pins: pd.DataFrame) -> pd.DataFrame:
    merged = frame.merge(pins, on="source")
    return merged[visible_mask(merged, merged["sid"])]


def snapshot_points(store: Store) -> list[tuple[datetime, pd.DataFrame]]:
    """For each time a good snapshot finished: the snapshot each source stood at (source, sid, platform)."""
    good = store.query("""SELECT snapshot_id, source, platform, finished_at FROM snapshots
                          WHERE status = 'ok' ORDER BY snapshot_id""")
    points: list[tuple[datetime, pd.DataFrame]] = []
    latest: dict[str, tuple[int, str]] = {}
    group_start: datetime | None = None
    for row in good.itertuples():
        latest[row.source] = (int(row.snapshot_id), row.platform)
        pins = pd.DataFrame([{"source": s, "sid": sid, "platform": p} for s, (sid, p) in latest.items()])
        when = row.finished_at.to_pydatetime()
        if points and group_start is not None and when - group_start < ONE_PASS:
            points[-1] = (when, pins)      # sources snapshotted in one pass count as one point
        else:
            points.append((when, pins))
            group_start = when
    return points


def burn_up(store: Store, plan: Plan, now: datetime | None = None) -> pd.DataFrame:
    """Per good-snapshot time (and now): workloads in scope, proven done, complete (done or stays).

    Kinds are today's (rules on today's facts, overrides as recorded at each time); evidence and
    manual status are as they stood at each time. Long format: time, series, workloads.
    """
    points = snapshot_points(store)
    if not points:
        return pd.DataFrame(columns=["time", "series", "workloads"])
    log = manual_log(store)
    assets_now, collected_now = estate_now(store)
    past = burn_up_past(store, plan, points, log, assets_now, collected_now)
    return pd.concat([past, burn_up_now(plan, points, log, assets_now, collected_now, now)], ignore_index=True)


def burn_up_past(store: Store, plan: Plan, points: list[tuple[datetime, pd.DataFrame]], log: pd.DataFrame,
                 assets_now: list[Asset], collected_now: set[str]) -> pd.DataFrame:
    """The burn-up at each good-snapshot time. It depends on the snapshots, on the log as recorded
    by the last of them and on today's kind overrides only: a status saved now leaves it as it is."""
    today = workload_rows(plan, assets_now, current_manual(log), collected_platforms=collected_now)
    rule_kinds = dict(zip(today["asset_key"], today["kind"].where(~today["overridden"], None)))
    # An overridden asset's rule kind is re-derived; the override as of each time is applied on top.
    rule_kinds = {k: v for k, v in rule_kinds.items() if v is not None}
    history = _history_frames(store)
    rows = []
    for when, pins in points:
        frames = {table: _rows_at(frame, pins) for table, frame in history.items()}
        workloads = workload_rows(plan, estate_assets(frames), current_manual(log, until=when), rule_kinds,
                                  collected_platforms=set(pins["platform"]))
        rows += _burn_up_rows(when, headline(workloads))
    return pd.DataFrame(rows, columns=["time", "series", "workloads"])


def burn_up_now(plan: Plan, points: list[tuple[datetime, pd.DataFrame]], log: pd.DataFrame,
                assets_now: list[Asset], collected_now: set[str], now: datetime | None = None) -> pd.DataFrame:
    """The point "now", when something was recorded by hand since the last snapshot: today's estate
    with today's log (what the page's headline shows)."""
    if not points or log.empty or log["recorded_at"].max() <= pd.Timestamp(points[-1][0]):
        return pd.DataFrame(columns=["time", "series", "workloads"])
    workloads = workload_rows(plan, assets_now, current_manual(log), collected_platforms=collected_now)
    return pd.DataFrame(_burn_up_rows(now or datetime.now(timezone.utc), headline(workloads)),
                        columns=["time", "series", "workloads"])


def past_log_key(points: list[tuple[datetime, pd.DataFrame]], log: pd.DataFrame) -> tuple[Any, ...]:
    """What `burn_up_past` depends on in the log: the entries up to the last snapshot time, and
    the kind overrides as they stand now (they reclassify every point)."""
    if log.empty or not points:
        return (0, ())
    upto = log[log["recorded_at"] <= pd.Timestamp(points[-1][0])]
    overrides = current_manual(log)["kind_override"].dropna() if "kind_override" in log else pd.Series(dtype=object)
    return (len(upto), int(upto["entry_id"].max()) if "entry_id" in upto and len(upto) else 0,
            tuple(sorted(overrides.astype(str).items())))


def _burn_up_rows(when: datetime, figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"time": pd.Timestamp(when), "series": series, "workloads": figures[name]}
            for series, name in (("in scope", "workloads"), ("complete (evidence or decision)", "complete"),
                                 ("done by evidence", "proven"))]
