"""The command line: argument parsing only; each subcommand lives in rrgdb.commands.

When the first argument names a subcommand, only that subcommand's module is imported and
only its parser built: the others' dependencies would cost every command start-up time.
"""

from __future__ import annotations

import argparse
import importlib
import os
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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or of subcommand `only` alone."""
    parser = argparse.ArgumentParser(prog="rrgdb", description="record, replay and debug "
                                     "programs backwards and forwards with gdb")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        if only is None or name == only:
            command_module(name).add_arguments(sub.add_parser(name, help=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the subcommand argv names; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    only = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(only).parse_args(argv)
    from rrgdb import native  # after parsing: --help needs no native code

    native.keep_freed_memory()
    return command_module(args.command).run(args)


def entry() -> None:
    """The `rrgdb` program: main(), then exit without tearing the interpreter down.

    Everything rrgdb writes is on disk by then (traces are fsynced, tracees are ended by
    pid or by PTRACE_O_EXITKILL); freeing every object of every imported module would
    add 20-40 ms to each command. An exception still ends the ordinary way."""
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
