"""Typed replies: what the stub sends, as small immutable classes that know their payload.

`Connection.send` frames a reply; the payload depends on the `Dialect` negotiated in
qSupported (thread ids are `pPID.TID` only with multiprocess, and `swbreak`/`hwbreak`
stop reasons only when gdb offered them). Signal numbers are in gdb's numbering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rrgdb.gdb._wire import escape
from rrgdb.gdb.requests import ThreadId


@dataclass(frozen=True, slots=True)
class Dialect:
    """The qSupported features both sides agreed on that change how replies are spelled."""

    multiprocess: bool = False
    swbreak: bool = False
    hwbreak: bool = False
    exec_events: bool = False


def format_thread_id(thread: ThreadId, dialect: Dialect) -> bytes:
    """`pPID.TID` with multiprocess, else `TID`; -1 is written as `-1`."""
    tid = _thread_number(thread.tid)
    if dialect.multiprocess and thread.pid is not None:
        return b"p%b.%b" % (_thread_number(thread.pid), tid)
    return tid


def _thread_number(number: int) -> bytes:
    return b"-1" if number < 0 else b"%x" % number


class Reply:
    """Base of every reply; `completes_request` is False for packets sent while running."""

    __slots__ = ()
    completes_request: ClassVar[bool] = True

    def encode(self, dialect: Dialect) -> bytes:
        """The packet payload, escaped, without framing."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Raw(Reply):
    """A fixed payload sent verbatim (`OK`, `1`, `vCont;c;C;s;S`, a `g` register dump)."""

    payload: bytes

    def encode(self, dialect: Dialect) -> bytes:
        return self.payload


OK = Raw(b"OK")
EMPTY = Raw(b"")  # "this packet is not supported"


@dataclass(frozen=True, slots=True)
class Error(Reply):
    """`Enn`: the request failed."""

    code: int = 1

    def encode(self, dialect: Dialect) -> bytes:
        return b"E%02x" % (self.code & 0xFF)


@dataclass(frozen=True, slots=True)
class Hex(Reply):
    """Bytes as two lowercase hex digits each (`m` replies, monitor output)."""

    data: bytes

    def encode(self, dialect: Dialect) -> bytes:
        return self.data.hex().encode()


@dataclass(frozen=True, slots=True)
class BinaryMemory(Reply):
    """`b<escaped bytes>`: the reply to an `x` memory read."""

    data: bytes

    def encode(self, dialect: Dialect) -> bytes:
        return b"b" + escape(self.data)


@dataclass(frozen=True, slots=True)
class Supported(Reply):
    """The qSupported reply: `PacketSize=…;feature+;…`."""

    features: tuple[str, ...]

    def encode(self, dialect: Dialect) -> bytes:
        return ";".join(self.features).encode()

    def offers(self, feature: str) -> bool:
        """Whether the stub lists `feature+`."""
        return f"{feature}+" in self.features


# -- stop replies ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BreakpointHit:
    """Stop reason: a software (`swbreak`) or hardware (`hwbreak`) breakpoint."""

    hardware: bool = False

    def encode(self, dialect: Dialect) -> bytes:
        if self.hardware:
            return b"hwbreak:;" if dialect.hwbreak else b""
        return b"swbreak:;" if dialect.swbreak else b""


@dataclass(frozen=True, slots=True)
class WatchpointHit:
    """Stop reason: a data watchpoint; `kind` is watch, rwatch or awatch."""

    addr: int
    kind: str = "watch"

    def encode(self, dialect: Dialect) -> bytes:
        return b"%b:%x;" % (self.kind.encode(), self.addr)


@dataclass(frozen=True, slots=True)
class HistoryBoundary:
    """Stop reason: `replaylog:begin` or `replaylog:end` (no more execution history)."""

    at_beginning: bool

    def encode(self, dialect: Dialect) -> bytes:
        return b"replaylog:begin;" if self.at_beginning else b"replaylog:end;"


@dataclass(frozen=True, slots=True)
class ExecHit:
    """Stop reason: `exec:<hex path>` (only when gdb accepts exec-events)."""

    path: str

    def encode(self, dialect: Dialect) -> bytes:
        return b"exec:%b;" % self.path.encode().hex().encode() if dialect.exec_events else b""


