"""`python -m gates check TARGET --config PATH [--policy PATH] [--json]` and `python -m gates verify`.

`check` is a drop-in for the validation step of a CI promotion pipeline: it evaluates one model
version against its policy, from the latest good snapshots in the store, and prints every
criterion with actual vs required and the evidence.
"""
from __future__ import annotations

import argparse
import json
import sys

import duckdb

from collectors.cli_common import UsageParser
from collectors.config import PLATFORMS, ConfigError, load_config
from gates.artifacts import mlflow_artifact_lister
from gates.evaluate import PASS, Context, TargetNotFound, evaluate, resolve_target
from gates.policy import PolicyError, policy_for
from gates.result import GateResult
from gates.reviews import verify
from store import Store, StoreError, StoreMissing

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

CHECK_EPILOG = """exit status:
  0  every criterion passes (an UNKNOWN the policy allows counts as passing)
  1  a criterion fails or is UNKNOWN, or the target is not found or ambiguous
  2  bad config, bad policy (the message names file, line and field) or bad usage

policy: --policy PATH, else [review] policy_dir/<model name>.toml, else policy_dir/default.toml,
else gates/default_policy.toml (roc_auc >= 0.80, f1_score >= 0.72, precision >= 0.70, no worse
than the baseline: @champion, @Production or @prod, on Azure ML the version with the most endpoint
traffic; git SHA, versioned inputs, no lineage gaps). A model that is aliased or served but whose
baseline cannot be found is UNKNOWN; only one never promoted passes as a first promotion."""

VERIFY_EPILOG = """exit status:
  0  the review log is intact (every hash, link and the head check out)
  1  an entry was edited, deleted or the log was cut (each problem is printed)
  2  bad config or usage, or no store"""



def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(prog="python -m gates", description="Promotion gates and the review log.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=UsageParser)
    check = sub.add_parser("check", help="evaluate a model version against its promotion policy",
                           description="Evaluate a model version against its promotion policy.",
                           epilog=CHECK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("target", help="model:NAME/VERSION or model:NAME@ALIAS")
    check.add_argument("--config", default="governance.toml", help="config file (default: governance.toml)")
    check.add_argument("--policy", help="policy TOML file (default: see below)")
    check.add_argument("--platform", choices=PLATFORMS, help="disambiguate a model name held on several platforms")
    check.add_argument("--as-of", dest="as_of", metavar="SNAPSHOT", type=int,
                       help="evaluate at this snapshot id instead of the latest good ones")
    check.add_argument("--no-artifact-listing", action="store_true",
                       help="do not list artifacts in the registry (artifact criteria other than MLmodel "
                            "become UNKNOWN)")
    check.add_argument("--json", action="store_true", help="print one JSON object for machines")
    ver = sub.add_parser("verify", help="verify the hash chain of the review log",
                         description="Verify the hash-chained review log: detects edited or deleted entries.",
                         epilog=VERIFY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ver.add_argument("--config", default="governance.toml", help="config file (default: governance.toml)")
    ver.add_argument("--expect-head", metavar="HASH", help="the head hash pinned earlier (detects a rewritten log)")
    ver.add_argument("--json", action="store_true", help="print one JSON object for machines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return EXIT_USAGE
    store = Store(config.store_path)
    if args.command == "verify":
        return _verify(store, config, args)
    return _check(store, config, args)


def _check(store: Store, config, args) -> int:
    try:
        ctx = Context(store, args.as_of)
        source, name, version = resolve_target(ctx, args.target, args.platform)
    except ValueError as e:
        print(f"usage error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except StoreMissing as e:
        print(f"not found: {e}", file=sys.stderr)
        return EXIT_FAIL
    except StoreError as e:
        print(f"config error: {config.path}: [store] path: {e}", file=sys.stderr)
        return EXIT_USAGE
    except TargetNotFound as e:
        print(f"not found: {e}", file=sys.stderr)
        for c in e.candidates:
            print(f"  candidate: {c}", file=sys.stderr)
        return EXIT_FAIL
    try:
        policy = policy_for(name, config.review.policy_dir, args.policy)
    except PolicyError as e:
        print(f"policy error: {e}", file=sys.stderr)
        return EXIT_USAGE
    lister = None if args.no_artifact_listing else mlflow_artifact_lister(config)
    result = evaluate(ctx, policy, source, name, version, artifact_lister=lister)
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str, ensure_ascii=False))
    else:
        print(render(result))
    return EXIT_OK if result.status == PASS else EXIT_FAIL


def render(result: GateResult) -> str:
    t = result.target
    lines = [f"gate {result.status}: {t.label}",
             f"policy: {result.policy.path} (sha256 {result.policy.sha256[:12]}…)",
             "snapshots: " + ", ".join(f"{s} #{i}" for s, i in result.snapshot_ids.items())]
    b = result.baseline
    lines.append(f"baseline: {t.name} v{b.version} = {b.label} ({b.run_name or b.run_id or 'no run'})"
                 if b else f"baseline: none. {result.baseline_summary}")
    width = max((len(c.name) for c in result.criteria), default=10)
    for c in result.criteria:
        flag = " (blocking)" if c.blocking and c.status != "FAIL" else ""
        lines.append(f"  {c.status:<7} {c.name:<{width}}  actual {c.actual}  required {c.required}{flag}")
        lines.append(f"          {'':<{width}}  evidence: {c.evidence}")
    counts = result.counts()
    lines.append(f"{counts['PASS']} pass, {counts['FAIL']} fail, {counts['UNKNOWN']} unknown"
                 + (f"; blocking: {', '.join(c.name for c in result.blocking)}" if result.blocking else ""))
    return "\n".join(lines)


def _verify(store: Store, config, args) -> int:
    try:
        report = verify(store, args.expect_head)
    except StoreMissing as e:
        print(f"no store: {e}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as e:
        print(f"config error: {config.path}: [store] path: {e}", file=sys.stderr)
        return EXIT_USAGE
    except duckdb.CatalogException as e:
        # The schema version is current (the reader checked it), so the log's tables were dropped
        # from this store: nothing can be verified, which is a failure, not a crash.
        what = str(e).splitlines()[0]
        problem = (f"the review log cannot be read from {store.path} ({what}): "
                   "its table was dropped or the store edited")
        if args.json:
            print(json.dumps({"ok": False, "entries": None, "head_hash": None, "problems": [problem]}, indent=2))
        else:
            print(f"review log cannot be verified: {problem}", file=sys.stderr)
        return EXIT_FAIL
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        state = "intact" if report.ok else "TAMPERED"
        print(f"review log {state}: {report.entries} entries, head {report.head_hash}")
        for p in report.problems:
            print(f"  {p}")
    return EXIT_OK if report.ok else EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
