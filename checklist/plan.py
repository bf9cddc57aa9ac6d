"""The migration plan as data: the checklist steps and the decision matrix, read from versioned
TOML files (`data/plan/checklist.toml`, `data/plan/decision_matrix.toml`) a team edits.

Both files are validated together, by pydantic models of their rows (strict: TOML's own types, nothing
coerced); every error names the file, the line, the entry (by id or position) and the field, worded by
the error's type, and a step may only cover workload kinds the decision matrix defines.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from checklist.errors import PlanError
from checklist.rules import check_rule_kinds
from collectors.config import read_toml
from collectors.toml_errors import file_lines, first_error, line_of, words

SHIPPED_PLAN_DIR = Path(__file__).resolve().parent.parent / "data" / "plan"


def default_plan_dir() -> Path:
    """WAYMARK_PLAN_DIR when set (a team's own plan), else the plan shipped in data/plan/."""
    return Path(os.environ.get("WAYMARK_PLAN_DIR") or SHIPPED_PLAN_DIR)


CHECKLIST_FILE = "checklist.toml"
MATRIX_FILE = "decision_matrix.toml"

Progress = Literal["inventory", "classification", "workloads", "manual"]
STEP_PROGRESS = get_args(Progress)


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


# -- the two files' schemas (pydantic v2, strict: TOML's own types, nothing coerced) ---------------
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
TargetPlatform = Literal["fabric", "azureml"]   # PLATFORMS without the source platform


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class WorkloadRow(_Row):
    kind: Identifier
    workload: Text
    target: Text
    rationale: Text
    target_platforms: list[TargetPlatform] = []
    in_scope: bool = True


class StepRow(_Row):
    id: Identifier
    title: Text
    progress: Progress
    kinds: list[Text] = Field(default_factory=list, validate_default=True)   # checked when left out too

    @field_validator("kinds")
    @classmethod
    def _kinds_only_for_workload_steps(cls, kinds: list[str], info: ValidationInfo) -> list[str]:
        progress = info.data.get("progress")
        if progress == "workloads" and not kinds:
            raise PydanticCustomError("kinds_needed", "a step measured by 'workloads' needs the workload kinds it covers")
        if progress is not None and progress != "workloads" and kinds:
            raise PydanticCustomError("kinds_not_allowed", "only steps with progress = \"workloads\" cover kinds "
                                      "(this one is {progress!r})", {"progress": progress})
        return kinds


class MatrixFile(_Row):
    version: int = Field(ge=1)
    workloads: list[WorkloadRow] = Field(min_length=1)


class ChecklistFile(_Row):
    version: int = Field(ge=1)
    steps: list[StepRow] = Field(min_length=1)


_ID_FIELD = {"workloads": "kind", "steps": "id"}


def _message(error: ErrorDetails, allowed: list[str]) -> str:
    """Words for one pydantic error, chosen by its type (never by its text): the plan's own where it
    says more, else the shared ones."""
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return f"unknown field (allowed: {', '.join(sorted(allowed))})"
    if kind == "string_pattern_mismatch":
        return f"{value!r} must be lower-case letters, digits, '_' or '-'"
    if kind == "literal_error" and "target_platforms" in error["loc"]:
        return f"unknown target platform {value!r} (expected among {', '.join(get_args(TargetPlatform))})"
    if kind == "literal_error":
        return f"unknown measure {value!r} (expected one of {', '.join(STEP_PROGRESS)})"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list of strings, got {value!r}"
    return words(error)


def _validate(model: type[BaseModel], row: type[BaseModel], raw: dict[str, Any], path: Path, table: str) -> Any:
    """The file as `model`, or PlanError naming the file, the line, the entry and the field."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        error = first_error(e)
        loc = error["loc"]
        if not loc or loc[0] != table or len(loc) < 2 or not isinstance(loc[1], int):
            if error["type"] == "extra_forbidden":
                raise PlanError(f"{path}: unknown top-level key(s) {[loc[0]] if loc else []} "
                                f"(expected version, [[{table}]])") from None
            if loc and loc[0] == "version":
                raise PlanError(f"{path}: top-level 'version' must be a whole number >= 1, "
                                f"got {raw.get('version')!r}") from None
            raise PlanError(f"{path}: needs at least one [[{table}]] entry") from None
        index = loc[1]
        field_name = str(loc[2]) if len(loc) > 2 else None
        raise _entry_error(path, table, index, raw[table][index], field_name,
                           _message(error, list(row.model_fields))) from None


def _entry_error(path: Path, table: str, index: int, entry: Any, field_name: str | None, message: str) -> PlanError:
    ident = entry.get(_ID_FIELD[table]) if isinstance(entry, dict) else None
    label = f"[[{table}]] {ident!r}" if isinstance(ident, str) and ident else f"[[{table}]] #{index + 1}"
    line = line_of(file_lines(path), (table, index, field_name) if field_name else (table, index))
    where = f"{path}" + (f", line {line}" if line else "")
    return PlanError(f"{where}: {label}: " + (f"field '{field_name}': " if field_name else "") + message)


def parse_matrix(raw: dict[str, Any], where: Path) -> tuple[int, dict[str, WorkloadKind]]:
    matrix: MatrixFile = _validate(MatrixFile, WorkloadRow, raw, where, "workloads")
    kinds: dict[str, WorkloadKind] = {}
    for i, row in enumerate(matrix.workloads):
        if row.kind in kinds:
            raise _entry_error(where, "workloads", i, raw["workloads"][i], "kind",
                               "duplicate kind (each kind has one row)")
        kinds[row.kind] = WorkloadKind(kind=row.kind, workload=row.workload, target=row.target,
                                       rationale=row.rationale, target_platforms=tuple(row.target_platforms),
                                       in_scope=row.in_scope)
    return matrix.version, kinds


def parse_checklist(raw: dict[str, Any], where: Path, kinds: dict[str, WorkloadKind],
                    matrix_path: Path) -> tuple[int, tuple[Step, ...]]:
    checklist: ChecklistFile = _validate(ChecklistFile, StepRow, raw, where, "steps")
    steps: list[Step] = []
    for i, row in enumerate(checklist.steps):
        if any(s.id == row.id for s in steps):
            raise _entry_error(where, "steps", i, raw["steps"][i], "id",
                               "duplicate step id")
        unknown = [k for k in row.kinds if k not in kinds]
        if unknown:
            raise _entry_error(where, "steps", i, raw["steps"][i], "kinds",
                               f"kind {unknown[0]!r} has no row in {matrix_path} (known: {', '.join(kinds)})")
        steps.append(Step(id=row.id, number=i + 1, title=row.title, progress=row.progress, kinds=tuple(row.kinds)))
    return checklist.version, tuple(steps)


def load_plan(directory: str | Path | None = None) -> Plan:
    """Read and validate both plan files; raises PlanError naming file, entry and field."""
    base = Path(directory) if directory else default_plan_dir()
    matrix_path, checklist_path = base / MATRIX_FILE, base / CHECKLIST_FILE
    matrix_version, kinds = parse_matrix(read_toml(matrix_path, "plan file", PlanError), matrix_path)
    checklist_version, steps = parse_checklist(read_toml(checklist_path, "plan file", PlanError), checklist_path,
                                               kinds, matrix_path)
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
