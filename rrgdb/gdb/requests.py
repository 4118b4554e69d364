"""Typed requests: one small immutable class per packet gdb sends to a stub.

The readers in `_readers.py` build these from packet bodies; the dispatcher consumes them.
Addresses, lengths and numbers are ints, hex-encoded text is decoded, binary data is
unescaped bytes. Signal numbers are in gdb's numbering (see `signals.py`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

ALL_THREADS = -1
ANY_THREAD = 0


@dataclass(frozen=True, slots=True)
class ThreadId:
    """A thread as gdb names it: `pPID.TID` (multiprocess) or `TID`.

    `pid` is None in the plain form. Either number may be `ALL_THREADS` (-1) or
    `ANY_THREAD` (0); `pPID` alone means all threads of that process."""

    pid: int | None
    tid: int

    def matches(self, pid: int, tid: int) -> bool:
        """Whether this (possibly wildcard) id names thread `tid` of process `pid`."""
        pid_ok = self.pid in (None, ALL_THREADS, ANY_THREAD, pid)
        return pid_ok and self.tid in (ALL_THREADS, ANY_THREAD, tid)


class BreakpointKind(enum.IntEnum):
    """The `type` field of Z/z packets."""

    SOFTWARE = 0
    HARDWARE = 1
    WRITE_WATCH = 2
    READ_WATCH = 3
    ACCESS_WATCH = 4


class Request:
    """Base of every request; `expects_reply` is False for the packets gdb does not await."""

    __slots__ = ()
    expects_reply: ClassVar[bool] = True
    resumes: ClassVar[bool] = False


class _Resume(Request):
    """A request whose reply is a stop reply sent when the target stops again."""

    __slots__ = ()
    resumes = True


# -- connection setup ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuerySupported(Request):
    """`qSupported:f1;f2…`: gdb's features, e.g. "multiprocess+", "xmlRegisters=i386"."""

    features: tuple[str, ...]

    def offers(self, feature: str) -> bool:
        """Whether gdb listed `feature+`."""
        return f"{feature}+" in self.features


@dataclass(frozen=True, slots=True)
class MustReplyEmpty(Request):
    """`vMustReplyEmpty`: the stub must answer the empty packet."""


@dataclass(frozen=True, slots=True)
class StartNoAckMode(Request):
    """`QStartNoAckMode`: after the OK reply neither side sends acks."""


@dataclass(frozen=True, slots=True)
class EnableExtendedMode(Request):
    """`!`: extended-remote mode (gdb may restart with vRun)."""


@dataclass(frozen=True, slots=True)
class SetNonStop(Request):
    """`QNonStop:0|1`: all-stop (False) or non-stop (True) mode."""

    enabled: bool


@dataclass(frozen=True, slots=True)
class PassSignals(Request):
    """`QPassSignals:s1;s2…`: signals to deliver without stopping."""

    signals: frozenset[int]


@dataclass(frozen=True, slots=True)
class CatchSyscalls(Request):
    """`QCatchSyscalls:1[;sysno]…` / `QCatchSyscalls:0`: report the entry and return of
    these syscalls (of every syscall when enabled with none listed)."""

    enabled: bool
    syscalls: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class ProgramSignals(Request):
    """`QProgramSignals:s1;s2…`: signals gdb allows to reach the program."""

    signals: frozenset[int]


# -- state queries ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StopReason(Request):
    """`?`: why the target is stopped (answered with a stop reply)."""


@dataclass(frozen=True, slots=True)
class SetThread(Request):
    """`Hg<id>` / `Hc<id>`: select the thread for queries ('g') or resumption ('c')."""

    operation: str
    thread: ThreadId


@dataclass(frozen=True, slots=True)
class ThreadAlive(Request):
    """`T<id>`: whether a thread exists."""

    thread: ThreadId


@dataclass(frozen=True, slots=True)
class QueryCurrentThread(Request):
    """`qC`: the current thread."""


@dataclass(frozen=True, slots=True)
class ThreadInfoFirst(Request):
    """`qfThreadInfo`: first chunk of the thread list."""


@dataclass(frozen=True, slots=True)
class ThreadInfoNext(Request):
    """`qsThreadInfo`: next chunk of the thread list."""


@dataclass(frozen=True, slots=True)
class ThreadExtraInfo(Request):
    """`qThreadExtraInfo,<id>`: a printable description (the thread's name)."""

    thread: ThreadId


@dataclass(frozen=True, slots=True)
class GetTlsAddress(Request):
    """`qGetTLSAddr:<thread>,<offset>,<lm>`: the address of the thread-local variable at
    `offset` in the TLS block of the module whose link_map is at `load_module`."""

    thread: ThreadId
    offset: int
    load_module: int


@dataclass(frozen=True, slots=True)
class QueryAttached(Request):
    """`qAttached[:pid]`: whether the process was attached to (1) or created (0)."""

    pid: int | None


@dataclass(frozen=True, slots=True)
class QuerySymbol(Request):
    """`qSymbol::` (gdb ready to look up symbols) or `qSymbol:<value>:<hex name>`."""

    value: int | None
    name: str | None


@dataclass(frozen=True, slots=True)
class QueryOffsets(Request):
    """`qOffsets`: section relocation offsets."""


@dataclass(frozen=True, slots=True)
class QueryTraceStatus(Request):
    """`qTStatus`: tracepoint experiment status."""


