"""`python -m store export --format parquet|delta --to PATH [--config PATH | --store STORE]`
`python -m store copy --from STORE --to STORE`

STORE is a config file (`*.toml`: its [store]), a DuckLake spec (`ducklake:<PostgreSQL connection
string>[ data_path=<folder or URL>]`) or a DuckDB file path.
Exit 0: done; 2: bad config or usage (including a missing store, or a copy into a non-empty one).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from collectors.cli_common import UsageParser
from collectors.config import ConfigError, load_config
from store.copy import copy_store
from store.db import Store, StoreError
from store.ducklake import SpecError, is_spec
from store.export import FORMATS, export_store

_STORE_HELP = "a config file (*.toml), a DuckLake spec (ducklake:<catalog>[ data_path=<path>]) or a DuckDB file"


def open_store(location: str) -> Store:
    """A store named on the command line: a config file, a DuckLake spec or a DuckDB file."""
    if location.endswith(".toml"):
        return Store(load_config(location).store_path)
    return Store(location if is_spec(location) else Path(location))



def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(prog="python -m store", description="Work with the Waymark store.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=UsageParser)
    exp = sub.add_parser("export", help="write current state and history as Parquet or Delta tables",
                         description="Write each entity's current state (<entity>) and full history "
                                     "(<entity>_history) plus the snapshots table, for Fabric, Power BI or Spark.")
    exp.add_argument("--format", required=True, choices=FORMATS)
    exp.add_argument("--to", required=True, type=Path, metavar="PATH", help="folder to write the tables into")
    where = exp.add_mutually_exclusive_group()
    where.add_argument("--config", default=None, help="config whose store to export (default: governance.toml)")
    where.add_argument("--store", default=None, help="a store file or DuckLake spec, instead of a config")
    exp.add_argument("--json", action="store_true", help="print one JSON object for machines")
    cp = sub.add_parser("copy", help="copy a whole store, history included, into a new empty store",
                        description="Move a store between backends (DuckDB file, DuckLake): every table and "
                                    "snapshot id carries over. The destination must be new or empty.")
    cp.add_argument("--from", dest="source", required=True, metavar="STORE", help=_STORE_HELP)
    cp.add_argument("--to", dest="destination", required=True, metavar="STORE", help=_STORE_HELP)
    cp.add_argument("--json", action="store_true", help="print one JSON object for machines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "copy":
        return _copy(args)
    try:
        store = open_store(args.store) if args.store else Store(load_config(args.config or "governance.toml").store_path)
        store_path = store.name
        tables = export_store(store, args.to, args.format)
    except (ConfigError, StoreError, SpecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"store": str(store_path), "format": args.format,
                          "tables": [{"name": t.name, "rows": t.rows, "path": str(t.path)} for t in tables]}))
    else:
        for t in tables:
            print(f"{t.name:32} {t.rows:>10,} rows  {t.path}")
    return 0


def _copy(args: argparse.Namespace) -> int:
    try:
        source, destination = open_store(args.source), open_store(args.destination)
        tables = copy_store(source, destination)
    except (ConfigError, StoreError, SpecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"from": source.name, "to": destination.name,
                          "tables": [{"name": t.name, "rows": t.rows} for t in tables]}))
    else:
        for t in tables:
            print(f"{t.name:32} {t.rows:>10,} rows")
        print(f"copied {source.name} -> {destination.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
