"""What every `python -m <package>` command line shares. It lives here because all of them already
import `collectors.config`, so it adds no new dependency between packages."""
from __future__ import annotations

import argparse
import sys

EXIT_USAGE = 2


class UsageParser(argparse.ArgumentParser):
    """An argument parser whose usage errors exit 2, as the command-line contract wants."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")
