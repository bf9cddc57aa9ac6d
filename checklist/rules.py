"""The classifier: ordered rules over asset records; the first rule that matches decides the
workload kind, and its id and reason are kept with the result so every classification can be
explained (and overridden by hand on the Checklist page).

A rule names the asset types it looks at, the kind it yields (a row of decision_matrix.toml) and a
test that returns the evidence it found (a short phrase) or None. New collectors add rules for
their asset types here; `check_rule_kinds` makes sure the decision matrix has a row for each kind.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checklist.assets import (APP, EXPERIMENT, FEATURE_TABLE, REGISTERED_MODEL, SERVING_ENDPOINT, UC_MODEL,
                              VECTOR_INDEX, Asset)
from checklist.errors import PlanError

UNCLASSIFIED = "unclassified"

# MLflow flavors (MLmodel `flavors`, `mlflow.autologging` tag) by the training they imply.
DEEP_LEARNING_FLAVORS = frozenset({"pytorch", "tensorflow", "keras", "transformers", "sentence_transformers",
                                   "fastai", "paddle", "mxnet", "gluon", "diffusers"})
CLASSICAL_FLAVORS = frozenset({"sklearn", "xgboost", "lightgbm", "catboost", "statsmodels", "prophet", "h2o",
                               "spark", "pmdarima", "flaml"})
# Words in framework-naming params (model_type, framework, …) that reveal the library.
DEEP_LEARNING_WORDS = ("torch", "tensorflow", "keras", "transformers", "huggingface")
CLASSICAL_WORDS = ("sklearn", "scikit", "xgboost", "xgb", "lightgbm", "lgbm", "catboost", "randomforest",
                   "gradientboosting", "logisticregression", "linearregression", "decisiontree")
FRAMEWORK_PARAMS = ("model_type", "model_class", "framework", "library", "estimator", "algorithm", "flavor")
GPU_WORDS = ("gpu", "cuda")
AUTOML_TAG_PREFIX = "_databricks_automl"


@dataclass(frozen=True)
class Rule:
    rule_id: str
    asset_types: tuple[str, ...]
    kind: str
    because: str
    test: Callable[[Asset], str | None]


@dataclass(frozen=True)
class Classification:
    kind: str
    rule_id: str
    reason: str


def _facts(asset: Asset, name: str, default: Any = ()) -> Any:
    return asset.facts.get(name, default)


def _experiment_is_empty(asset: Asset) -> str | None:
    if _facts(asset, "lifecycle_stage", "active") == "deleted":
        return "experiment deleted"
    if _facts(asset, "run_count", 0) == 0:
        return "no runs"
    return None


def _automl_tags(asset: Asset) -> str | None:
    keys = [k for k in _facts(asset, "tag_keys") if k.startswith(AUTOML_TAG_PREFIX)]
    return f"tag {sorted(keys)[0]}" if keys else None


def _automl_name(asset: Asset) -> str | None:
    return f"name {asset.name!r}" if "automl" in asset.name.lower().replace("-", "").replace("_", "") else None


def _flavors_in(asset: Asset, wanted: frozenset[str]) -> str | None:
    found = sorted(set(_facts(asset, "flavors")) & wanted)
    return f"flavor {', '.join(found)}" if found else None


def _framework_params(asset: Asset, words: Iterable[str]) -> str | None:
    for key, value in _facts(asset, "params"):
        if key.lower() in FRAMEWORK_PARAMS:
            squashed = value.lower().replace("-", "").replace("_", "").replace(" ", "")
            for word in words:
                if word in squashed:
                    return f"param {key}={value}"
    return None


def _gpu_params(asset: Asset) -> str | None:
    for key, value in _facts(asset, "params"):
        if any(w in key.lower() for w in GPU_WORDS) or value.lower() in GPU_WORDS or value.lower().startswith("cuda:"):
            return f"param {key}={value}"
    return None


def _deep_learning_params(asset: Asset) -> str | None:
    return _framework_params(asset, DEEP_LEARNING_WORDS) or _gpu_params(asset)


def _classical(asset: Asset) -> str | None:
    return _flavors_in(asset, CLASSICAL_FLAVORS) or _framework_params(asset, CLASSICAL_WORDS)


def _always(asset: Asset) -> str | None:
    return asset.asset_type.replace("_", " ")


def _uc_model(asset: Asset) -> str | None:
    twins = _facts(asset, "same_runs_as")
    if twins:
        return f"trained by the same runs as workspace-registry model {', '.join(twins)}"
    return f"catalog {asset.name.split('.')[0]}"


def _foundation_model(asset: Asset) -> str | None:
    external = [s.get("model") for s in _facts(asset, "served") if s.get("external")]
    return f"serves {', '.join(str(m) for m in external)}" if external else None


RULES: tuple[Rule, ...] = (
    Rule("experiment-empty", (EXPERIMENT,), "empty_experiment", "nothing was ever trained here", _experiment_is_empty),
    Rule("experiment-automl-tag", (EXPERIMENT,), "automl", "Databricks AutoML marks its experiments and runs",
         _automl_tags),
    Rule("experiment-automl-name", (EXPERIMENT,), "automl", "named as an AutoML experiment", _automl_name),
    Rule("experiment-deep-learning-flavor", (EXPERIMENT,), "deep_learning", "its models use a deep learning library",
         lambda a: _flavors_in(a, DEEP_LEARNING_FLAVORS)),
    Rule("experiment-deep-learning-params", (EXPERIMENT,), "deep_learning", "its runs ask for a GPU or a DL library",
         _deep_learning_params),
    Rule("experiment-classical", (EXPERIMENT,), "simple_training", "its models use a classical ML library",
         _classical),
    Rule("experiment-tracking", (EXPERIMENT,), "experiment_tracking", "runs without a recognised model library",
         _always),
    Rule("model-deep-learning-flavor", (REGISTERED_MODEL, UC_MODEL), "deep_learning",
         "a deep learning model's registry follows its training", lambda a: _flavors_in(a, DEEP_LEARNING_FLAVORS)),
    Rule("uc-model-registry", (UC_MODEL,), "model_registry", "a Unity Catalog registered model", _uc_model),
    Rule("model-registry", (REGISTERED_MODEL,), "model_registry", "a registered model", _always),
    Rule("serving-endpoint-foundation-model", (SERVING_ENDPOINT,), "model_serving",
         "a serving endpoint for a foundation or external model (on Azure: Azure OpenAI or a custom deployment)",
         _foundation_model),
    Rule("serving-endpoint", (SERVING_ENDPOINT,), "model_serving", "a real-time serving endpoint", _always),
    Rule("feature-table", (FEATURE_TABLE,), "feature_store", "a feature table", _always),
    Rule("vector-index", (VECTOR_INDEX,), "vector_search", "a vector search index", _always),
    Rule("databricks-app", (APP,), "databricks_apps", "a Databricks App", _always),
)


def classify(asset: Asset, rules: Iterable[Rule] = RULES) -> Classification:
    """The first rule that matches, or `unclassified` (to be decided by hand)."""
    for rule in rules:
        if asset.asset_type in rule.asset_types:
            found = rule.test(asset)
            if found:
                return Classification(rule.kind, rule.rule_id, f"{rule.because} ({found})")
    return Classification(UNCLASSIFIED, "none", f"no rule covers a {asset.asset_type.replace('_', ' ')} like this")


def check_rule_kinds(kinds: Mapping[str, Any], matrix_path: Path, rules: Iterable[Rule] = RULES) -> None:
    """Every kind a rule can yield needs a decision-matrix row; otherwise say which rule and file."""
    for rule in rules:
        if rule.kind not in kinds:
            raise PlanError(f"{matrix_path}: no [[workloads]] row for kind {rule.kind!r}, "
                            f"which classifier rule {rule.rule_id!r} yields (add the row, or rename it back)")
