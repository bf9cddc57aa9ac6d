"""`python -m collectors snapshot --config PATH [--source NAME]…` (contract in DESIGN.md), and
`python -m collectors check --config PATH [--source NAME]…`, the read-only first contact.

snapshot — exit 0: every source ok; 1: at least one source failed (the others are committed).
check — exit 0: every API area of every source answered; 1: an area was refused or unreachable.
Both exit 2 for a bad config or usage.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from collectors.check import DEFAULT_TIMEOUT, SourceCheck, check_all
from collectors.cli_common import UsageParser
from collectors.config import Config, ConfigError, load_config
from collectors.runner import SnapshotOutcome, snapshot_all


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(prog="python -m collectors", description="Snapshot ML metadata into the Waymark store.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=UsageParser)
    snap = sub.add_parser("snapshot", help="take one snapshot per configured source",
                          description="Take one snapshot per source. Exit 0: all ok; 1: a source failed "
                                      "(the others are committed); 2: bad config or usage.")
    snap.add_argument("--config", default="governance.toml", help="config file (default: governance.toml)")
    snap.add_argument("--source", action="append", metavar="NAME", help="only this source (repeatable)")
    snap.add_argument("--full", action="store_true", help="re-read everything instead of an incremental pass")
    snap.add_argument("--json", action="store_true", help="print one JSON object for machines")
    chk = sub.add_parser("check", help="read-only first contact: reachability, identity, counts, permissions",
                         description="Call each source once per API area (first page only) and print, per "
                                     "area: reachable or not, the identity used, counts found, and the role "
                                     "or privilege that grants a refused area. Writes nothing. Exit 0: every "
                                     "area answered; 1: an area was refused, unreachable or failed; "
                                     "2: bad config or usage.")
    chk.add_argument("--config", default="governance.toml", help="config file (default: governance.toml)")
    chk.add_argument("--source", action="append", metavar="NAME", help="only this source (repeatable)")
    chk.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                     help=f"per-call timeout and retry budget (default: {DEFAULT_TIMEOUT:g})")
    chk.add_argument("--json", action="store_true", help="print one JSON object for machines")
    return parser


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _load(args: argparse.Namespace, err: Console) -> Config | None:
    """The config, or None after printing the one config error (the caller exits 2)."""
    try:
        config = load_config(args.config)
        for name in args.source or []:
            config.source(name)
        if not config.sources:
            raise ConfigError(f"{args.config}: no [[sources]] configured")
    except ConfigError as e:
        # soft_wrap: never hard-wrap at 80 columns when piped (CI logs), it would split file paths.
        err.print(f"config error: {e}", style="bold red", highlight=False, markup=False, soft_wrap=True)
        return None
    return config


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    err = Console(stderr=True)
    config = _load(args, err)
    if config is None:
        return 2
    if args.command == "check":
        return run_check(config, args, err)

    with progress_reporter(err, args.json, "starting…") as progress:
        outcomes = snapshot_all(config, args.source, full=args.full, progress=progress)
    if args.json:
        print(json.dumps({"store": str(config.store_path), "sources": [o.to_json() for o in outcomes]},
                         indent=2, default=str))
    else:
        print_summary(outcomes)
    return 0 if all(o.ok for o in outcomes) else 1


@contextlib.contextmanager
def progress_reporter(err: Console, as_json: bool, first: str) -> Iterator[Callable[[str, str], None]]:
    """`progress(source, message)` for a long command: a live status line on a terminal, plain
    lines on stderr otherwise, nothing with --json (stdout carries the JSON, stderr stays quiet)."""
    status = err.status(first) if not as_json and err.is_terminal else None
    if status:
        status.start()

    def progress(source: str, message: str) -> None:
        if status:
            status.update(f"[bold]{escape(source)}[/]: {escape(message)}")
        elif not as_json:
            print(f"{source}: {message}", file=sys.stderr, flush=True)

    try:
        yield progress
    finally:
        if status:
            status.stop()


def run_check(config: Config, args: argparse.Namespace, err: Console) -> int:
    with progress_reporter(err, args.json, "checking…") as progress:
        results = check_all(config, args.source, timeout=args.timeout,
                            progress=lambda source: progress(source, "checking"))
    ok = all(r.ok for r in results)
    if args.json:
        print(json.dumps({"config": str(config.path), "ok": ok, "sources": [r.to_json() for r in results]},
                         indent=2))
    else:
        print_checks(results)
    return 0 if ok else 1


_STATUS_STYLE = {"ok": "green", "skipped": "dim", "denied": "bold red", "unauthenticated": "bold red",
                 "unreachable": "bold red", "not_found": "red", "error": "red"}


def print_checks(results: list[SourceCheck], console: Console | None = None) -> None:
    """One table per source; every platform or config string goes in as Text (never as markup)."""
    console = console or Console()
    for r in results:
        who = ", ".join(f"{k} {v}" for k, v in r.identity.items()) or "unknown"
        console.print(Text.assemble((r.source, "bold"), f" ({r.kind}, {r.platform}) — identity: ", who), soft_wrap=True)
        table = Table()
        for col in ("area", "status", "found", "detail / missing permission"):
            table.add_column(col, justify="right" if col == "found" else "left", overflow="fold")
        for a in r.areas:
            note = Text(a.detail or "")
            if a.grant:
                note = Text.assemble(("needs: ", "bold"), a.grant, "\n", (a.detail or "", "dim"))
            table.add_row(Text(a.label), Text(a.status, style=_STATUS_STYLE.get(a.status, "")), Text(a.found), note)
        console.print(table)
    bad = [r.source for r in results if not r.ok]
    console.print(Text(f"{len(results) - len(bad)} of {len(results)} sources fully readable"
                       + (f"; not: {', '.join(bad)}" if bad else ""), style="red" if bad else "green"))


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
