"""`python -m store export --format parquet|delta --to PATH [--config PATH | --store PATH]`.

Exit 0: exported; 2: bad config or usage (including a missing store).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from collectors.config import ConfigError, load_config
from store.db import Store, StoreError
from store.export import FORMATS, export_store


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m store", description="Work with the Waymark store.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    exp = sub.add_parser("export", help="write current state and history as Parquet or Delta tables",
                         description="Write each entity's current state (<entity>) and full history "
                                     "(<entity>_history) plus the snapshots table, for Fabric, Power BI or Spark.")
    exp.add_argument("--format", required=True, choices=FORMATS)
    exp.add_argument("--to", required=True, type=Path, metavar="PATH", help="folder to write the tables into")
    where = exp.add_mutually_exclusive_group()
    where.add_argument("--config", default=None, help="config whose store to export (default: governance.toml)")
    where.add_argument("--store", type=Path, default=None, help="a store file, instead of a config")
    exp.add_argument("--json", action="store_true", help="print one JSON object for machines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        store_path = args.store or load_config(args.config or "governance.toml").store_path
        tables = export_store(Store(store_path), args.to, args.format)
    except (ConfigError, StoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"store": str(store_path), "format": args.format,
                          "tables": [{"name": t.name, "rows": t.rows, "path": str(t.path)} for t in tables]}))
    else:
        for t in tables:
            print(f"{t.name:32} {t.rows:>10,} rows  {t.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
