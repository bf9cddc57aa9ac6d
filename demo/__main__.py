"""`python -m demo build [--target DIR]`: (re)build the embedded demo workspace."""
import argparse
import sys
from pathlib import Path

from demo.build import build, demo_dir

parser = argparse.ArgumentParser(prog="python -m demo")
parser.add_argument("command", choices=["build"])
parser.add_argument("--target", type=Path, default=None)
args = parser.parse_args()
path = build(args.target or demo_dir(), progress=lambda pct, msg: print(f"{pct:3d}% {msg}", file=sys.stderr, flush=True))
print(path)
