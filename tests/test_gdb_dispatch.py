"""The dispatcher, unit-tested against a small in-memory DebugTarget."""

from __future__ import annotations

import errno
import io
import struct
import threading
from typing import BinaryIO

import pytest
import trio

from rrgdb.gdb import replies as rp
from rrgdb.gdb import requests as rq
from rrgdb.gdb._readers import parse_packet
from rrgdb.gdb.dispatch import Dispatcher, supported_features
from rrgdb.gdb.protocol import Connection
from rrgdb.gdb.requests import BreakpointKind, ThreadId
from rrgdb.gdb.server import EngineThread
from rrgdb.gdb.target import (
    BreakpointStop,
    Direction,
    EndOfHistory,
    Interrupted,
    ProcessExited,
    ProcessKilled,
    RegisterState,
    ResumeAction,
    SignalStop,
    StepDone,
    StopEvent,
    StopReason,
    SyscallStop,
    WatchpointStop,
)
from rrgdb.gdb.target_description import USER_REGS_FIELDS, RegisterLayout

PID, TID, TID2 = 0x4D2, 0x4D2, 0x4D5
MEMORY_BASE = 0x10000
TLS_MODULE = 0x7FFFF7FFE2E0  # a link_map address
FILES = {"/bin/prog": b"\x7fELF" + bytes(range(256)) * 4, "/proc/1234/maps": b"maps\n"}


def _user_regs(rip: int) -> bytes:
    """Field i holds i, except rip."""
    return struct.pack("<27Q", *(rip if n == "rip" else i for i, n in enumerate(USER_REGS_FIELDS)))


class FakeTarget:
    """A two-thread process with 4 KiB of memory and scripted stops."""

    has_avx = False
    reverse_execution = True
    pid = PID

    def __init__(self) -> None:
        self.memory = bytearray(range(256)) * 16
        self.live_threads = [TID, TID2]
        self.registers = {
            tid: RegisterState(_user_regs(tid), bytes(512)) for tid in self.live_threads
        }
        self.writable = False
        self.breakpoints: set[tuple[BreakpointKind, int, int]] = set()
        self.stops: list[StopReason] = []
        self.resumes: list[tuple[Direction, ResumeAction, int]] = []
        self.restarts: list[str] = []
        self.closed = False
        self.tls_blocks = {(TID, TLS_MODULE): 0x7000, (TID2, TLS_MODULE): 0x9000}
        self.caught: list[frozenset[int] | None] = []

    def threads(self) -> list[int]:
        return list(self.live_threads)

    def thread_name(self, tid: int) -> str:
        return f"worker<{tid}>"

    def current_thread(self) -> int:
        return TID

    def read_registers(self, tid: int) -> RegisterState:
        return self.registers[tid]

    def write_registers(self, tid: int, state: RegisterState) -> bool:
        if self.writable:
            self.registers[tid] = state
        return self.writable

    def read_memory(self, addr: int, length: int) -> bytes:
        start = addr - MEMORY_BASE
        if not 0 <= start < len(self.memory):
            return b""
        return bytes(self.memory[start : start + length])

    def write_memory(self, addr: int, data: bytes) -> bool:
        if self.writable:
            start = addr - MEMORY_BASE
            self.memory[start : start + len(data)] = data
        return self.writable

    def set_breakpoint(self, kind: BreakpointKind, addr: int, length: int) -> bool:
        if kind >= BreakpointKind.WRITE_WATCH and length not in (1, 2, 4, 8):
            return False
        self.breakpoints.add((kind, addr, length))
        return True

    def clear_breakpoint(self, kind: BreakpointKind, addr: int, length: int) -> None:
        self.breakpoints.discard((kind, addr, length))

    def resume(self, direction: Direction, action: ResumeAction, tid: int) -> StopEvent:
        self.resumes.append((direction, action, tid))
        reason = self.stops.pop(0) if self.stops else StepDone()
        if isinstance(reason, ProcessExited | ProcessKilled):
            self.live_threads = []
        return StopEvent(reason, TID2 if isinstance(reason, SignalStop) else tid)

    def interrupt(self) -> None:
        self.stops.insert(0, Interrupted())

    def catch_syscalls(self, syscalls: frozenset[int] | None) -> None:
        self.caught.append(syscalls)

    def restart(self, argument: str) -> StopEvent:
        self.restarts.append(argument)
        self.live_threads = [TID, TID2]
        return StopEvent(SignalStop(5), TID)

    def monitor(self, command: str) -> str:
        return "Current event: 42\n" if command == "when" else ""

    def auxv(self) -> bytes:
        return struct.pack("<4Q", 6, 4096, 0, 0)

    def exec_file(self) -> str:
        return "/bin/prog"

    def open_file(self, path: str) -> BinaryIO:
        if path not in FILES:
            raise FileNotFoundError(errno.ENOENT, "no such file in the trace", path)
        return io.BytesIO(FILES[path])

    def search_memory(self, addr: int, length: int, pattern: bytes) -> int | None:
        found = self.read_memory(addr, length).find(pattern)
        return None if found < 0 else addr + found

    def tls_address(self, tid: int, offset: int, load_module: int) -> int | None:
        block = self.tls_blocks.get((tid, load_module))
        return None if block is None else block + offset

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def target() -> FakeTarget:
    return FakeTarget()


