"""Typed replies to payload bytes, and the byte-level encodings beneath them."""

from __future__ import annotations

import pytest

from rrgdb.gdb import replies as rp
from rrgdb.gdb._wire import (
    MalformedPacket,
    checksum,
    escape,
    frame,
    rle_decode,
    rle_encode,
    unescape,
)
from rrgdb.gdb.requests import ThreadId

MP = rp.Dialect(multiprocess=True, swbreak=True, hwbreak=True)
PLAIN = rp.Dialect()
T = ThreadId(0x4D2, 0x4D3)

ENCODED = [
    (rp.OK, MP, b"OK"),
    (rp.EMPTY, MP, b""),
    (rp.Error(), MP, b"E01"),
    (rp.Error(0x16), MP, b"E16"),
    (rp.Hex(b"\x00\xffA"), MP, b"00ff41"),
    (rp.BinaryMemory(b"a#b"), MP, b"ba}\x03b"),
    (rp.BinaryMemory(b""), MP, b"b"),
    (rp.Supported(("PacketSize=100000", "multiprocess+")), MP, b"PacketSize=100000;multiprocess+"),
    (rp.StopReply(5, T), MP, b"T05thread:p4d2.4d3;"),
    (rp.StopReply(5, T), PLAIN, b"T05thread:4d3;"),
    (rp.StopReply(0), MP, b"T00"),
    (rp.StopReply(5, T, rp.BreakpointHit()), MP, b"T05thread:p4d2.4d3;swbreak:;"),
    (rp.StopReply(5, T, rp.BreakpointHit()), PLAIN, b"T05thread:4d3;"),
    (rp.StopReply(5, T, rp.BreakpointHit(hardware=True)), MP, b"T05thread:p4d2.4d3;hwbreak:;"),
    (rp.StopReply(5, T, rp.WatchpointHit(0x1000)), MP, b"T05thread:p4d2.4d3;watch:1000;"),
    (rp.StopReply(5, T, rp.WatchpointHit(0x10, "rwatch")), PLAIN, b"T05thread:4d3;rwatch:10;"),
    (rp.StopReply(5, T, rp.WatchpointHit(0x10, "awatch")), PLAIN, b"T05thread:4d3;awatch:10;"),
    (rp.StopReply(0, T, rp.HistoryBoundary(True)), MP, b"T00thread:p4d2.4d3;replaylog:begin;"),
    (rp.StopReply(0, T, rp.HistoryBoundary(False)), MP, b"T00thread:p4d2.4d3;replaylog:end;"),
    (rp.StopReply(0x4D, ThreadId(None, -1)), MP, b"T4dthread:-1;"),
    (rp.StopReply(5, T, rp.ExecHit("/bin/ls")), rp.Dialect(exec_events=True),
     b"T05thread:4d3;exec:2f62696e2f6c73;"),
    (rp.StopReply(5, T, rp.ExecHit("/bin/ls")), PLAIN, b"T05thread:4d3;"),
    (rp.StopReply(5, T, rp.SyscallHit(1, returning=False)), MP,
     b"T05thread:p4d2.4d3;syscall_entry:1;"),
    (rp.StopReply(5, T, rp.SyscallHit(0xE7, returning=True)), PLAIN,
     b"T05thread:4d3;syscall_return:e7;"),
    (rp.Exited(0), MP, b"W00"),
    (rp.Address(0x7FFFF7D8A6BC), MP, b"7ffff7d8a6bc"),
    (rp.Address(0), PLAIN, b"0"),
    (rp.Exited(3, pid=0x4D2), MP, b"W03;process:4d2"),
    (rp.Exited(3, pid=0x4D2), PLAIN, b"W03"),
    (rp.Terminated(9, pid=0x4D2), MP, b"X09;process:4d2"),
    (rp.Terminated(11), PLAIN, b"X0b"),
    (rp.ConsoleOutput(b"hello\n"), MP, b"O68656c6c6f0a"),
    (rp.ThreadList(()), MP, b"l"),
    (rp.ThreadList((T, ThreadId(0x4D2, 0x4D5))), MP, b"mp4d2.4d3,p4d2.4d5"),
    (rp.ThreadList((T,)), PLAIN, b"m4d3"),
    (rp.CurrentThread(T), MP, b"QCp4d2.4d3"),
    (rp.CurrentThread(T), PLAIN, b"QC4d3"),
    (rp.XferChunk(b"<x>", last=True), MP, b"l<x>"),
    (rp.XferChunk(b"*}", last=False), MP, b"m}\x0a}]"),
    (rp.FileResult(0), MP, b"F0"),
    (rp.FileResult(0x4000, data=b"\x7fELF$"), MP, b"F4000;\x7fELF}\x04"),
    (rp.FileResult(-1, errno=2), MP, b"F-1,2"),
    (rp.FileResult(-1, errno=9999), MP, b"F-1,270f"),
    (rp.SearchResult(None), MP, b"0"),
    (rp.SearchResult(0x7FF0), MP, b"1,7ff0"),
]


