"""`rrgdb dump`: one line per event (index, tid, kind, syscall, result)."""

from __future__ import annotations

import argparse
import signal

from rrgdb.commands._common import EXIT_BAD_TRACE, resolve_trace, say
from rrgdb.kernel.registers import Registers
from rrgdb.syscalls import syscall_name
from rrgdb.trace import (
    ExecFrame,
    ExitFrame,
    Frame,
    InstructionTrapFrame,
    PreemptFrame,
    SignalFrame,
    SyscallEntryFrame,
    SyscallFrame,
    TraceError,
    TraceReader,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", nargs="?", help="trace directory (default: the latest)")


def describe(frame: Frame) -> str:
    """The kind-specific part of a dump line."""
    if isinstance(frame, SyscallFrame):
        nr = Registers.from_bytes(frame.regs).syscallno
        written = sum(len(w.data) for w in frame.writes)
        extra = f" wrote={written}" if written else ""
        return f"syscall {syscall_name(nr)} = {frame.result}{extra}"
    if isinstance(frame, ExecFrame):
        return f"exec {frame.exe_path} argv={[a.decode(errors='replace') for a in frame.argv]}"
    if isinstance(frame, SignalFrame):
        kind = "sync" if frame.deterministic else "async"
        return f"signal {signal.Signals(frame.signo).name} ({kind})"
    if isinstance(frame, InstructionTrapFrame):
        return f"rdtsc = {frame.value:#x}"
    if isinstance(frame, ExitFrame):
        return f"exit status={frame.status:#x}"
    if isinstance(frame, PreemptFrame):
        return f"preempted at pc={Registers.from_bytes(frame.regs).rip:#x}"
    if isinstance(frame, SyscallEntryFrame):
        nr = Registers.from_bytes(frame.regs).syscallno
        return f"syscall-entry {syscall_name(nr)}"
    return type(frame).__name__


def run(args: argparse.Namespace) -> int:
    try:
        reader = TraceReader(resolve_trace(args.trace))
        for index, frame in enumerate(reader.frames()):
            print(f"{index}\t{frame.tid}\t{describe(frame)}")
    except TraceError as e:
        say(str(e))
        return EXIT_BAD_TRACE
    except BrokenPipeError:
        return 0
    if not reader.complete:
        say("the trace is incomplete (the recorder did not finish)")
    return 0