@pytest.fixture
def dispatcher(target: FakeTarget) -> Dispatcher:
    return Dispatcher(target)


def ask(dispatcher: Dispatcher, packet: bytes, dialect: rp.Dialect | None = None) -> bytes | None:
    """The reply payload to one packet body, as gdb would see it (multiprocess)."""
    reply = dispatcher.handle(parse_packet(packet))
    if reply is None:
        return None
    return reply.encode(dialect or rp.Dialect(multiprocess=True, swbreak=True, hwbreak=True))


# -- setup and queries -------------------------------------------------------------------


def test_qsupported_advertises_what_gdb_13_needs(dispatcher: Dispatcher) -> None:
    reply = ask(dispatcher, b"qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386")
    features = reply.decode().split(";")
    assert features[0] == "PacketSize=100000"
    expected = (
        "QStartNoAckMode+ qXfer:features:read+ qXfer:auxv:read+ qXfer:exec-file:read+ "
        "qXfer:threads:read+ qXfer:siginfo:read+ vContSupported+ multiprocess+ swbreak+ "
        "hwbreak+ "
        "ReverseContinue+ ReverseStep+"
    )
    assert set(expected.split()) <= set(features)
    assert "ReverseStep+" not in supported_features(reverse=False)


@pytest.mark.parametrize(
    ("packet", "reply"),
    [
        (b"vMustReplyEmpty", b""),
        (b"QStartNoAckMode", b"OK"),
        (b"!", b"OK"),
        (b"QNonStop:0", b"OK"),
        (b"QNonStop:1", b"E01"),
        (b"QPassSignals:e;10;14;", b"OK"),
        (b"QProgramSignals:", b"OK"),
        (b"qTStatus", b""),
        (b"qOffsets", b""),
        (b"qSymbol::", b"OK"),
        (b"qAttached:4d2", b"1"),
        (b"qAttached", b"1"),
        (b"vCont?", b"vCont;c;C;s;S"),
        (b"qCRC:0,10", b""),
        (b"jThreadsInfo", b""),
        (b"m1,", b"E01"),
        (b"qXfer:siginfo:read::0,80", b"E01"),  # the initial stop: no signal
        (b"qXfer:siginfo:write::0:abc", b"E01"),
        (b"qXfer:features:read:nope.xml:0,1000", b"E01"),
        (b"vKill;4d2", b"OK"),
        (b"qThreadExtraInfo,p4d2.4d2", b""),
    ],
)
def test_simple_replies(dispatcher: Dispatcher, packet: bytes, reply: bytes) -> None:
    assert ask(dispatcher, packet) == reply


