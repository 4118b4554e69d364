"""`rrgdb gdbinit`: print the absolute path of rrgdb's gdb extension script, for
`source $(rrgdb gdbinit)` in any gdb or IDE debugging an rrgdb replay."""

from __future__ import annotations

import argparse

from rrgdb.commands._common import say


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("print the path of the gdb extension (last, leak-roots, when, "
                          "checkpoint, restart); load it in gdb with: source $(rrgdb gdbinit)")


def run(args: argparse.Namespace) -> int:
    from rrgdb.gdbext import SCRIPT

    if not SCRIPT.is_file():
        say(f"the gdb extension is missing from the installation ({SCRIPT})")
        return 1
    print(SCRIPT)
    return 0
