"""`rrgdb ps`: the processes in a trace (pid, ppid, exit, command line)."""

from __future__ import annotations

import argparse
import os

from rrgdb.commands._common import EXIT_BAD_TRACE, resolve_trace, say
from rrgdb.record.session import exit_code
from rrgdb.replay.processes import recorded_processes
from rrgdb.trace import TraceError, TraceReader


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", nargs="?", help="trace directory (default: the latest)")


def run(args: argparse.Namespace) -> int:
    try:
        processes = recorded_processes(TraceReader(resolve_trace(args.trace)).frames())
    except TraceError as e:
        say(str(e))
        return EXIT_BAD_TRACE
    print("PID\tPPID\tEXIT\tCMD")
    for process in processes.values():
        status = process.exit_status
        shown = "-" if status is None else str(
            -os.WTERMSIG(status) if os.WIFSIGNALED(status) else exit_code(status))
        ppid = process.ppid or "--"
        print(f"{process.pid}\t{ppid}\t{shown}\t{' '.join(process.argv)}")
    return 0