def test_initial_stop_and_threads(dispatcher: Dispatcher) -> None:
    assert ask(dispatcher, b"?") == b"T00thread:p4d2.4d2;"
    assert ask(dispatcher, b"qfThreadInfo") == b"mp4d2.4d2,p4d2.4d5"
    assert ask(dispatcher, b"qsThreadInfo") == b"l"
    assert ask(dispatcher, b"qC") == b"QCp4d2.4d2"
    assert ask(dispatcher, b"qfThreadInfo", rp.Dialect()) == b"m4d2,4d5"


@pytest.mark.parametrize(
    ("packet", "reply"),
    [
        (b"Tp4d2.4d5", b"OK"),
        (b"T4d5", b"OK"),
        (b"Tp4d2.999", b"E01"),
        (b"Tp1.4d5", b"E01"),
        (b"Hgp0.0", b"OK"),
        (b"Hc-1", b"OK"),
        (b"Hgp4d2.4d5", b"OK"),
        (b"Hgp4d2.777", b"E01"),
    ],
)
def test_thread_selection(dispatcher: Dispatcher, packet: bytes, reply: bytes) -> None:
    assert ask(dispatcher, packet) == reply


def test_hg_selects_the_register_thread(dispatcher: Dispatcher) -> None:
    layout = RegisterLayout(avx=False)
    rip_at = sum(r.size for r in layout.registers[:16]) * 2
    ask(dispatcher, b"Hgp4d2.4d5")
    assert ask(dispatcher, b"g")[rip_at : rip_at + 16] == b"d504000000000000"
    ask(dispatcher, b"Hgp0.0")
    assert ask(dispatcher, b"g")[rip_at : rip_at + 16] == b"d204000000000000"


# -- qXfer ------------------------------------------------------------------------------


def test_target_xml_in_chunks(dispatcher: Dispatcher) -> None:
    document = RegisterLayout(avx=False).feature_documents()["64bit-core.xml"]
    first = ask(dispatcher, b"qXfer:features:read:64bit-core.xml:0,100")
    assert first == b"m" + document[:0x100]
    rest = ask(dispatcher, b"qXfer:features:read:64bit-core.xml:100,100000")
    assert rest == b"l" + document[0x100:]
    assert ask(dispatcher, b"qXfer:features:read:target.xml:0,1000").startswith(b"l<?xml")


def test_auxv_exec_file_and_threads(dispatcher: Dispatcher) -> None:
    assert ask(dispatcher, b"qXfer:auxv:read::0,1000") == b"l" + struct.pack("<4Q", 6, 4096, 0, 0)
    assert ask(dispatcher, b"qXfer:auxv:read::0,8") == b"m" + struct.pack("<Q", 6)
    assert ask(dispatcher, b"qXfer:exec-file:read:4d2:0,1000") == b"l/bin/prog"
    threads = ask(dispatcher, b"qXfer:threads:read::0,1000")
    assert threads == (b'l<threads>\n<thread id="p4d2.4d2" name="worker&lt;1234&gt;"/>\n'
                       b'<thread id="p4d2.4d5" name="worker&lt;1237&gt;"/>\n</threads>\n')


# -- registers ----------------------------------------------------------------------------


# -- siginfo and thread-local storage --------------------------------------------------

SEGV_INFO = struct.pack("<iii4xQ", 11, 0, 1, 0x1234).ljust(128, b"\0")  # SEGV_MAPERR


def _siginfo(dispatcher: Dispatcher) -> tuple[int, int, int, int]:
    """si_signo, si_errno, si_code and si_addr of the qXfer:siginfo reply (all 128 bytes)."""
    reply = dispatcher.handle(parse_packet(b"qXfer:siginfo:read::0,1000"))
    assert isinstance(reply, rp.XferChunk) and reply.last and len(reply.data) == 128, reply
    return struct.unpack_from("<iii4xQ", reply.data)


