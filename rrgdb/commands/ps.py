"""`rrgdb ps`: the processes in a trace (pid, ppid, exit, command line)."""

from __future__ import annotations

import argparse
import os

from rrgdb.commands._common import EXIT_BAD_TRACE, resolve_trace, say
from rrgdb.kernel.registers import Registers
from rrgdb.record.session import exit_code
from rrgdb.syscalls import syscall_name
from rrgdb.trace import ExecFrame, ExitFrame, SyscallFrame, TraceError, TraceReader

FORKS = {"fork", "vfork", "clone", "clone3"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", nargs="?", help="trace directory (default: the latest)")


def run(args: argparse.Namespace) -> int:
    try:
        reader = TraceReader(resolve_trace(args.trace))
        processes: dict[int, list[str]] = {}
        parents: dict[int, int] = {}
        exits: dict[int, int] = {}
        for frame in reader.frames():
            if isinstance(frame, ExecFrame):
                processes[frame.tid] = [a.decode(errors="replace") for a in frame.argv]
            elif isinstance(frame, ExitFrame):
                exits[frame.tid] = frame.status
            elif isinstance(frame, SyscallFrame) and frame.result > 0 and (
                    syscall_name(Registers.from_bytes(frame.regs).syscallno) in FORKS):
                parents[frame.result] = frame.tid
                processes.setdefault(frame.result, processes.get(frame.tid, []))
    except TraceError as e:
        say(str(e))
        return EXIT_BAD_TRACE
    print("PID\tPPID\tEXIT\tCMD")
    for pid, argv in processes.items():
        status = exits.get(pid)
        shown = "-" if status is None else str(
            -os.WTERMSIG(status) if os.WIFSIGNALED(status) else exit_code(status))
        ppid = parents.get(pid)
        print(f"{pid}\t{ppid if ppid else '--'}\t{shown}\t{' '.join(argv)}")
    return 0
