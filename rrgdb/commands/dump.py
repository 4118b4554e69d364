"""`rrgdb dump`: one line per event (index, tid, kind, syscall, result), or with --stats
a summary: events by kind, syscalls by name, ptrace stops, bytes recorded."""

from __future__ import annotations

import argparse
from collections import Counter

from rrgdb import syscallbuf
from rrgdb.commands._common import EXIT_BAD_TRACE, resolve_trace, say
from rrgdb.kernel.registers import Registers
from rrgdb.record.session import recorded_cpuid_faulting
from rrgdb.syscalls import signal_name, syscall_name
from rrgdb.trace import (
    CpuidFrame,
    ExecFrame,
    ExitFrame,
    FlushFrame,
    Frame,
    InstructionTrapFrame,
    PreemptFrame,
    SignalFrame,
    SyscallEntryFrame,
    SyscallFrame,
    TraceError,
    TraceHeader,
    TraceReader,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stats", action="store_true",
                        help="print counts (events, syscalls, traps, bytes) instead")
    parser.add_argument("trace", nargs="?", help="trace directory (default: the latest)")


# ptrace stops each kind of event cost when recorded (syscalls: entry + exit)
_RECORD_TRAPS = {SyscallFrame: 2, SyscallEntryFrame: 0, ExecFrame: 2, SignalFrame: 1,
                 InstructionTrapFrame: 1, CpuidFrame: 1, ExitFrame: 1, PreemptFrame: 1,
                 FlushFrame: 0}


def print_stats(frames: list[Frame], header: TraceHeader) -> None:
    """The --stats summary."""
    print(f"scheduling\t{header.extra.get('scheduling', 'unknown')}")
    print(f"syscall buffering\t{'on' if header.syscallbuf else 'off'}")
    print(f"cpuid faulting\t{'on' if recorded_cpuid_faulting(header) else 'off'}")
    kinds: Counter[str] = Counter(type(f).__name__ for f in frames)
    syscalls: Counter[str] = Counter(
        syscall_name(Registers.from_bytes(f.regs).syscallno)
        for f in frames if isinstance(f, SyscallFrame))
    buffered: Counter[str] = Counter(
        syscall_name(nr) for f in frames if isinstance(f, FlushFrame)
        for nr in syscallbuf.answered_calls(f.data))
    written = sum(len(w.data) for f in frames if isinstance(f, SyscallFrame) for w in f.writes)
    traps = sum(_RECORD_TRAPS.get(type(f), 1) for f in frames)
    traced = sum(syscalls.values())
    instruction_traps = kinds["InstructionTrapFrame"] + kinds["CpuidFrame"]
    print(f"events\t{len(frames)}")
    for kind, count in kinds.most_common():
        print(f"  {kind}\t{count}")
    total = traced + sum(buffered.values())
    print(f"syscalls\t{traced} traced, {sum(buffered.values())} buffered")
    print(f"traps (record)\t{traps}")
    if total:
        print(f"traps per 1000 syscalls\t{1000 * traps / total:.1f} record, "
              f"{1000 * (traced + instruction_traps) / total:.1f} replay")
    print(f"bytes of syscall output\t{written}")
    for name, count in (syscalls + buffered).most_common(15):
        print(f"  {name}\t{count}\t({buffered[name]} buffered)")


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
        return f"signal {signal_name(frame.signo)} ({kind})"
    if isinstance(frame, InstructionTrapFrame):
        return f"rdtsc = {frame.value:#x}"
    if isinstance(frame, CpuidFrame):
        regs = Registers.from_bytes(frame.regs)
        leaf, subleaf = regs.rax & 0xFFFFFFFF, regs.rcx & 0xFFFFFFFF
        answer = " ".join(f"{v:#010x}" for v in frame.values)
        return f"cpuid leaf={leaf:#x} subleaf={subleaf:#x} = {answer}"
    if isinstance(frame, ExitFrame):
        return f"exit status={frame.status:#x}"
    if isinstance(frame, FlushFrame):
        names = Counter(syscall_name(nr) for nr in syscallbuf.answered_calls(frame.data))
        return "buffered " + ", ".join(f"{n}x{c}" for n, c in names.most_common())
    if isinstance(frame, PreemptFrame):
        return f"preempted at pc={Registers.from_bytes(frame.regs).rip:#x}"
    if isinstance(frame, SyscallEntryFrame):
        nr = Registers.from_bytes(frame.regs).syscallno
        return f"syscall-entry {syscall_name(nr)}"
    return type(frame).__name__


def run(args: argparse.Namespace) -> int:
    try:
        reader = TraceReader(resolve_trace(args.trace))
        if args.stats:
            print_stats(list(reader.frames()), reader.header)
        else:
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