@pytest.mark.parametrize(
    ("reason", "siginfo"),
    [
        (BreakpointStop(), (5, 0, 0x80, 0)),  # int3: a forced SIGTRAP, SI_KERNEL
        (BreakpointStop(hardware=True), (5, 0, 4, TID)),  # TRAP_HWBKPT at the pc
        (WatchpointStop(BreakpointKind.WRITE_WATCH, 0x10020), (5, 0, 4, TID)),
        (StepDone(), (5, 0, 2, TID)),  # TRAP_TRACE at the pc
        (SyscallStop(1, returning=True), (5, 0, 0x85, 0)),  # SIGTRAP | 0x80 (TRACESYSGOOD)
        (SignalStop(10), (10, 0, 0x80, 0)),  # no siginfo known
        (SignalStop(11, SEGV_INFO), (11, 0, 1, 0x1234)),  # the recorded one
    ],
)
def test_siginfo_of_the_stop(
    target: FakeTarget, dispatcher: Dispatcher, reason: StopReason, siginfo: tuple
) -> None:
    target.stops = [reason]
    ask(dispatcher, b"c")
    assert _siginfo(dispatcher) == siginfo


def test_siginfo_is_read_in_windows_of_the_stopped_thread_only(
    target: FakeTarget, dispatcher: Dispatcher
) -> None:
    target.stops = [SignalStop(11, SEGV_INFO)]  # stops TID2
    ask(dispatcher, b"c")
    head = dispatcher.handle(parse_packet(b"qXfer:siginfo:read::0,10"))
    tail = dispatcher.handle(parse_packet(b"qXfer:siginfo:read::10,1000"))
    assert head == rp.XferChunk(SEGV_INFO[:16], last=False)
    assert tail == rp.XferChunk(SEGV_INFO[16:], last=True)
    assert ask(dispatcher, b"qXfer:siginfo:read::81,10") == b"E01"
    assert ask(dispatcher, b"qXfer:siginfo:read:x:0,10") == b"E01"
    ask(dispatcher, b"Hgp4d2.4d2")  # a thread that did not stop: no siginfo
    assert ask(dispatcher, b"qXfer:siginfo:read::0,1000") == b"E01"
    ask(dispatcher, b"Hgp0.0")
    assert _siginfo(dispatcher)[0] == 11


@pytest.mark.parametrize(
    "reason",
    [Interrupted(), EndOfHistory(at_beginning=True), EndOfHistory(at_beginning=False),
     ProcessExited(0)],
)
def test_no_siginfo_where_no_signal_stopped(
    target: FakeTarget, dispatcher: Dispatcher, reason: StopReason
) -> None:
    target.stops = [reason]
    ask(dispatcher, b"c")
    assert ask(dispatcher, b"qXfer:siginfo:read::0,1000") == b"E01"


def test_siginfo_follows_reverse_execution(target: FakeTarget, dispatcher: Dispatcher) -> None:
    target.stops = [SignalStop(11, SEGV_INFO), StepDone(), BreakpointStop()]
    ask(dispatcher, b"c")
    assert _siginfo(dispatcher) == (11, 0, 1, 0x1234)
    ask(dispatcher, b"bs")  # the stop gdb is at now is a step back (of TID2)
    assert _siginfo(dispatcher) == (5, 0, 2, TID2)
    ask(dispatcher, b"bc")
    assert _siginfo(dispatcher) == (5, 0, 0x80, 0)


@pytest.mark.parametrize(
    ("packet", "reply"),
    [
        (b"qGetTLSAddr:p4d2.4d2,0,7ffff7ffe2e0", b"7000"),
        (b"qGetTLSAddr:p4d2.4d5,10,7ffff7ffe2e0", b"9010"),  # each thread its own block
        (b"qGetTLSAddr:4d5,8,7ffff7ffe2e0", b"9008"),
        (b"qGetTLSAddr:p4d2.0,4,7ffff7ffe2e0", b"7004"),  # any thread: the current one
        (b"qGetTLSAddr:p4d2.4d2,0,7ffff7ff0000", b"E01"),  # no TLS for that module
        (b"qGetTLSAddr:p4d2.999,0,7ffff7ffe2e0", b"E01"),  # no such thread
        (b"qGetTLSAddr:p4d2.4d2,0", b"E01"),  # malformed
    ],
)
def test_tls_addresses(dispatcher: Dispatcher, packet: bytes, reply: bytes) -> None:
    assert ask(dispatcher, packet) == reply


