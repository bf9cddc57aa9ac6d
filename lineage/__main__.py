"""`python -m lineage trace|impact TARGET --config PATH [--platform P] [--as-of TIME|SNAPSHOT] [--json]`

Contract (DESIGN.md): exit 0 traced (gaps are data, not errors); 1 not found or ambiguous (the
message lists the candidates); 2 bad config or usage.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from collectors.cli_common import UsageParser
from collectors.config import PLATFORMS, ConfigError, load_config
from lineage.load import conventions_for, load_graph
from lineage.report import render_text
from lineage.trace import TargetError, impact, parse_as_of, trace
from store import Store, StoreError, StoreMissing
from store.queries import SnapshotNotFound

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE = 0, 1, 2



def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(prog="python -m lineage", description="Trace lineage upstream, or its impact downstream.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=UsageParser)
    for name, help_text, targets in (
            ("trace", "what produced a model: run, git SHA, data versions (upstream)",
             "model:NAME@ALIAS, model:NAME/VERSION, endpoint:NAME or run:RUN_ID"),
            ("impact", "what depends on a table, run or commit (downstream)",
             "table:NAME[@VERSION], run:RUN_ID, commit:SHA, model:NAME/VERSION or model:NAME@ALIAS")):
        p = sub.add_parser(name, help=help_text, description=f"{help_text}. Exit 0: answered (gaps are data); "
                           "1: not found or ambiguous; 2: bad config or usage.")
        p.add_argument("target", help=targets + " (or a node id such as run:databricks:<id>)")
        p.add_argument("--config", default="governance.toml", help="config file (default: governance.toml)")
        p.add_argument("--platform", choices=PLATFORMS, help="only targets on this platform")
        p.add_argument("--as-of", dest="as_of", metavar="TIME|SNAPSHOT",
                       help="ISO time (a bare date means the end of that day, UTC) or a snapshot id; default now")
        p.add_argument("--depth", type=int, default=None, help="hops to follow (default: all)")
        p.add_argument("--json", action="store_true", help="print one JSON object for machines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
        when, label = parse_as_of(args.as_of, datetime.now(timezone.utc))
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except TargetError as e:
        print(f"usage error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.depth is not None and args.depth < 1:
        print("usage error: --depth must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        graph = load_graph(Store(config.store_path), when, conventions_for(config.sources))
    except (StoreMissing, SnapshotNotFound) as e:
        print(f"not found: {e}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except StoreError as e:
        print(f"config error: {config.path}: [store] path: {e}", file=sys.stderr)
        return EXIT_USAGE
    ask = trace if args.command == "trace" else impact
    try:
        answer = ask(graph, args.target, as_of=label, platform=args.platform, depth=args.depth)
    except TargetError as e:
        if e.kind == "usage":
            print(f"usage error: {e}", file=sys.stderr)
            return EXIT_USAGE
        print(f"{e.kind.replace('_', ' ')}: {e}", file=sys.stderr)
        for candidate in e.candidates:
            print(f"  candidate: {candidate}", file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.json:
        print(json.dumps(answer.to_json(), indent=2, default=str))
    else:
        print(render_text(answer))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
