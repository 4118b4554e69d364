"""DebugTarget: the one narrow interface between the gdb server and the replay engine.

The server never touches ptrace and the engine never parses packets; everything the
server needs from a replay goes through these methods. Every method except `interrupt`
is called from one dedicated engine thread (the kernel ties tracees to the thread that
attached them). Threads are Linux tids, signals Linux numbers, addresses plain ints."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from rrgdb.gdb.requests import BreakpointKind


class Direction(enum.Enum):
    """Which way a resume runs."""

    FORWARD = "forward"
    REVERSE = "reverse"


class ResumeAction(enum.Enum):
    """Run until something stops the target, or execute one instruction."""

    CONTINUE = "continue"
    STEP = "step"


@dataclass(frozen=True, slots=True)
class RegisterState:
    """A thread's registers: the 216-byte `user_regs_struct` and its XSAVE area (the
    first 512 bytes are the FXSAVE region; empty if the engine has no FPU state)."""

    user_regs: bytes
    xsave: bytes


# -- why a resume stopped ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BreakpointStop:
    """A breakpoint was hit; PC is at the breakpoint address."""

    hardware: bool = False


@dataclass(frozen=True, slots=True)
class WatchpointStop:
    """A watched range at `addr` was written, read or accessed (by `kind`)."""

    kind: BreakpointKind
    addr: int


@dataclass(frozen=True, slots=True)
class StepDone:
    """A single step finished with nothing else to report."""


@dataclass(frozen=True, slots=True)
class SignalStop:
    """The thread received Linux signal `signo`; `siginfo` is its 128-byte siginfo_t as
    recorded (empty if unknown)."""

    signo: int
    siginfo: bytes = b""


@dataclass(frozen=True, slots=True)
class ExecStop:
    """The process has just exec'd the program at `path` (gdb loads its symbols)."""

    path: str


@dataclass(frozen=True, slots=True)
class SyscallStop:
    """The thread is at the entry of syscall `number`, or (`returning`) just after it."""

    number: int
    returning: bool


@dataclass(frozen=True, slots=True)
class EndOfHistory:
    """The replay reached the start (`at_beginning`) or the end of the recording."""

    at_beginning: bool


@dataclass(frozen=True, slots=True)
class Interrupted:
    """`interrupt()` stopped the resume."""


@dataclass(frozen=True, slots=True)
class ProcessExited:
    """The process exited with `status` (its exit code)."""

    status: int


@dataclass(frozen=True, slots=True)
class ProcessKilled:
    """The process was killed by Linux signal `signo`."""

    signo: int


StopReason = (
    BreakpointStop
    | WatchpointStop
    | StepDone
    | SignalStop
    | ExecStop
    | SyscallStop
    | EndOfHistory
    | Interrupted
    | ProcessExited
    | ProcessKilled
)


@dataclass(frozen=True, slots=True)
class StopEvent:
    """Where a resume ended: why, and in which thread."""

    reason: StopReason
    thread: int


class DebugTarget(Protocol):
    """A debuggable (replayed) process, as the gdb server sees it."""

    @property
    def pid(self) -> int:
        """The debuggee's process id (as recorded)."""
        ...

    @property
    def has_avx(self) -> bool:
        """Whether the recorded CPU had AVX, so registers include the ymm upper halves."""
        ...

    @property
    def reverse_execution(self) -> bool:
        """Whether `resume` accepts `Direction.REVERSE`."""
        ...

    def threads(self) -> list[int]:
        """The live threads of the debuggee (empty once it has exited)."""
        ...

    def thread_name(self, tid: int) -> str:
        """A thread's name (its comm, as `info threads` shows it; "" if unknown)."""
        ...

    def current_thread(self) -> int:
        """The thread of the current stop."""
        ...

    def read_registers(self, tid: int) -> RegisterState:
        """The registers of `tid` at the current position."""
        ...

    def write_registers(self, tid: int, state: RegisterState) -> bool:
        """Replace the registers of `tid`; False if refused (a replay is read-only)."""
        ...

    def read_memory(self, addr: int, length: int) -> bytes:
        """Up to `length` bytes at `addr`: fewer if the range runs into unmapped memory,
        empty if `addr` itself is unreadable. Breakpoints never show in the bytes."""
        ...

    def write_memory(self, addr: int, data: bytes) -> bool:
        """Write `data` at `addr`; False if refused or unmapped."""
        ...

    def set_breakpoint(self, kind: BreakpointKind, addr: int, length: int) -> bool:
        """Add a breakpoint or watchpoint (setting one twice is harmless); False if the
        kind or length cannot be honoured."""
        ...

    def clear_breakpoint(self, kind: BreakpointKind, addr: int, length: int) -> None:
        """Remove a breakpoint or watchpoint (removing an absent one is harmless)."""
        ...

    def catch_syscalls(self, syscalls: frozenset[int] | None) -> None:
        """Make continues (both ways) stop at the entry and the return of these syscalls
        (Linux numbers; an empty set: every syscall; None: none)."""
        ...

    def resume(self, direction: Direction, action: ResumeAction, tid: int) -> StopEvent:
        """Run (or step `tid`) in `direction` until the next stop, and report it.

        Going forward past the end of the recording reports `EndOfHistory(False)` once
        and then the recorded exit; going back past the start reports
        `EndOfHistory(True)`. Blocks until the stop; `interrupt` cuts it short."""
        ...

    def interrupt(self) -> None:
        """Make the running resume (or, if none runs yet, the next one) return
        `Interrupted` soon. Thread-safe: called from the server's thread."""
        ...

    def restart(self, argument: str) -> StopEvent:
        """Go back to the start of the replay (gdb `run`), or to the point `argument`
        names (an event number, as in rr); breakpoints are kept."""
        ...

    def monitor(self, command: str) -> str:
        """Run a `monitor` command (`help`, `when`, …) and return its output text."""
        ...

    def auxv(self) -> bytes:
        """The debuggee's auxiliary vector, as the kernel laid it out."""
        ...

    def exec_file(self) -> str:
        """The path of the debuggee's executable (as recorded)."""
        ...

    def open_file(self, path: str) -> BinaryIO:
        """Open a file of the recording for reading: the trace's copy of a mapped file
        (the executable, shared libraries) or synthesized text such as
        /proc/PID/task/TID/maps. Raises OSError (with errno) if there is none."""
        ...

    def search_memory(self, addr: int, length: int, pattern: bytes) -> int | None:
        """The first address in [addr, addr+length) where `pattern` starts, or None."""
        ...

    def tls_address(self, tid: int, offset: int, load_module: int) -> int | None:
        """The address of thread-local variable `offset` of the module whose link_map is
        at `load_module`, in thread `tid`; None if it cannot be found (no TLS there, a
        block not allocated yet, no thread library information)."""
        ...

    def close(self) -> None:
        """End the replay and reap its tracees; no other call follows."""
        ...