def test_g_has_the_size_gdb_expects(dispatcher: Dispatcher) -> None:
    assert len(ask(dispatcher, b"g")) == 2 * 560


def test_p_reads_one_register(dispatcher: Dispatcher) -> None:
    assert ask(dispatcher, b"p10") == b"d204000000000000"  # rip
    assert ask(dispatcher, b"p0") == b"0a00000000000000"  # rax = field 10
    assert ask(dispatcher, b"p100") == b"E01"


def test_register_writes_are_refused_as_unsupported_in_replay(dispatcher: Dispatcher) -> None:
    assert ask(dispatcher, b"P0=" + b"11" * 8) == b""
    assert ask(dispatcher, b"P39=" + b"ff" * 8) == b"OK"  # orig_rax: gdb's restart write
    assert ask(dispatcher, b"P0=11") == b"E01"
    assert ask(dispatcher, b"G" + b"00" * 560) == b""


def test_register_writes_reach_a_writable_target(
    target: FakeTarget, dispatcher: Dispatcher
) -> None:
    target.writable = True
    assert ask(dispatcher, b"P0=" + b"11" * 8) == b"OK"
    assert ask(dispatcher, b"p0") == b"11" * 8
    g = ask(dispatcher, b"g")
    assert ask(dispatcher, b"G" + b"22" * 8 + g[16:]) == b"OK"
    assert ask(dispatcher, b"p0") == b"22" * 8


# -- memory -------------------------------------------------------------------------------


def test_memory_reads(dispatcher: Dispatcher) -> None:
    assert ask(dispatcher, b"m10000,4") == b"00010203"
    assert ask(dispatcher, b"m10ffe,10") == b"feff"  # short read at the end of the mapping
    assert ask(dispatcher, b"m20000,4") == b"E01"
    assert ask(dispatcher, b"x10023,2") == b"b}\x03}\x04"  # '#' and '$' escaped
    assert ask(dispatcher, b"x10000,0") == b"b"
    assert ask(dispatcher, b"x20000,4") == b"E01"


def test_memory_writes(target: FakeTarget, dispatcher: Dispatcher) -> None:
    assert ask(dispatcher, b"X10000,0:") == b"OK"  # gdb's probe
    assert ask(dispatcher, b"M10000,2:0001") == b"OK"  # same bytes as already there
    assert ask(dispatcher, b"M10000,2:ffff") == b"E01"
    target.writable = True
    assert ask(dispatcher, b"X10000,2:\xcc\xcc") == b"OK"
    assert ask(dispatcher, b"m10000,2") == b"cccc"


def test_search_memory(dispatcher: Dispatcher) -> None:
    assert (
        ask(dispatcher, b"qSearch:memory:10000;1000;0a0b0c".replace(b"0a0b0c", b"\x0a\x0b\x0c"))
        == b"1,1000a"
    )
    assert ask(dispatcher, b"qSearch:memory:10000;1000;\x0c\x0b") == b"0"


def test_breakpoints(target: FakeTarget, dispatcher: Dispatcher) -> None:
    assert ask(dispatcher, b"Z0,10010,1") == b"OK"
    assert ask(dispatcher, b"Z2,10020,4") == b"OK"
    assert ask(dispatcher, b"Z3,10020,3") == b""  # read watchpoints: gdb falls back to Z4
    assert ask(dispatcher, b"Z4,10030,3") == b"E01"
    assert target.breakpoints == {
        (BreakpointKind.SOFTWARE, 0x10010, 1),
        (BreakpointKind.WRITE_WATCH, 0x10020, 4),
    }
    assert ask(dispatcher, b"z0,10010,1") == b"OK"
    assert ask(dispatcher, b"z0,10010,1") == b"OK"
    assert ask(dispatcher, b"Z5,1,1") == b""
    assert target.breakpoints == {(BreakpointKind.WRITE_WATCH, 0x10020, 4)}


