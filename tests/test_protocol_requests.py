"""Packet bodies to typed requests: every reader in the table, and its malformed inputs."""

from __future__ import annotations

import pytest

from rrgdb.gdb import requests as rq
from rrgdb.gdb._readers import READERS, parse_packet, parse_thread_id
from rrgdb.gdb.requests import BreakpointKind, ThreadId

P = ThreadId(0x4D2, 0x4D2)

PARSED = [
    (b"?", rq.StopReason()),
    (b"!", rq.EnableExtendedMode()),
    (b"qSupported", rq.QuerySupported(())),
    (
        b"qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;"
        b"exec-events+;vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+;"
        b"xmlRegisters=i386",
        rq.QuerySupported(
            (
                "multiprocess+",
                "swbreak+",
                "hwbreak+",
                "qRelocInsn+",
                "fork-events+",
                "vfork-events+",
                "exec-events+",
                "vContSupported+",
                "QThreadEvents+",
                "no-resumed+",
                "memory-tagging+",
                "xmlRegisters=i386",
            )
        ),
    ),  # fmt: skip
    (b"vMustReplyEmpty", rq.MustReplyEmpty()),
    (b"QStartNoAckMode", rq.StartNoAckMode()),
    (b"QNonStop:0", rq.SetNonStop(False)),
    (b"QNonStop:1", rq.SetNonStop(True)),
    (b"QPassSignals:e;10;14;17;1a;", rq.PassSignals(frozenset({0xE, 0x10, 0x14, 0x17, 0x1A}))),
    (b"QPassSignals:", rq.PassSignals(frozenset())),
    (b"QProgramSignals:2;", rq.ProgramSignals(frozenset({2}))),
    (b"QCatchSyscalls:0", rq.CatchSyscalls(False)),
    (b"QCatchSyscalls:1", rq.CatchSyscalls(True)),
    (b"QCatchSyscalls:1;1;3f;e7", rq.CatchSyscalls(True, frozenset({1, 0x3F, 0xE7}))),
    (b"Hgp0.0", rq.SetThread("g", ThreadId(0, 0))),
    (b"Hc-1", rq.SetThread("c", ThreadId(None, -1))),
    (b"Hcp4d2.0", rq.SetThread("c", ThreadId(0x4D2, 0))),
    (b"Hgp4d2.4d2", rq.SetThread("g", P)),
    (b"Tp4d2.4d2", rq.ThreadAlive(P)),
    (b"T4d3", rq.ThreadAlive(ThreadId(None, 0x4D3))),
    (b"qC", rq.QueryCurrentThread()),
    (b"qfThreadInfo", rq.ThreadInfoFirst()),
    (b"qsThreadInfo", rq.ThreadInfoNext()),
    (b"qThreadExtraInfo,p4d2.4d2", rq.ThreadExtraInfo(P)),
    (b"qAttached", rq.QueryAttached(None)),
    (b"qAttached:4d2", rq.QueryAttached(0x4D2)),
    (b"qSymbol::", rq.QuerySymbol(None, None)),
    (b"qSymbol:1000:6d61696e", rq.QuerySymbol(0x1000, "main")),
    (b"qSymbol::6d61696e", rq.QuerySymbol(None, "main")),
    (b"qOffsets", rq.QueryOffsets()),
    (b"qTStatus", rq.QueryTraceStatus()),
    (b"qXfer:features:read:target.xml:0,1000", rq.XferRead("features", "target.xml", 0, 0x1000)),
    (b"qXfer:auxv:read::0,1000", rq.XferRead("auxv", "", 0, 0x1000)),
    (b"qXfer:exec-file:read:4d2:0,1000", rq.XferRead("exec-file", "4d2", 0, 0x1000)),
    (b"qXfer:threads:read::0,fff", rq.XferRead("threads", "", 0, 0xFFF)),
    (b"qXfer:libraries-svr4:read::10,20", rq.XferRead("libraries-svr4", "", 0x10, 0x20)),
    (b"qXfer:siginfo:read::0,fff", rq.XferRead("siginfo", "", 0, 0xFFF)),
    (b"qXfer:siginfo:write::0:a}]b", rq.XferWrite("siginfo", "", 0, b"a}b")),
    (
        b"qGetTLSAddr:p676e.676f,0,7ffff7ffe2e0",
        rq.GetTlsAddress(ThreadId(0x676E, 0x676F), 0, 0x7FFFF7FFE2E0),
    ),
    (b"qGetTLSAddr:4d3,10,7ffff7fc1000", rq.GetTlsAddress(ThreadId(None, 0x4D3), 0x10,
                                                          0x7FFFF7FC1000)),
    (b"g", rq.ReadRegisters()),
    (b"G0102xx", rq.WriteRegisters(b"0102xx")),
    (b"p10", rq.ReadRegister(16)),
    (b"P39=ffffffffffffffff", rq.WriteRegister(0x39, b"\xff" * 8)),
    (b"m555555554040,2d8", rq.ReadMemory(0x555555554040, 0x2D8)),
    (b"x7fffffffe680,40", rq.ReadMemory(0x7FFFFFFFE680, 0x40, binary=True)),
    (b"M1000,2:beef", rq.WriteMemory(0x1000, b"\xbe\xef")),
    (b"X7fffffffe60f,0:", rq.WriteMemory(0x7FFFFFFFE60F, b"")),
    (b"X7fffffffe60f,1:\xcc", rq.WriteMemory(0x7FFFFFFFE60F, b"\xcc")),
    (b"qSearch:memory:1000;200;ab}]", rq.SearchMemory(0x1000, 0x200, b"ab}")),
    (b"Z0,555555555130,1", rq.InsertBreakpoint(BreakpointKind.SOFTWARE, 0x555555555130, 1)),
    (b"Z1,400000,1", rq.InsertBreakpoint(BreakpointKind.HARDWARE, 0x400000, 1)),
    (b"Z2,555555558020,4", rq.InsertBreakpoint(BreakpointKind.WRITE_WATCH, 0x555555558020, 4)),
    (b"Z3,10,8", rq.InsertBreakpoint(BreakpointKind.READ_WATCH, 0x10, 8)),
    (b"Z4,10,2", rq.InsertBreakpoint(BreakpointKind.ACCESS_WATCH, 0x10, 2)),
    (b"z0,555555555155,1", rq.RemoveBreakpoint(BreakpointKind.SOFTWARE, 0x555555555155, 1)),
    (b"Z0,10,1;X3,220100", rq.InsertBreakpoint(BreakpointKind.SOFTWARE, 0x10, 1)),
    (b"c", rq.Continue()),
    (b"c400000", rq.Continue(addr=0x400000)),
    (b"C09", rq.Continue(signal=9)),
    (b"C0b;400000", rq.Continue(signal=11, addr=0x400000)),
    (b"s", rq.Step()),
    (b"S05", rq.Step(signal=5)),
    (b"vCont?", rq.VContQuery()),
    (b"vCont;c:p4d2.-1", rq.VCont((rq.VContAction("c", thread=ThreadId(0x4D2, -1)),))),
    (
        b"vCont;s:p4d2.4d2;c:p4d2.-1",
        rq.VCont((rq.VContAction("s", thread=P), rq.VContAction("c", thread=ThreadId(0x4D2, -1)))),
    ),
    (
        b"vCont;C09:p4d2.4d2;c:p4d2.-1",
        rq.VCont((rq.VContAction("C", 9, P), rq.VContAction("c", thread=ThreadId(0x4D2, -1)))),
    ),
    (b"vCont;S09:p4d2.4d2", rq.VCont((rq.VContAction("S", 9, P),))),
    (b"vCont;c", rq.VCont((rq.VContAction("c"),))),
    (b"vCont;t:p1.2", rq.VCont((rq.VContAction("t", thread=ThreadId(1, 2)),))),
    (
        b"vCont;r1000,1010:p1.1;c",
        rq.VCont(
            (
                rq.VContAction("r", thread=ThreadId(1, 1), step_range=(0x1000, 0x1010)),
                rq.VContAction("c"),
            )
        ),
    ),
    (b"bc", rq.ReverseContinue()),
    (b"bs", rq.ReverseStep()),
    (b"vRun;", rq.Run("", ())),
    (b"vRun;;31303030", rq.Run("", ("1000",))),
    (b"vRun;2f62696e2f6c73;2d6c", rq.Run("/bin/ls", ("-l",))),
    (b"vKill;4d2", rq.KillProcess(0x4D2)),
    (b"k", rq.Kill()),
    (b"D", rq.Detach(None)),
    (b"D;4d2", rq.Detach(0x4D2)),
    (b"qRcmd,7768656e", rq.MonitorCommand("when")),
    (b"qRcmd,", rq.MonitorCommand("")),
    (b"qRRCmd:when:1234", rq.MonitorCommand("when", thread=1234, rr_form=True)),
    (b"qRRCmd:when:-1", rq.MonitorCommand("when", thread=None, rr_form=True)),
    (
        b"qRRCmd:delete checkpoint:7:33",
        rq.MonitorCommand("delete checkpoint 3", thread=7, rr_form=True),
    ),
    (b"vFile:setfs:0", rq.FileSetFs(0)),
    (b"vFile:setfs:4d2", rq.FileSetFs(0x4D2)),
    (b"vFile:open:2f746d702f6578702f70726f6764,0,0", rq.FileOpen("/tmp/exp/progd", 0, 0)),
    (
        b"vFile:open:2f70726f632f313233342f7461736b2f313233342f6d617073,0,1c0",
        rq.FileOpen("/proc/1234/task/1234/maps", 0, 0x1C0),
    ),
    (b"vFile:pread:c,100000,4398", rq.FilePread(12, 0x100000, 0x4398)),
    (b"vFile:close:c", rq.FileClose(12)),
    (b"vFile:fstat:c", rq.FileFstat(12)),
]