@pytest.mark.parametrize(("reply", "dialect", "payload"), ENCODED)
def test_reply_payload(reply: rp.Reply, dialect: rp.Dialect, payload: bytes) -> None:
    assert reply.encode(dialect) == payload


def test_only_console_output_leaves_the_request_open() -> None:
    for reply, _, _ in ENCODED:
        assert reply.completes_request == (not isinstance(reply, rp.ConsoleOutput))


@pytest.mark.parametrize(
    ("document", "offset", "length", "expected"),
    [
        (b"abcdef", 0, 0x1000, rp.XferChunk(b"abcdef", last=True)),
        (b"abcdef", 0, 4, rp.XferChunk(b"abcd", last=False)),
        (b"abcdef", 4, 4, rp.XferChunk(b"ef", last=True)),
        (b"abcdef", 6, 4, rp.XferChunk(b"", last=True)),
        (b"abcdef", 7, 4, rp.Error(1)),
        (b"", 0, 4, rp.XferChunk(b"", last=True)),
    ],
)
def test_xfer_window(document: bytes, offset: int, length: int, expected: rp.Reply) -> None:
    assert rp.xfer_window(document, offset, length) == expected


def test_framing() -> None:
    assert frame(b"") == b"$#00"
    assert frame(b"OK") == b"$OK#9a"
    assert frame(b"T05thread:p4d2.4d2;") == b"$T05thread:p4d2.4d2;#d8"
    assert checksum(b"\xff\x02") == 1


def test_escape_is_exactly_the_four_special_bytes() -> None:
    assert escape(bytes(range(256))) == (
        bytes(range(0x23)) + b"}\x03}\x04" + bytes(range(0x25, 0x2A)) + b"}\x0a"
        + bytes(range(0x2B, 0x7D)) + b"}]" + bytes(range(0x7E, 256))
    )  # fmt: skip
    assert unescape(escape(bytes(range(256)))) == bytes(range(256))


def test_unescape_rejects_dangling_escape() -> None:
    with pytest.raises(MalformedPacket):
        unescape(b"ab}")


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        (b"0* ", b"0000"),
        (b"a*!b", b"aaaaab"),
        (b"x*~", b"x" * 98),
        (b"ab", b"ab"),
        (b'0*"1*"', b"000000" + b"111111"),
    ],
)
def test_rle_decode(encoded: bytes, decoded: bytes) -> None:
    assert rle_decode(encoded) == decoded


@pytest.mark.parametrize("bad", [b"*!", b"a*", b"a*\x1f", b"a*\x7f", b"a*\xff"])
def test_rle_decode_rejects(bad: bytes) -> None:
    with pytest.raises(MalformedPacket):
        rle_decode(bad)


def test_rle_encode_avoids_framing_characters_as_counts() -> None:
    for run in range(1, 300):
        encoded = rle_encode(b"0" * run)
        assert b"#" not in encoded and b"$" not in encoded
        assert rle_decode(encoded) == b"0" * run
    assert rle_encode(b"0000") == b"0* "
    assert len(rle_encode(b"0" * 200)) < 20