# -- execution ------------------------------------------------------------------------------


def test_catch_syscalls_is_advertised_and_passed_to_the_target(
    target: FakeTarget, dispatcher: Dispatcher
) -> None:
    assert "QCatchSyscalls+" in supported_features(reverse=True)
    assert ask(dispatcher, b"QCatchSyscalls:1;1;3f") == b"OK"
    assert ask(dispatcher, b"QCatchSyscalls:1") == b"OK"
    assert ask(dispatcher, b"QCatchSyscalls:0") == b"OK"
    assert ask(dispatcher, b"QCatchSyscalls:1;zz") == b"E01"
    assert target.caught == [frozenset({1, 0x3F}), frozenset(), None]


@pytest.mark.parametrize(
    ("reason", "reply"),
    [
        (BreakpointStop(), b"T05thread:p4d2.4d2;swbreak:;"),
        (BreakpointStop(hardware=True), b"T05thread:p4d2.4d2;hwbreak:;"),
        (WatchpointStop(BreakpointKind.WRITE_WATCH, 0x10020), b"T05thread:p4d2.4d2;watch:10020;"),
        (WatchpointStop(BreakpointKind.READ_WATCH, 0x10020), b"T05thread:p4d2.4d2;rwatch:10020;"),
        (WatchpointStop(BreakpointKind.ACCESS_WATCH, 0x8), b"T05thread:p4d2.4d2;awatch:8;"),
        (StepDone(), b"T05thread:p4d2.4d2;"),
        (SignalStop(10), b"T1ethread:p4d2.4d5;"),  # SIGUSR1 is gdb signal 30
        (EndOfHistory(at_beginning=True), b"T00thread:p4d2.4d2;replaylog:begin;"),
        (EndOfHistory(at_beginning=False), b"T09thread:p4d2.4d2;"),
        (Interrupted(), b"T00thread:p4d2.4d2;"),
        (SyscallStop(1, returning=False), b"T05thread:p4d2.4d2;syscall_entry:1;"),
        (SyscallStop(0x3F, returning=True), b"T05thread:p4d2.4d2;syscall_return:3f;"),
        (ProcessExited(3), b"W03;process:4d2"),
        (ProcessKilled(11), b"X0b;process:4d2"),
    ],
)
def test_stop_replies(
    target: FakeTarget, dispatcher: Dispatcher, reason: StopReason, reply: bytes
) -> None:
    target.stops = [reason]
    assert ask(dispatcher, b"vCont;c:p4d2.-1") == reply
    assert ask(dispatcher, b"?") == reply


@pytest.mark.parametrize(
    ("packet", "resume"),
    [
        (b"c", (Direction.FORWARD, ResumeAction.CONTINUE, TID)),
        (b"C09", (Direction.FORWARD, ResumeAction.CONTINUE, TID)),
        (b"s", (Direction.FORWARD, ResumeAction.STEP, TID)),
        (b"S05", (Direction.FORWARD, ResumeAction.STEP, TID)),
        (b"vCont;c:p4d2.-1", (Direction.FORWARD, ResumeAction.CONTINUE, TID)),
        (b"vCont;s:p4d2.4d5;c:p4d2.-1", (Direction.FORWARD, ResumeAction.STEP, TID2)),
        (b"vCont;C09:p4d2.4d2;c:p4d2.-1", (Direction.FORWARD, ResumeAction.CONTINUE, TID)),
        (b"vCont;S09:p4d2.4d2;c:p4d2.-1", (Direction.FORWARD, ResumeAction.STEP, TID)),
        (b"bc", (Direction.REVERSE, ResumeAction.CONTINUE, TID)),
        (b"bs", (Direction.REVERSE, ResumeAction.STEP, TID)),
    ],
)
def test_resume_requests(
    target: FakeTarget, dispatcher: Dispatcher, packet: bytes, resume: tuple
) -> None:
    ask(dispatcher, packet)
    assert target.resumes == [resume]


