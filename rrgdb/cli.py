"""The command line: argument parsing only; each subcommand lives in rrgdb.commands.

Only the chosen subcommand's module is imported: importing them all would make every
command pay for the others' dependencies at start-up.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

COMMANDS = {
    "record": "run a program and record it",
    "replay": "replay a recording (-a: alone; otherwise under gdb)",
    "ps": "list the processes of a recording",
    "dump": "print the events of a recording (--stats: a summary)",
    "pack": "check that a recording is self-contained (it copies mapped files)",
    "gdbinit": "print the path of the gdb extension to `source` in gdb",
}


def command_module(name: str) -> ModuleType:
    """rrgdb.commands.<name>, with its add_arguments(parser) and run(args)."""
    return importlib.import_module(f"rrgdb.commands.{name}")


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand `chosen` (all of them when None) gets its arguments."""
    parser = argparse.ArgumentParser(prog="rrgdb", description="record, replay and debug "
                                     "programs backwards and forwards with gdb")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        subparser = sub.add_parser(name, help=help_text)
        if chosen is None or name == chosen:
            command_module(name).add_arguments(subparser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The top level has no options but -h, so the first other word names the subcommand.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(chosen if chosen in COMMANDS else None).parse_args(argv)
    return command_module(args.command).run(args)