@dataclass(frozen=True, slots=True)
class XferRead(Request):
    """`qXfer:<object>:read:<annex>:<offset>,<length>`."""

    object: str
    annex: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class XferWrite(Request):
    """`qXfer:<object>:write:<annex>:<offset>:<binary data>`."""

    object: str
    annex: str
    offset: int
    data: bytes


# -- registers and memory ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadRegisters(Request):
    """`g`: all registers of the query thread."""


@dataclass(frozen=True, slots=True)
class WriteRegisters(Request):
    """`G<hex>`: all registers, in the `g` layout, as raw hex text (may contain `xx`)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ReadRegister(Request):
    """`p<n>`: one register by gdb number."""

    number: int


@dataclass(frozen=True, slots=True)
class WriteRegister(Request):
    """`P<n>=<hex>`: write one register."""

    number: int
    value: bytes


@dataclass(frozen=True, slots=True)
class ReadMemory(Request):
    """`m<addr>,<len>` (hex reply) or `x<addr>,<len>` (binary reply, `binary` true)."""

    addr: int
    length: int
    binary: bool = False


@dataclass(frozen=True, slots=True)
class WriteMemory(Request):
    """`M<addr>,<len>:<hex>` or `X<addr>,<len>:<binary>`."""

    addr: int
    data: bytes


@dataclass(frozen=True, slots=True)
class SearchMemory(Request):
    """`qSearch:memory:<addr>;<length>;<binary pattern>`."""

    addr: int
    length: int
    pattern: bytes


@dataclass(frozen=True, slots=True)
class InsertBreakpoint(Request):
    """`Z<kind>,<addr>,<size>[;conditions]`."""

    kind: BreakpointKind
    addr: int
    size: int


@dataclass(frozen=True, slots=True)
class RemoveBreakpoint(Request):
    """`z<kind>,<addr>,<size>`."""

    kind: BreakpointKind
    addr: int
    size: int


# -- execution --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Continue(_Resume):
    """`c[addr]` / `C<sig>[;addr]`: continue the resume thread."""

    signal: int | None = None
    addr: int | None = None


@dataclass(frozen=True, slots=True)
class Step(_Resume):
    """`s[addr]` / `S<sig>[;addr]`: single-step the resume thread."""

    signal: int | None = None
    addr: int | None = None


@dataclass(frozen=True, slots=True)
class VContQuery(Request):
    """`vCont?`: which vCont actions the stub supports."""


@dataclass(frozen=True, slots=True)
class VContAction:
    """One `;action[:thread]` of a vCont packet.

    `action` is c, s, C, S, t or r; `thread` None means every thread not named by an
    earlier action; `step_range` is (start, end) for r."""

    action: str
    signal: int | None = None
    thread: ThreadId | None = None
    step_range: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class VCont(_Resume):
    """`vCont;a1[:t1];a2…`: per-thread resume actions, leftmost match wins."""

    actions: tuple[VContAction, ...]


@dataclass(frozen=True, slots=True)
class ReverseContinue(_Resume):
    """`bc`: run backwards to the previous stop."""


@dataclass(frozen=True, slots=True)
class ReverseStep(_Resume):
    """`bs`: step back one instruction."""


@dataclass(frozen=True, slots=True)
class Run(_Resume):
    """`vRun;<hex file>;<hex arg>…`: restart (the reply is a stop reply)."""

    filename: str
    arguments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KillProcess(Request):
    """`vKill;<pid>`."""

    pid: int


@dataclass(frozen=True, slots=True)
class Kill(Request):
    """`k`: gdb does not wait for an answer."""

    expects_reply = False


@dataclass(frozen=True, slots=True)
class Detach(Request):
    """`D` / `D;<pid>`."""

    pid: int | None


# -- monitor commands and host files ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonitorCommand(Request):
    """`qRcmd,<hex text>` (`monitor …`) or rr's `qRRCmd:<name>:<tid>[:<hex arg>…]`.

    For qRRCmd, `text` is the name followed by the decoded arguments, space-separated,
    and `thread` is gdb's selected tid (None when gdb sent -1)."""

    text: str
    thread: int | None = None
    rr_form: bool = False


@dataclass(frozen=True, slots=True)
class FileSetFs(Request):
    """`vFile:setfs:<pid>`: later paths are in process `pid`'s filesystem (0 = the stub's)."""

    pid: int


@dataclass(frozen=True, slots=True)
class FileOpen(Request):
    """`vFile:open:<hex path>,<flags>,<mode>` with gdb's flag values (RDONLY = 0)."""

    path: str
    flags: int
    mode: int


@dataclass(frozen=True, slots=True)
class FilePread(Request):
    """`vFile:pread:<fd>,<count>,<offset>`."""

    fd: int
    count: int
    offset: int


@dataclass(frozen=True, slots=True)
class FileClose(Request):
    """`vFile:close:<fd>`."""

    fd: int


@dataclass(frozen=True, slots=True)
class FileFstat(Request):
    """`vFile:fstat:<fd>`."""

    fd: int


# -- packets the stub cannot use ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unknown(Request):
    """A packet this stub does not implement; the answer is the empty packet."""

    packet: bytes


@dataclass(frozen=True, slots=True)
class Malformed(Request):
    """A known packet whose arguments do not parse; the answer is an `E01` error."""

    packet: bytes
    reason: str