def test_hc_selects_the_resume_thread_until_the_next_stop(
    target: FakeTarget, dispatcher: Dispatcher
) -> None:
    assert ask(dispatcher, b"Hcp4d2.4d5") == b"OK"
    assert ask(dispatcher, b"bs") == b"T05thread:p4d2.4d5;"
    ask(dispatcher, b"bs")
    assert [tid for _, _, tid in target.resumes] == [TID2, TID2]
    target.stops = [SignalStop(10)]  # reported in TID2, which becomes current
    ask(dispatcher, b"c")
    assert ask(dispatcher, b"qC") == b"QCp4d2.4d5"


def test_vcont_without_resume_action_is_an_error(dispatcher: Dispatcher) -> None:
    assert ask(dispatcher, b"vCont;t:p4d2.4d2") == b"E01"


def test_end_of_recording_then_exit(target: FakeTarget, dispatcher: Dispatcher) -> None:
    target.stops = [EndOfHistory(at_beginning=False), ProcessExited(0)]
    assert ask(dispatcher, b"vCont;c:p4d2.-1") == b"T09thread:p4d2.4d2;"
    assert ask(dispatcher, b"vCont;C09:p4d2.4d2;c:p4d2.-1") == b"W00;process:4d2"
    assert ask(dispatcher, b"qfThreadInfo") == b"l"
    assert ask(dispatcher, b"vCont;c:p4d2.-1") == b"W00;process:4d2"
    assert len(target.resumes) == 2
    assert ask(dispatcher, b"vKill;4d2") == b"OK"
    assert ask(dispatcher, b"vRun;;31303030") == b"T05thread:p4d2.4d2;"
    assert target.restarts == ["1000"]


def test_vrun_of_another_program_is_refused(dispatcher: Dispatcher) -> None:
    assert ask(dispatcher, b"vRun;2f62696e2f6c73") == b"E01"


def test_reverse_unsupported_gets_empty(target: FakeTarget) -> None:
    target.reverse_execution = False
    dispatcher = Dispatcher(target)
    assert ask(dispatcher, b"bc") == b""
    assert target.resumes == []


def test_detach_and_kill_close_the_session(target: FakeTarget, dispatcher: Dispatcher) -> None:
    assert ask(dispatcher, b"D;4d2") == b"OK"
    assert dispatcher.closing
    other = Dispatcher(FakeTarget())
    assert ask(other, b"k") is None
    assert other.closing
    dispatcher.close()
    assert target.closed


# -- monitor and files ---------------------------------------------------------------------


def test_monitor_commands(dispatcher: Dispatcher) -> None:
    assert (
        ask(dispatcher, b"qRcmd," + b"when".hex().encode()) == b"Current event: 42\n".hex().encode()
    )
    assert ask(dispatcher, b"qRRCmd:when:1234") == b"Current event: 42\n".hex().encode()
    assert ask(dispatcher, b"qRcmd," + b"quiet".hex().encode()) == b"OK"


