"""The command line: argument parsing only; each subcommand lives in rrgdb.commands."""

from __future__ import annotations

import argparse
import sys

from rrgdb.commands import dump, gdbinit, pack, ps, record, replay

COMMANDS = {
    "record": (record, "run a program and record it"),
    "replay": (replay, "replay a recording (-a: alone; otherwise under gdb)"),
    "ps": (ps, "list the processes of a recording"),
    "dump": (dump, "print the events of a recording (--stats: a summary)"),
    "pack": (pack, "check that a recording is self-contained (it copies mapped files)"),
    "gdbinit": (gdbinit, "print the path of the gdb extension to `source` in gdb"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rrgdb", description="record, replay and debug "
                                     "programs backwards and forwards with gdb")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    module, _ = COMMANDS[args.command]
    return module.run(args)
