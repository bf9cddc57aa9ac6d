"""The migration plan as data: the checklist steps and the decision matrix, read from versioned
TOML files (`data/plan/checklist.toml`, `data/plan/decision_matrix.toml`) a team edits.

Both files are validated together: every error names the file and the entry (by id or position)
and the field, and a step may only cover workload kinds the decision matrix defines.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checklist.errors import PlanError
from checklist.rules import check_rule_kinds
from collectors.config import PLATFORMS, read_toml

SHIPPED_PLAN_DIR = Path(__file__).resolve().parent.parent / "data" / "plan"


def default_plan_dir() -> Path:
    """WAYMARK_PLAN_DIR when set (a team's own plan), else the plan shipped in data/plan/."""
    return Path(os.environ.get("WAYMARK_PLAN_DIR") or SHIPPED_PLAN_DIR)
CHECKLIST_FILE = "checklist.toml"
MATRIX_FILE = "decision_matrix.toml"

STEP_PROGRESS = ("inventory", "classification", "workloads", "manual")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class WorkloadKind:
    kind: str
    workload: str
    target: str
    rationale: str
    target_platforms: tuple[str, ...] = ()
    in_scope: bool = True


@dataclass(frozen=True)
class Step:
    id: str
    number: int
    title: str
    progress: str
    kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    checklist_version: int
    matrix_version: int
    steps: tuple[Step, ...]
    kinds: dict[str, WorkloadKind]

    @property
    def version_label(self) -> str:
        return f"checklist v{self.checklist_version} · decision matrix v{self.matrix_version}"

    def kind(self, kind: str) -> WorkloadKind | None:
        return self.kinds.get(kind)

    def steps_for_kind(self, kind: str) -> list[Step]:
        return [s for s in self.steps if kind in s.kinds]


def _read(path: Path) -> dict[str, Any]:
    return read_toml(path, "plan file", PlanError)


def _version(raw: dict[str, Any], where: Path) -> int:
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PlanError(f"{where}: top-level 'version' must be a whole number >= 1, got {version!r}")
    return version


def _entries(raw: dict[str, Any], where: Path, table: str) -> list[Any]:
    unknown = set(raw) - {"version", table}
    if unknown:
        raise PlanError(f"{where}: unknown top-level key(s) {sorted(unknown)} (expected version, [[{table}]])")
    entries = raw.get(table)
    if not isinstance(entries, list) or not entries:
        raise PlanError(f"{where}: needs at least one [[{table}]] entry")
    return entries


class _Entry:
    """Field access for one [[table]] entry, with errors that say where."""

    def __init__(self, where: Path, table: str, index: int, raw: Any, id_field: str, allowed: set[str]):
        self.label = f"{where}: [[{table}]] #{index}"
        if not isinstance(raw, dict):
            raise PlanError(f"{self.label}: must be a table")
        ident = raw.get(id_field)
        if isinstance(ident, str) and ident:
            self.label = f"{where}: [[{table}]] {ident!r}"
        self.raw = raw
        extra = sorted(set(raw) - allowed)
        if extra:
            raise self.fail(extra[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def fail(self, field_name: str, message: str) -> PlanError:
        return PlanError(f"{self.label}: field '{field_name}': {message}")

    def text(self, name: str, required: bool = True) -> str:
        value = self.raw.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, "missing" if value is None else f"must be a non-empty string, got {value!r}")
        return value.strip()

    def identifier(self, name: str) -> str:
        value = self.text(name)
        if not _IDENTIFIER.match(value):
            raise self.fail(name, f"{value!r} must be lower-case letters, digits, '_' or '-'")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.raw.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(name, f"must be a list of strings, got {value!r}")
        return tuple(value)

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, got {value!r}")
        return value


def parse_matrix(raw: dict[str, Any], where: Path) -> tuple[int, dict[str, WorkloadKind]]:
    version = _version(raw, where)
    kinds: dict[str, WorkloadKind] = {}
    allowed = {"kind", "workload", "target", "rationale", "target_platforms", "in_scope"}
    for i, item in enumerate(_entries(raw, where, "workloads"), start=1):
        entry = _Entry(where, "workloads", i, item, "kind", allowed)
        kind = entry.identifier("kind")
        if kind in kinds:
            raise entry.fail("kind", "duplicate kind (each kind has one row)")
        platforms = entry.strings("target_platforms")
        bad = [p for p in platforms if p not in PLATFORMS or p == "databricks"]
        if bad:
            raise entry.fail("target_platforms", f"unknown target platform {bad[0]!r} "
                                                 f"(expected among {', '.join(p for p in PLATFORMS if p != 'databricks')})")
        kinds[kind] = WorkloadKind(kind=kind, workload=entry.text("workload"), target=entry.text("target"),
                                   rationale=entry.text("rationale"), target_platforms=platforms,
                                   in_scope=entry.flag("in_scope", True))
    return version, kinds


def parse_checklist(raw: dict[str, Any], where: Path, kinds: dict[str, WorkloadKind],
                    matrix_path: Path) -> tuple[int, tuple[Step, ...]]:
    version = _version(raw, where)
    steps: list[Step] = []
    seen: set[str] = set()
    allowed = {"id", "title", "progress", "kinds"}
    for i, item in enumerate(_entries(raw, where, "steps"), start=1):
        entry = _Entry(where, "steps", i, item, "id", allowed)
        step_id = entry.identifier("id")
        if step_id in seen:
            raise entry.fail("id", "duplicate step id")
        seen.add(step_id)
        progress = entry.text("progress")
        if progress not in STEP_PROGRESS:
            raise entry.fail("progress", f"unknown measure {progress!r} (expected one of {', '.join(STEP_PROGRESS)})")
        step_kinds = entry.strings("kinds")
        if progress == "workloads" and not step_kinds:
            raise entry.fail("kinds", "a step measured by 'workloads' needs the workload kinds it covers")
        if progress != "workloads" and step_kinds:
            raise entry.fail("kinds", f"only steps with progress = \"workloads\" cover kinds (this one is {progress!r})")
        for kind in step_kinds:
            if kind not in kinds:
                raise entry.fail("kinds", f"kind {kind!r} has no row in {matrix_path} "
                                          f"(known: {', '.join(kinds)})")
        steps.append(Step(id=step_id, number=i, title=entry.text("title"), progress=progress, kinds=step_kinds))
    return version, tuple(steps)


def load_plan(directory: str | Path | None = None) -> Plan:
    """Read and validate both plan files; raises PlanError naming file, entry and field."""
    base = Path(directory) if directory else default_plan_dir()
    matrix_path, checklist_path = base / MATRIX_FILE, base / CHECKLIST_FILE
    matrix_version, kinds = parse_matrix(_read(matrix_path), matrix_path)
    checklist_version, steps = parse_checklist(_read(checklist_path), checklist_path, kinds, matrix_path)
    check_rule_kinds(kinds, matrix_path)
    return Plan(checklist_version=checklist_version, matrix_version=matrix_version, steps=steps, kinds=kinds)


def plan_stamp(directory: str | Path | None = None) -> tuple[str, int]:
    """(plan folder, newest modification time): changes when a plan file is edited."""
    base = Path(directory) if directory else default_plan_dir()
    stamps = []
    for name in (CHECKLIST_FILE, MATRIX_FILE):
        try:
            stamps.append((base / name).stat().st_mtime_ns)
        except FileNotFoundError:
            stamps.append(0)
    return str(base), max(stamps)
