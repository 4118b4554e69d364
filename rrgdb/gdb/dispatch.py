"""The dispatcher: answers typed requests by calling a DebugTarget, with no I/O.

It holds the debugging state of one gdb connection (selected threads, the last stop,
open vFile descriptors) and keeps gdb's conventions out of the engine: thread-id
wildcards, gdb signal numbers, the SIGKILL stop at the end of the recording, the
errno values of Host I/O. One handler per request type, in a table."""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable
from typing import Any, BinaryIO
from xml.sax.saxutils import escape as xml_escape

from rrgdb.gdb import replies as rp
from rrgdb.gdb import requests as rq
from rrgdb.gdb.protocol import PACKET_SIZE
from rrgdb.gdb.siginfo import stop_siginfo
from rrgdb.gdb.signals import to_gdb_signal
from rrgdb.gdb.target import (
    BreakpointStop,
    DebugTarget,
    Direction,
    EndOfHistory,
    ExecStop,
    Interrupted,
    ProcessExited,
    ProcessKilled,
    RegisterState,
    ResumeAction,
    SignalStop,
    StepDone,
    StopEvent,
    SyscallStop,
    WatchpointStop,
)
from rrgdb.gdb.target_description import USER_REGS_FIELDS, RegisterLayout

SIGTRAP = 5
SIGKILL = 9

# gdb's Host I/O errno values (File-I/O "errno values"); anything else is EUNKNOWN.
_GDB_ERRNO = {
    errno.EPERM: 1, errno.ENOENT: 2, errno.EINTR: 4, errno.EBADF: 9, errno.EACCES: 13,
    errno.EFAULT: 14, errno.EBUSY: 16, errno.EEXIST: 17, errno.ENODEV: 19,
    errno.ENOTDIR: 20, errno.EISDIR: 21, errno.EINVAL: 22, errno.ENFILE: 23,
    errno.EMFILE: 24, errno.EFBIG: 27, errno.ENOSPC: 28, errno.ESPIPE: 29,
    errno.EROFS: 30, errno.ENAMETOOLONG: 91,
}  # fmt: skip
_GDB_EUNKNOWN = 9999
_GDB_O_ACCMODE = 0x3  # gdb's open flags: RDONLY 0, WRONLY 1, RDWR 2, CREAT 0x200, …
_GDB_O_WRITE_FLAGS = 0x8 | 0x200 | 0x400 | 0x800  # APPEND, CREAT, TRUNC, EXCL
_GDB_S_IFREG = 0o100000

_WATCH_NAMES = {
    rq.BreakpointKind.WRITE_WATCH: "watch",
    rq.BreakpointKind.READ_WATCH: "rwatch",
    rq.BreakpointKind.ACCESS_WATCH: "awatch",
}
_VCONT_ACTIONS = b"vCont;c;C;s;S"
_MAX_MEMORY_READ = PACKET_SIZE // 2  # two hex digits per byte
_RIP = slice(USER_REGS_FIELDS.index("rip") * 8, USER_REGS_FIELDS.index("rip") * 8 + 8)


def supported_features(reverse: bool) -> tuple[str, ...]:
    """What this stub advertises in its qSupported reply."""
    features = (
        f"PacketSize={PACKET_SIZE:x}", "QStartNoAckMode+", "qXfer:features:read+",
        "qXfer:auxv:read+", "qXfer:exec-file:read+", "qXfer:threads:read+",
        "qXfer:siginfo:read+",
        "multiprocess+", "swbreak+", "hwbreak+", "vContSupported+", "QPassSignals+",
        "exec-events+", "QCatchSyscalls+",
    )  # fmt: skip
    return features + (("ReverseContinue+", "ReverseStep+") if reverse else ())


