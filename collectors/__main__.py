"""`python -m collectors snapshot --config PATH [--source NAME]…` (contract in DESIGN.md).

Exit 0: every source ok; 1: at least one source failed (the others are committed); 2: bad config or usage.
"""
from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from collectors.config import ConfigError, load_config
from collectors.runner import SnapshotOutcome, snapshot_all


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 on usage errors, as the contract wants
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m collectors", description="Snapshot ML metadata into the Waymark store.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    snap = sub.add_parser("snapshot", help="take one snapshot per configured source",
                          description="Take one snapshot per source. Exit 0: all ok; 1: a source failed "
                                      "(the others are committed); 2: bad config or usage.")
    snap.add_argument("--config", default="governance.toml", help="config file (default: governance.toml)")
    snap.add_argument("--source", action="append", metavar="NAME", help="only this source (repeatable)")
    snap.add_argument("--full", action="store_true", help="re-read everything instead of an incremental pass")
    snap.add_argument("--json", action="store_true", help="print one JSON object for machines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    err = Console(stderr=True)
    try:
        config = load_config(args.config)
        for name in args.source or []:
            config.source(name)
        if not config.sources:
            raise ConfigError(f"{args.config}: no [[sources]] configured")
    except ConfigError as e:
        # soft_wrap: never hard-wrap at 80 columns when piped (CI logs), it would split file paths.
        err.print(f"config error: {e}", style="bold red", highlight=False, markup=False, soft_wrap=True)
        return 2

    quiet = args.json or not err.is_terminal
    status = err.status("starting…") if not quiet else None
    if status:
        status.start()

    def progress(source: str, message: str) -> None:
        if status:
            status.update(f"[bold]{escape(source)}[/]: {escape(message)}")
        elif not args.json:
            print(f"{source}: {message}", file=sys.stderr, flush=True)

    try:
        outcomes = snapshot_all(config, args.source, full=args.full, progress=progress)
    finally:
        if status:
            status.stop()
    if args.json:
        print(json.dumps({"store": str(config.store_path), "sources": [o.to_json() for o in outcomes]},
                         indent=2, default=str))
    else:
        print_summary(outcomes)
    return 0 if all(o.ok for o in outcomes) else 1


def print_summary(outcomes: list[SnapshotOutcome]) -> None:
    console = Console()
    table = Table(title="Snapshot summary", title_justify="left")
    for col in ("source", "status", "mode", "snapshot", "added", "changed", "removed", "seconds", "warnings"):
        table.add_column(col, justify="right" if col in ("added", "changed", "removed", "seconds", "warnings", "snapshot") else "left")
    for o in outcomes:
        totals = {k: sum(c.get(k, 0) for c in o.counts.values()) for k in ("added", "changed", "removed")}
        # Names and modes come from config and collectors: escaped, so `x[/]` is text, not markup.
        table.add_row(escape(o.source), "[green]ok[/]" if o.ok else "[red]FAILED[/]", escape(o.mode),
                      str(o.snapshot_id or "–"),
                      f"{totals['added']:,}", f"{totals['changed']:,}", f"{totals['removed']:,}",
                      f"{o.seconds:.1f}", str(len(o.warnings)))
    console.print(table)
    for o in outcomes:
        if o.counts:
            detail = ", ".join(f"{entity} +{c['added']} ~{c['changed']} -{c['removed']}"
                               for entity, c in o.counts.items() if c["added"] or c["changed"] or c["removed"])
            console.print(f"[bold]{escape(o.source)}[/] changes: {escape(detail or 'none')}", highlight=False)
        for w in o.warnings:
            console.print(f"{o.source} warning: {w}", style="yellow", highlight=False, markup=False, soft_wrap=True)
        for e in o.errors:
            console.print(f"{o.source} error: {e}", style="red", highlight=False, markup=False, soft_wrap=True)


if __name__ == "__main__":
    sys.exit(main())