@pytest.mark.parametrize(
    ("packet", "expected"), PARSED, ids=[p[:30].decode("latin-1") for p, _ in PARSED]
)
def test_packet_parses(packet: bytes, expected: rq.Request) -> None:
    assert parse_packet(packet) == expected


UNKNOWN = [
    b"",
    b"qCRC:1000,10",
    b"qL1200000000000000000",
    b"qMemoryRegionInfo:1000",
    b"jThreadsInfo",
    b"QThreadEvents:1",
    b"QListThreadsInStopReply",
    b"vFile:unlink:2f74",
    b"vFile:readlink:2f74",
    b"Z5,1000,1",
    b"qXfer:features:frob:x:0,1",
    b"vStopped",
    b"i",
    b"bX",
    b"qAttached4d2",
]


@pytest.mark.parametrize("packet", UNKNOWN)
def test_unsupported_packets_are_unknown(packet: bytes) -> None:
    assert parse_packet(packet) == rq.Unknown(packet)


MALFORMED = [
    b"?x",
    b"gg",
    b"G0",
    b"G0g",
    b"p",
    b"p-1",
    b"P1",
    b"P1=0",
    b"m",
    b"m1",
    b"m1,",
    b"m,1",
    b"m 1,2",
    b"m0x1,2",
    b"m1_0,2",
    b"M1,2:00",
    b"M1,1",
    b"X1,2:a",
    b"X1,1:}",
    b"Z0,1",
    b"Z0,1,2,3",
    b"Zx,1,1",
    b"C",
    b"Cxx",
    b"cz",
    b"Hx1",
    b"H",
    b"Hg",
    b"Hgp",
    b"Hgp1.",
    b"T",
    b"Tq",
    b"vCont",
    b"vCont;",
    b"vCont;q",
    b"vCont;c1",
    b"vCont;C",
    b"vCont;r1:p1.1",
    b"vCont;c:",
    b"vKill",
    b"vKill;",
    b"vRun",
    b"vRun;zz",
    b"vRun;1",
    b"D4d2",
    b"qSupported;x",
    b"qSupported:\xff+",
    b"qXfer",
    b"qXfer:features",
    b"qXfer:features:read:target.xml",
    b"qXfer:features:read:target.xml:0",
    b"qXfer:\xff:read::0,1",
    b"qSymbol",
    b"qSymbol:zz:",
    b"qRcmd",
    b"qRcmd,7",
    b"qRRCmd",
    b"qRRCmd:when",
    b"qRRCmd:when:x",
    b"qRRCmd::1",
    b"qSearch:memory:1;2",
    b"qSearch:mem:1;2;3",
    b"qThreadExtraInfo",
    b"qGetTLSAddr",
    b"qGetTLSAddr:1,2",
    b"qGetTLSAddr:1,2,3,4",
    b"qGetTLSAddr:p1.,2,3",
    b"qGetTLSAddr:1,-2,3",
    b"qGetTLSAddr;1,2,3",
    b"QNonStop:2",
    b"QPassSignals:x",
    b"QCatchSyscalls",
    b"QCatchSyscalls:",
    b"QCatchSyscalls:2",
    b"QCatchSyscalls:0;1",
    b"QCatchSyscalls:1;x",
    b"QCatchSyscalls:1;;1",
    b"QStartNoAckMode:1",
    b"vFile:open:2f,0",
    b"vFile:open:2,0,0",
    b"vFile:pread:1,2",
    b"vFile:close:",
    b"vFile:setfs",
    b"vMustReplyEmpty:",
]