class Dispatcher:
    """Turns the requests of one gdb connection into DebugTarget calls and replies.

    `handle` returns the reply, or None for requests gdb does not wait on; after a
    detach or kill `closing` is true and the connection should end."""

    def __init__(self, target: DebugTarget) -> None:
        self.target = target
        self.closing = False
        self._layout = RegisterLayout(target.has_avx)
        self._current = target.current_thread()
        self._last_stop: rp.Reply = rp.StopReply(0, self._thread_id(self._current))
        self._last_event: StopEvent | None = None  # None: the initial stop, no signal
        # Selected threads (H packets); None means "any", i.e. the thread of the last stop.
        self._query_thread: int | None = None
        self._resume_thread: int | None = None
        self._files: dict[int, BinaryIO] = {}
        self._handlers: dict[type, Callable[[Any], rp.Reply | None]] = {
            rq.QuerySupported: self._supported,
            rq.MustReplyEmpty: lambda _: rp.EMPTY,
            rq.StartNoAckMode: lambda _: rp.OK,
            rq.EnableExtendedMode: lambda _: rp.OK,
            rq.SetNonStop: lambda r: rp.Error() if r.enabled else rp.OK,
            # Replay follows the recording: signals are never injected, so these are moot.
            rq.PassSignals: lambda _: rp.OK,
            rq.ProgramSignals: lambda _: rp.OK,
            rq.CatchSyscalls: self._catch_syscalls,
            rq.StopReason: lambda _: self._last_stop,
            rq.SetThread: self._set_thread,
            rq.ThreadAlive: lambda r: rp.OK if self._resolve(r.thread) else rp.Error(),
            rq.QueryCurrentThread: lambda _: rp.CurrentThread(self._thread_id(self._current)),
            rq.ThreadInfoFirst: lambda _: rp.ThreadList(
                tuple(self._thread_id(t) for t in self.target.threads())
            ),
            rq.ThreadInfoNext: lambda _: rp.ThreadList(()),
            rq.QueryAttached: lambda _: rp.Raw(b"1"),  # so quitting gdb detaches
            rq.QuerySymbol: lambda _: rp.OK,
            rq.GetTlsAddress: self._tls_address,
            rq.XferRead: self._xfer_read,
            rq.XferWrite: lambda _: rp.Error(),
            rq.ReadRegisters: self._read_registers,
            rq.ReadRegister: self._read_register,
            rq.WriteRegisters: self._write_registers,
            rq.WriteRegister: self._write_register,
            rq.ReadMemory: self._read_memory,
            rq.WriteMemory: self._write_memory,
            rq.SearchMemory: lambda r: rp.SearchResult(
                self.target.search_memory(r.addr, r.length, r.pattern)
            ),
            rq.InsertBreakpoint: self._insert_breakpoint,
            rq.RemoveBreakpoint: self._remove_breakpoint,
            rq.VContQuery: lambda _: rp.Raw(_VCONT_ACTIONS),
            rq.Continue: lambda r: self._resume(Direction.FORWARD, ResumeAction.CONTINUE),
            rq.Step: lambda r: self._resume(Direction.FORWARD, ResumeAction.STEP),
            rq.VCont: self._vcont,
            rq.ReverseContinue: lambda _: self._reverse(ResumeAction.CONTINUE),
            rq.ReverseStep: lambda _: self._reverse(ResumeAction.STEP),
            rq.Run: self._run,
            rq.KillProcess: lambda _: rp.OK,  # a replay is not killed; vRun restarts it
            rq.Kill: self._kill,
            rq.Detach: self._detach,
            rq.MonitorCommand: self._monitor,
            rq.FileSetFs: lambda _: rp.FileResult(0),
            rq.FileOpen: self._file_open,
            rq.FilePread: self._file_pread,
            rq.FileClose: self._file_close,
            rq.FileFstat: self._file_fstat,
            rq.Malformed: lambda _: rp.Error(),
        }

    def handle(self, request: rq.Request) -> rp.Reply | None:
        """The reply to `request` (the empty packet for anything unsupported)."""
        if not _in_address_space(request):
            return rp.Error()  # the engine's 64-bit calls cannot take such numbers
        handler = self._handlers.get(type(request))
        return rp.EMPTY if handler is None else handler(request)

    def close(self) -> None:
        """Close open files and the target."""
        for file in self._files.values():
            file.close()
        self._files.clear()
        self.target.close()

    # -- threads -------------------------------------------------------------------------

    def _thread_id(self, tid: int) -> rq.ThreadId:
        return rq.ThreadId(self.target.pid, tid)

    def _resolve(self, thread: rq.ThreadId) -> int | None:
        """The tid a (possibly wildcard) thread id selects, or None if none matches."""
        threads = self.target.threads()
        if thread.tid in (rq.ALL_THREADS, rq.ANY_THREAD):
            if not thread.matches(self.target.pid, self._current) or not threads:
                return None
            return self._current if self._current in threads else threads[0]
        known = thread.tid in threads and thread.matches(self.target.pid, thread.tid)
        return thread.tid if known else None

    def _set_thread(self, request: rq.SetThread) -> rp.Reply:
        wildcard = request.thread.tid in (rq.ALL_THREADS, rq.ANY_THREAD)
        tid = self._resolve(request.thread)
        if tid is None and not wildcard:
            return rp.Error()
        selected = None if wildcard else tid
        if request.operation == "g":
            self._query_thread = selected
        else:
            self._resume_thread = selected
        return rp.OK

    def _query_tid(self) -> int:
        return self._current if self._query_thread is None else self._query_thread

    # -- registers and memory --------------------------------------------------------------

    def _registers(self) -> RegisterState:
        return self.target.read_registers(self._query_tid())

    def _read_registers(self, _: rq.ReadRegisters) -> rp.Reply:
        state = self._registers()
        return rp.Raw(self._layout.encode_g(state.user_regs, state.xsave))

    def _read_register(self, request: rq.ReadRegister) -> rp.Reply:
        state = self._registers()
        value = self._layout.encode_p(request.number, state.user_regs, state.xsave)
        return rp.Error() if value is None else rp.Raw(value)

    def _write_registers(self, request: rq.WriteRegisters) -> rp.Reply:
        state = self._registers()
        new = RegisterState(*self._layout.decode_g(request.data, state.user_regs, state.xsave))
        # rr's rule: gdb treats a failed register write as fatal, so refuse with "unsupported".
        return rp.OK if self.target.write_registers(self._query_tid(), new) else rp.EMPTY

    def _write_register(self, request: rq.WriteRegister) -> rp.Reply:
        register = self._layout.register(request.number)
        if register is None or len(request.value) != register.size:
            return rp.Error()
        state = self._registers()
        new = RegisterState(
            *self._layout.decode_p(request.number, request.value, state.user_regs, state.xsave)
        )
        if self.target.write_registers(self._query_tid(), new):
            return rp.OK
        # gdb writes orig_rax = -1 before a restart; ignoring that is harmless.
        return rp.OK if register.name == "orig_rax" else rp.EMPTY

    def _read_memory(self, request: rq.ReadMemory) -> rp.Reply:
        if request.length == 0:
            return rp.BinaryMemory(b"") if request.binary else rp.OK
        data = self.target.read_memory(request.addr, min(request.length, _MAX_MEMORY_READ))
        if not data:
            return rp.Error()
        return rp.BinaryMemory(data) if request.binary else rp.Hex(data)

    def _write_memory(self, request: rq.WriteMemory) -> rp.Reply:
        if not request.data or self.target.write_memory(request.addr, request.data):
            return rp.OK
        # Front ends rewrite bytes that are already there (CLion and .interp); let them.
        unchanged = self.target.read_memory(request.addr, len(request.data)) == request.data
        return rp.OK if unchanged else rp.Error()

    def _insert_breakpoint(self, request: rq.InsertBreakpoint) -> rp.Reply:
        if request.kind is rq.BreakpointKind.READ_WATCH:
            # x86 cannot watch reads alone. As from gdbserver: unsupported, so gdb inserts
            # an access watchpoint and tells a read (same value) from a write itself.
            return rp.EMPTY
        ok = self.target.set_breakpoint(request.kind, request.addr, request.size)
        return rp.OK if ok else rp.Error()

    def _remove_breakpoint(self, request: rq.RemoveBreakpoint) -> rp.Reply:
        self.target.clear_breakpoint(request.kind, request.addr, request.size)
        return rp.OK

    # -- execution -----------------------------------------------------------------------

    def _resume(
        self, direction: Direction, action: ResumeAction, tid: int | None = None
    ) -> rp.Reply:
        if not self.target.threads():
            return self._last_stop  # exited: keep reporting the exit
        if tid is None:
            tid = self._current if self._resume_thread is None else self._resume_thread
        return self._stopped(self.target.resume(direction, action, tid))

    def _reverse(self, action: ResumeAction) -> rp.Reply:
        if not self.target.reverse_execution:
            return rp.EMPTY
        return self._resume(Direction.REVERSE, action)

    def _vcont(self, request: rq.VCont) -> rp.Reply:
        # One replay thread runs at a time: step if gdb steps some thread, else continue.
        # Signals to deliver are ignored, since the replay follows the recording.
        for action in request.actions:
            if action.action in ("s", "S", "r"):
                tid = None if action.thread is None else self._resolve(action.thread)
                return self._resume(Direction.FORWARD, ResumeAction.STEP, tid)
        if any(action.action in ("c", "C") for action in request.actions):
            return self._resume(Direction.FORWARD, ResumeAction.CONTINUE)
        return rp.Error()

    def _run(self, request: rq.Run) -> rp.Reply:
        if request.filename:
            return rp.Error()  # a replay cannot run another program
        for file in self._files.values():
            file.close()
        self._files.clear()
        argument = request.arguments[0] if request.arguments else ""
        return self._stopped(self.target.restart(argument))

    def _stopped(self, stop: StopEvent) -> rp.Reply:
        """Record a stop, and the stop reply that reports it."""
        self._current = stop.thread
        self._query_thread = self._resume_thread = None
        self._last_event = stop
        self._last_stop = self._stop_reply(stop)
        return self._last_stop

    def _stop_reply(self, stop: StopEvent) -> rp.Reply:
        thread = self._thread_id(stop.thread)
        match stop.reason:
            case BreakpointStop(hardware=hardware):
                return rp.StopReply(SIGTRAP, thread, rp.BreakpointHit(hardware))
            case WatchpointStop(kind=kind, addr=addr):
                return rp.StopReply(SIGTRAP, thread, rp.WatchpointHit(addr, _WATCH_NAMES[kind]))
            case StepDone():
                return rp.StopReply(SIGTRAP, thread)
            case SignalStop(signo=signo):
                return rp.StopReply(to_gdb_signal(signo), thread)
            case ExecStop(path=path):
                return rp.StopReply(SIGTRAP, thread, rp.ExecHit(path))
            case SyscallStop(number=number, returning=returning):
                return rp.StopReply(SIGTRAP, thread, rp.SyscallHit(number, returning))
            case EndOfHistory(at_beginning=True):
                return rp.StopReply(0, thread, rp.HistoryBoundary(at_beginning=True))
            case EndOfHistory(at_beginning=False):
                # rr's convention: a SIGKILL stop just before the exit keeps the process
                # (and reverse execution) alive in gdb; the next resume reports the exit.
                return rp.StopReply(SIGKILL, thread)
            case Interrupted():
                return rp.StopReply(0, thread)
            case ProcessExited(status=status):
                return rp.Exited(status, self.target.pid)
            case ProcessKilled(signo=signo):
                return rp.Terminated(to_gdb_signal(signo), self.target.pid)
        raise AssertionError(f"unknown stop reason {stop.reason!r}")

    def _catch_syscalls(self, request: rq.CatchSyscalls) -> rp.Reply:
        self.target.catch_syscalls(request.syscalls if request.enabled else None)
        return rp.OK

    def _kill(self, _: rq.Kill) -> None:
        self.closing = True

    def _detach(self, _: rq.Detach) -> rp.Reply:
        self.closing = True
        return rp.OK

    # -- queries -----------------------------------------------------------------------

    def _supported(self, _: rq.QuerySupported) -> rp.Reply:
        return rp.Supported(supported_features(self.target.reverse_execution))

    def _xfer_read(self, request: rq.XferRead) -> rp.Reply:
        match request.object:
            case "features":
                document = self._layout.feature_documents().get(request.annex)
                if document is None:
                    return rp.Error()
            case "auxv":
                document = self.target.auxv()
            case "exec-file":
                document = os.fsencode(self.target.exec_file())
            case "threads":
                document = self._threads_document()
            case "siginfo":
                siginfo = self._siginfo()
                if siginfo is None or request.annex:
                    return rp.Error()
                document = siginfo
            case _:
                return rp.EMPTY
        return rp.xfer_window(document, request.offset, request.length)

    def _siginfo(self) -> bytes | None:
        """The siginfo of the query thread's stop, if that thread is the one whose stop
        gdb is at and a signal (or a trap) stopped it."""
        stop = self._last_event
        if stop is None or stop.thread != self._query_tid():
            return None
        pc = int.from_bytes(self._registers().user_regs[_RIP], "little")
        return stop_siginfo(stop.reason, pc)

    def _tls_address(self, request: rq.GetTlsAddress) -> rp.Reply:
        tid = self._resolve(request.thread)
        if tid is None:
            return rp.Error()
        address = self.target.tls_address(tid, request.offset, request.load_module)
        return rp.Error() if address is None else rp.Address(address)

    def _threads_document(self) -> bytes:
        dialect = rp.Dialect(multiprocess=True)
        lines = [
            b'<thread id="%b" name="%b"/>' % (
                rp.format_thread_id(self._thread_id(tid), dialect),
                xml_escape(self.target.thread_name(tid), {'"': "&quot;"}).encode())
            for tid in self.target.threads()
        ]
        return b"<threads>\n" + b"".join(line + b"\n" for line in lines) + b"</threads>\n"

    def _monitor(self, request: rq.MonitorCommand) -> rp.Reply:
        output = self.target.monitor(request.text)
        if not output and not request.rr_form:
            return rp.OK  # an empty hex reply would read as "qRcmd unsupported"
        return rp.Hex(output.encode())

    # -- Host I/O (vFile) -------------------------------------------------------------

    def _file_open(self, request: rq.FileOpen) -> rp.Reply:
        if request.flags & (_GDB_O_ACCMODE | _GDB_O_WRITE_FLAGS):
            return _file_error(errno.EACCES)
        if "\0" in request.path:
            return _file_error(errno.ENOENT)  # no file has such a name
        try:
            file = self.target.open_file(request.path)
        except OSError as error:
            return _file_error(error.errno)
        fd = next(n for n in range(len(self._files) + 1) if n not in self._files)
        self._files[fd] = file
        return rp.FileResult(fd)

    def _file_pread(self, request: rq.FilePread) -> rp.Reply:
        file = self._files.get(request.fd)
        if file is None:
            return _file_error(errno.EBADF)
        if request.offset >= _ADDRESS_LIMIT:
            return _file_error(errno.EINVAL)
        try:
            file.seek(request.offset)
            data = file.read(min(request.count, PACKET_SIZE))
        except OSError as error:
            return _file_error(error.errno)
        return rp.FileResult(len(data), data=data)

    def _file_close(self, request: rq.FileClose) -> rp.Reply:
        file = self._files.pop(request.fd, None)
        if file is None:
            return _file_error(errno.EBADF)
        file.close()
        return rp.FileResult(0)

    def _file_fstat(self, request: rq.FileFstat) -> rp.Reply:
        file = self._files.get(request.fd)
        if file is None:
            return _file_error(errno.EBADF)
        size = file.seek(0, os.SEEK_END)
        # gdb's struct stat: big-endian; dev ino mode nlink uid gid rdev (u32),
        # size blksize blocks (u64), atime mtime ctime (u32).
        stat = struct.pack(">7I3Q3I", 0, 0, _GDB_S_IFREG | 0o444, 1, 0, 0, 0, size, 4096,
                           (size + 511) // 512, 0, 0, 0)  # fmt: skip
        return rp.FileResult(len(stat), data=stat)


_ADDRESS_LIMIT = 1 << 64


def _in_address_space(request: rq.Request) -> bool:
    """Whether the request's address and length (if it has them) fit in 64 bits."""
    addr = getattr(request, "addr", None)
    length = getattr(request, "length", None)
    return (addr is None or 0 <= addr < _ADDRESS_LIMIT) and (
        length is None or 0 <= length < _ADDRESS_LIMIT
    )


def _file_error(number: int | None) -> rp.Reply:
    return rp.FileResult(-1, errno=_GDB_ERRNO.get(number or 0, _GDB_EUNKNOWN))
