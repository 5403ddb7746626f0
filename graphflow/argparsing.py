"""argparse for graphflow's commands: a usage error is one line on stderr, not a usage dump."""

from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors print `PROG: error: MESSAGE (see PROG --help)`, exit 2.

    A user who mistypes an option reads one line that names the mistake; the
    full usage stays one `--help` away.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