@pytest.mark.parametrize("packet", MALFORMED, ids=[p.decode("latin-1") for p in MALFORMED])
def test_malformed_packets(packet: bytes) -> None:
    request = parse_packet(packet)
    assert isinstance(request, rq.Malformed), request
    assert request.packet == packet
    assert request.reason


def test_every_reader_is_exercised() -> None:
    names = {p.split(b":")[0] for p, _ in PARSED}
    for name in READERS:
        assert any(p.startswith(name) for p in names), name


@pytest.mark.parametrize(
    ("text", "thread"),
    [
        (b"p1.2", ThreadId(1, 2)),
        (b"p1", ThreadId(1, -1)),
        (b"p-1", ThreadId(-1, -1)),
        (b"p-1.-1", ThreadId(-1, -1)),
        (b"p0.0", ThreadId(0, 0)),
        (b"-1", ThreadId(None, -1)),
        (b"0", ThreadId(None, 0)),
        (b"ABC", ThreadId(None, 0xABC)),
    ],
)
def test_thread_ids(text: bytes, thread: ThreadId) -> None:
    assert parse_thread_id(text) == thread


def test_thread_id_wildcards_match() -> None:
    assert ThreadId(0x4D2, -1).matches(0x4D2, 7)
    assert ThreadId(0, 0).matches(0x4D2, 7)
    assert ThreadId(None, 7).matches(0x4D2, 7)
    assert not ThreadId(0x4D2, 8).matches(0x4D2, 7)
    assert not ThreadId(5, -1).matches(0x4D2, 7)


def test_requests_are_immutable_and_hashable() -> None:
    request = rq.ReadMemory(1, 2)
    with pytest.raises(AttributeError):
        request.addr = 3  # type: ignore[misc]
    assert len({request, rq.ReadMemory(1, 2)}) == 1


def test_resume_and_reply_flags() -> None:
    resumes = {rq.Continue, rq.Step, rq.VCont, rq.ReverseContinue, rq.ReverseStep, rq.Run}
    for request in (r for _, r in PARSED):
        assert request.resumes == (type(request) in resumes), request
        assert request.expects_reply == (type(request) is not rq.Kill)