def test_vfile_session_like_gdb_13(dispatcher: Dispatcher) -> None:
    exe = FILES["/bin/prog"]
    assert ask(dispatcher, b"vFile:setfs:4d2") == b"F0"
    assert ask(dispatcher, b"vFile:open:" + b"/bin/prog".hex().encode() + b",0,0") == b"F0"
    assert ask(dispatcher, b"vFile:pread:0,100000,0") == b"F%x;" % len(exe) + exe.replace(
        b"}", b"}]"
    ).replace(b"#", b"}\x03").replace(b"$", b"}\x04").replace(b"*", b"}\x0a")
    assert ask(dispatcher, b"vFile:pread:0,4,1") == b"F4;ELF\x00"
    assert ask(dispatcher, b"vFile:pread:0,100,10000") == b"F0;"
    stat = ask(dispatcher, b"vFile:fstat:0")
    assert stat[:4] == b"F40;"
    assert ask(dispatcher, b"vFile:open:" + b"/proc/1234/maps".hex().encode() + b",0,1c0") == b"F1"
    assert ask(dispatcher, b"vFile:close:0") == b"F0"
    assert ask(dispatcher, b"vFile:close:0") == b"F-1,9"
    assert ask(dispatcher, b"vFile:pread:0,1,0") == b"F-1,9"
    assert ask(dispatcher, b"vFile:fstat:7") == b"F-1,9"
    assert ask(dispatcher, b"vFile:open:" + b"/etc/shadow".hex().encode() + b",0,0") == b"F-1,2"
    assert ask(dispatcher, b"vFile:open:" + b"/bin/prog".hex().encode() + b",1,0") == b"F-1,d"
    assert ask(dispatcher, b"vFile:open:" + b"/bin/prog".hex().encode() + b",200,1a4") == b"F-1,d"
    assert ask(dispatcher, b"vFile:unlink:2f") == b""


def test_fstat_reports_the_size_in_gdb_layout(dispatcher: Dispatcher) -> None:
    ask(dispatcher, b"vFile:open:" + b"/bin/prog".hex().encode() + b",0,0")
    reply = dispatcher.handle(rq.FileFstat(0))
    assert isinstance(reply, rp.FileResult)
    fields = struct.unpack(">7I3Q3I", reply.data)
    assert fields[2] & 0o170000 == 0o100000
    assert fields[7] == len(FILES["/bin/prog"])


# -- through the sans-IO connection -----------------------------------------------------------


def test_handshake_through_the_connection(dispatcher: Dispatcher) -> None:
    conn = Connection()
    wire = b""
    for body in (
        b"qSupported:multiprocess+;swbreak+;hwbreak+",
        b"vMustReplyEmpty",
        b"QStartNoAckMode",
    ):
        [request] = conn.receive_data(b"$%b#%02x" % (body, sum(body) & 0xFF))
        wire += conn.data_to_send() + conn.send(dispatcher.handle(request))
    assert wire.endswith(b"+$#00+$OK#9a")
    assert not conn.ack_mode
    [request] = conn.receive_data(b"+$?#3f")
    assert conn.send(dispatcher.handle(request)) == b"$T00thread:p4d2.4d2;#d3"


def test_malformed_and_unknown_requests(dispatcher: Dispatcher) -> None:
    assert dispatcher.handle(rq.Malformed(b"m1", "bad")) == rp.Error()
    assert dispatcher.handle(rq.Unknown(b"qFoo")) == rp.EMPTY


# -- the engine thread ---------------------------------------------------------------------------


def test_engine_thread_runs_every_call_on_one_thread() -> None:
    engine = EngineThread()
    seen: set[int] = set()

    def record(value: int) -> int:
        seen.add(threading.get_ident())
        return value * 2

    def fail() -> None:
        raise OSError("ptrace failed")

    async def main() -> list[int]:
        results = [await engine.call(record, i) for i in range(5)]
        with pytest.raises(OSError, match="ptrace failed"):
            await engine.call(fail)
        return results

    try:
        assert trio.run(main) == [0, 2, 4, 6, 8]
    finally:
        engine.stop()
    assert len(seen) == 1 and threading.get_ident() not in seen


def test_thread_ids_resolve_wildcards(dispatcher: Dispatcher) -> None:
    assert ask(dispatcher, b"Hgp-1.-1") == b"OK"
    assert ask(dispatcher, b"Hgp4d2.0") == b"OK"
    assert ask(dispatcher, b"Tp4d2.-1") == b"OK"
    assert dispatcher.handle(rq.ThreadAlive(ThreadId(None, TID2))) == rp.OK
