"""The siginfo of a stop, as gdb's `$_siginfo` shows it (qXfer:siginfo:read).

A stop at a recorded signal has the signal's recorded siginfo. The traps the debugger
causes get what the x86-64 kernel gives a ptraced thread: an int3 breakpoint is a forced
SIGTRAP (SI_KERNEL, no address), a single step TRAP_TRACE and a debug-register hit
TRAP_HWBKPT, both with the pc in si_addr; an exec is ptrace's exec event."""

from __future__ import annotations

import struct

from rrgdb.gdb.target import (
    BreakpointStop,
    ExecStop,
    SignalStop,
    StepDone,
    StopReason,
    SyscallStop,
    WatchpointStop,
)

SIGINFO_SIZE = 128
SIGTRAP = 5
SI_KERNEL = 0x80
TRAP_TRACE = 2
TRAP_HWBKPT = 4
PTRACE_EVENT_EXEC = 4
TRACESYSGOOD = 0x80  # a syscall stop's si_code is SIGTRAP | 0x80

# si_signo, si_errno, si_code, padding, then the union (si_addr first for faults)
_HEAD = struct.Struct("<iii4xQ")


def kernel_siginfo(signo: int, code: int, addr: int = 0) -> bytes:
    """A 128-byte x86-64 siginfo_t with si_addr (or the union's first word) = addr."""
    return _HEAD.pack(signo, 0, code, addr).ljust(SIGINFO_SIZE, b"\0")


def stop_siginfo(reason: StopReason, pc: int) -> bytes | None:
    """The siginfo of the thread that stopped for `reason` with its pc at `pc`; None for
    stops no signal caused (an interrupt, the ends of the recording, an exit)."""
    match reason:
        case BreakpointStop(hardware=False):
            return kernel_siginfo(SIGTRAP, SI_KERNEL)
        case BreakpointStop(hardware=True) | WatchpointStop():
            return kernel_siginfo(SIGTRAP, TRAP_HWBKPT, pc)
        case StepDone():
            return kernel_siginfo(SIGTRAP, TRAP_TRACE, pc)
        case SignalStop(signo=signo, siginfo=recorded):
            if len(recorded) == SIGINFO_SIZE:
                return recorded
            return kernel_siginfo(signo, SI_KERNEL)
        case ExecStop():
            return kernel_siginfo(SIGTRAP, SIGTRAP | PTRACE_EVENT_EXEC << 8)
        case SyscallStop():
            return kernel_siginfo(SIGTRAP, SIGTRAP | TRACESYSGOOD)
    return None