@dataclass(frozen=True, slots=True)
class SyscallHit:
    """Stop reason: `syscall_entry:<nr>` or `syscall_return:<nr>` (a caught syscall)."""

    number: int
    returning: bool

    def encode(self, dialect: Dialect) -> bytes:
        name = b"syscall_return" if self.returning else b"syscall_entry"
        return b"%b:%x;" % (name, self.number)


StopReasonField = BreakpointHit | WatchpointHit | HistoryBoundary | ExecHit | SyscallHit


@dataclass(frozen=True, slots=True)
class StopReply(Reply):
    """`T<sig>thread:<id>;<reason>`: the target stopped with gdb signal `signal`."""

    signal: int
    thread: ThreadId | None = None
    reason: StopReasonField | None = None

    def encode(self, dialect: Dialect) -> bytes:
        payload = b"T%02x" % self.signal
        if self.thread is not None:
            payload += b"thread:%b;" % format_thread_id(self.thread, dialect)
        if self.reason is not None:
            payload += self.reason.encode(dialect)
        return payload


@dataclass(frozen=True, slots=True)
class Exited(Reply):
    """`W<status>[;process:<pid>]`: the process exited."""

    status: int
    pid: int | None = None

    def encode(self, dialect: Dialect) -> bytes:
        return b"W%02x" % (self.status & 0xFF) + _process_suffix(self.pid, dialect)


@dataclass(frozen=True, slots=True)
class Terminated(Reply):
    """`X<sig>[;process:<pid>]`: the process was killed by gdb signal `signal`."""

    signal: int
    pid: int | None = None

    def encode(self, dialect: Dialect) -> bytes:
        return b"X%02x" % self.signal + _process_suffix(self.pid, dialect)


def _process_suffix(pid: int | None, dialect: Dialect) -> bytes:
    return b";process:%x" % pid if dialect.multiprocess and pid is not None else b""


@dataclass(frozen=True, slots=True)
class ConsoleOutput(Reply):
    """`O<hex text>`: program or monitor output, sent before the final reply."""

    completes_request: ClassVar[bool] = False
    text: bytes

    def encode(self, dialect: Dialect) -> bytes:
        return b"O" + self.text.hex().encode()


# -- thread queries -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThreadList(Reply):
    """`m<id>,<id>…` for a chunk of the thread list, `l` when there are no more."""

    threads: tuple[ThreadId, ...]

    def encode(self, dialect: Dialect) -> bytes:
        if not self.threads:
            return b"l"
        return b"m" + b",".join(format_thread_id(t, dialect) for t in self.threads)


@dataclass(frozen=True, slots=True)
class CurrentThread(Reply):
    """`QC<id>`: the reply to qC."""

    thread: ThreadId

    def encode(self, dialect: Dialect) -> bytes:
        return b"QC" + format_thread_id(self.thread, dialect)


# -- data transfer --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class XferChunk(Reply):
    """A qXfer read reply: `m<data>` when more follows, `l<data>` for the last chunk."""

    data: bytes
    last: bool

    def encode(self, dialect: Dialect) -> bytes:
        return (b"l" if self.last else b"m") + escape(self.data)


def xfer_window(document: bytes, offset: int, length: int) -> XferChunk | Error:
    """The chunk of `document` a `qXfer:…:read:…:offset,length` asks for."""
    if offset > len(document):
        return Error(1)
    chunk = document[offset : offset + length]
    return XferChunk(chunk, last=offset + len(chunk) >= len(document))


@dataclass(frozen=True, slots=True)
class FileResult(Reply):
    """`F<result>[,<errno>][;<binary data>]`: the reply to a vFile operation."""

    result: int
    errno: int | None = None
    data: bytes | None = None

    def encode(self, dialect: Dialect) -> bytes:
        sign = b"-" if self.result < 0 else b""
        payload = b"F%b%x" % (sign, abs(self.result))
        if self.errno is not None:
            payload += b",%x" % self.errno
        if self.data is not None:
            payload += b";" + escape(self.data)
        return payload


@dataclass(frozen=True, slots=True)
class Address(Reply):
    """An address in hex, without leading zeros (the qGetTLSAddr reply)."""

    addr: int

    def encode(self, dialect: Dialect) -> bytes:
        return b"%x" % self.addr


@dataclass(frozen=True, slots=True)
class SearchResult(Reply):
    """`1,<addr>` when qSearch:memory found the pattern, `0` when not."""

    addr: int | None

    def encode(self, dialect: Dialect) -> bytes:
        return b"0" if self.addr is None else b"1,%x" % self.addr
