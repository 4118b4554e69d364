"""The trace format: round trips, crash safety, and that bad traces fail only with TraceError."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from rrgdb.trace import (
    FORMAT_VERSION,
    CpuidFrame,
    ExecFrame,
    ExitFrame,
    FlushFrame,
    Frame,
    InstructionTrapFrame,
    Mapping,
    MemWrite,
    PreemptFrame,
    SignalFrame,
    SyscallEntryFrame,
    SyscallFrame,
    TraceError,
    TraceHeader,
    TraceReader,
    TraceWriter,
    _file_cache,
)
from rrgdb.trace import _layout as L
from rrgdb.trace._codec import pack_block, unpack_block_header
from rrgdb.trace._frame_codec import decode_frames, encode_frame

REGS = bytes(range(216))
U64_MAX = 2**64 - 1


def make_header(**changes: object) -> TraceHeader:
    fields: dict[str, object] = {
        "program": "/usr/bin/prog",
        "argv": ["prog", "-x", "ünïcode", "bad\udcffbyte"],
        "cwd": "/home/u",
        "rlimit_stack": (8 << 20, U64_MAX),
        "created": 1700000000.25,
        "kernel": "6.1.0-test",
        "cpu": "Test CPU @ 3.00GHz",
        "syscallbuf": True,
        "extra": {"k": "v", "": ""},
    }
    fields.update(changes)
    return TraceHeader(**fields)  # type: ignore[arg-type]


def every_kind() -> list[Frame]:
    return [
        ExecFrame(
            tid=100,
            regs=REGS,
            exe_path="/usr/bin/prog",
            exe_file_id="a" * 64,
            argv=[b"prog", b"", b"\xff\x00"],
            envp=[b"A=1"],
            mappings=[
                Mapping(0x400000, 0x401000, 5, 2, 0, "/usr/bin/prog", "a" * 64),
                Mapping(0x7FFF0000, 0x7FFF8000, 3, 0x22, 0, "[stack]", ""),
            ],
            memory=[MemWrite(0x7FFF7000, b"\x01" * 4096), MemWrite(U64_MAX, b"")],
        ),
        SyscallFrame(100, REGS, -38, [], 0, ""),
        SyscallFrame(100, REGS, 2**63 - 1, [MemWrite(1, b"x"), MemWrite(2, b"yz")], 1, "b" * 64),
        SyscallFrame(100, REGS, -(2**63), [MemWrite(0, b"\0" * 70000)], 2, ""),
        SignalFrame(101, REGS, 11, bytes(range(128)), True),
        SignalFrame(101, REGS, 10, b"\0" * 128, False),
        InstructionTrapFrame(101, REGS, U64_MAX, 2**32 - 1),
        CpuidFrame(101, REGS, 0, 2**32 - 1, 0x756E6547, 1),
        ExitFrame(101, 0x0B00),
        PreemptFrame(102, REGS, bytes(range(32)), 7, bytes(range(48)),
                     struct.pack("<4Q", 0x7FFF7008, 1, 0x601000, U64_MAX)),
        SyscallEntryFrame(103, REGS),
        FlushFrame(104, bytes(range(40))),
        ExitFrame(100, -1),
    ]


def write_trace(directory: Path, frames: list[Frame], close: bool = True) -> TraceWriter:
    writer = TraceWriter(directory, make_header())
    for frame in frames:
        writer.write(frame)
    if close:
        writer.close()
    return writer


def read_all(directory: Path) -> list[Frame]:
    return list(TraceReader(directory).frames())


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(L, "BLOCK_MAX_FRAMES", 4)


def numbered(count: int) -> list[Frame]:
    return [
        SyscallFrame(1, REGS, i, [MemWrite(i, i.to_bytes(8, "little"))], 0, "")
        for i in range(count)
    ]


# -- round trips ----------------------------------------------------------------------------


def test_every_frame_kind_round_trips(tmp_path: Path) -> None:
    frames = every_kind() * 200  # several blocks
    writer = write_trace(tmp_path / "t", frames)
    assert writer.frames_written == len(frames)
    reader = TraceReader(tmp_path / "t")
    assert reader.complete
    assert reader.directory == tmp_path / "t"
    assert list(reader.frames()) == frames
    assert list(reader.frames()) == frames  # frames() can be iterated again


def test_frame_larger_than_a_block(tmp_path: Path) -> None:
    frames = [SyscallFrame(1, REGS, 5, [MemWrite(0, os.urandom(3 << 20))], 0, ""), ExitFrame(1, 0)]
    write_trace(tmp_path / "t", frames)
    assert read_all(tmp_path / "t") == frames


def test_header_round_trips(tmp_path: Path) -> None:
    header = make_header()
    TraceWriter(tmp_path / "t", header).close()
    reader = TraceReader(tmp_path / "t")
    assert reader.header == header
    assert isinstance(reader.header.rlimit_stack, tuple)
    assert list(reader.frames()) == []


def test_header_defaults(tmp_path: Path) -> None:
    header = TraceHeader("/p", ["p"], "/", (1, 2), 0.0, "k", "c")
    TraceWriter(tmp_path / "t", header).close()
    assert TraceReader(tmp_path / "t").header == header


@settings(max_examples=300, deadline=None)
@given(
    tid=st.integers(-(2**31), 2**31 - 1),
    result=st.integers(-(2**63), 2**63 - 1),
    writes=st.lists(st.tuples(st.integers(0, U64_MAX), st.binary(max_size=40)), max_size=4),
    stream=st.integers(0, 255),
    file_id=st.text(max_size=70),
    output_crc=st.integers(0, 2**32 - 1),
)
def test_fast_syscall_codec_matches_construct_layout(
    tid: int, result: int, writes: list[tuple[int, bytes]], stream: int, file_id: str,
    output_crc: int,
) -> None:
    frame = SyscallFrame(tid, REGS, result, [MemWrite(a, d) for a, d in writes], stream, file_id,
                         output_crc)
    spec = L.SYSCALL.build(
        {
            "tid": tid,
            "regs": REGS,
            "result": result,
            "writes": [{"addr": a, "data": d} for a, d in writes],
            "stream": stream,
            "output_crc": output_crc,
            "file_id": L.encode_text(file_id),
        }
    )
    encoded = encode_frame(frame)
    assert encoded == bytes([L.KIND_SYSCALL]) + spec
    assert decode_frames(encoded, 0, 1, "t") == [frame]


@settings(max_examples=200, deadline=None)
@given(
    tid=st.integers(-(2**31), 2**31 - 1),
    i32=st.integers(-(2**31), 2**31 - 1),
    u32=st.integers(0, 2**32 - 1),
    u64=st.integers(0, U64_MAX),
    data=st.binary(max_size=300),
    flag=st.booleans(),
)
def test_struct_codecs_match_the_construct_layouts(
    tid: int, i32: int, u32: int, u64: int, data: bytes, flag: bool
) -> None:
    siginfo, memory_hash = bytes(range(128)), bytes(range(32))
    watched = data[:len(data) // 16 * 16]
    cases: list[tuple[Frame, int, object, dict[str, object]]] = [
        (SignalFrame(tid, REGS, i32, siginfo, flag), L.KIND_SIGNAL, L.SIGNAL,
         {"tid": tid, "regs": REGS, "signo": i32, "siginfo": siginfo, "deterministic": flag}),
        (InstructionTrapFrame(tid, REGS, u64, u32), L.KIND_INSTRUCTION_TRAP,
         L.INSTRUCTION_TRAP, {"tid": tid, "regs": REGS, "value": u64, "aux": u32}),
        (CpuidFrame(tid, REGS, u32, 0, u32, 2**32 - 1), L.KIND_CPUID, L.CPUID,
         {"tid": tid, "regs": REGS, "eax": u32, "ebx": 0, "ecx": u32, "edx": 2**32 - 1}),
        (ExitFrame(tid, i32), L.KIND_EXIT, L.EXIT, {"tid": tid, "status": i32}),
        (PreemptFrame(tid, REGS, memory_hash, u32 & 0xFF, data, watched), L.KIND_PREEMPT,
         L.PREEMPT, {"tid": tid, "regs": REGS, "memory_hash": memory_hash,
                     "patch_length": u32 & 0xFF, "stack": data, "watched": watched}),
        (SyscallEntryFrame(tid, REGS), L.KIND_SYSCALL_ENTRY, L.SYSCALL_ENTRY,
         {"tid": tid, "regs": REGS}),
        (FlushFrame(tid, data), L.KIND_FLUSH, L.FLUSH, {"tid": tid, "data": data}),
    ]  # fmt: skip
    for frame, kind, layout, fields in cases:
        encoded = encode_frame(frame)
        assert encoded == bytes([kind]) + layout.build(fields)  # type: ignore[attr-defined]
        assert decode_frames(encoded, 0, 1, "t") == [frame]
    block = pack_block(data, u64, u32, zstandard.ZstdCompressor())
    head = L.BLOCK_HEADER.parse(block)
    assert (head.magic, head.first_frame, head.frames, head.raw_size) == (
        L.BLOCK_MAGIC, u64, u32, len(data))
    assert head.header_crc == zlib.crc32(block[: L.BLOCK_HEADER_SIZE - 4])
    assert unpack_block_header(block[: L.BLOCK_HEADER_SIZE], u64, "t") == (
        u64, u32, len(data), head.stored_size, head.data_crc)


@pytest.mark.parametrize(
    "frame",
    [
        SyscallFrame(1, b"short", 0, [], 0, ""),
        SyscallFrame(1, REGS, 2**63, [], 0, ""),
        SignalFrame(1, REGS, 11, b"\0" * 127, True),
        InstructionTrapFrame(1, REGS, -1, 0),
        CpuidFrame(1, REGS, 2**32, 0, 0, 0),
        ExitFrame(1, 2**31),
        "not a frame",
    ],
)
def test_bad_frames_are_refused_and_leave_the_writer_usable(tmp_path: Path, frame: Frame) -> None:
    writer = TraceWriter(tmp_path / "t", make_header())
    with pytest.raises((ValueError, TypeError)):
        writer.write(frame)
    writer.write(ExitFrame(1, 0))
    writer.close()
    assert read_all(tmp_path / "t") == [ExitFrame(1, 0)]


# -- the writer's directory, context manager and lifecycle ----------------------------------


def test_writer_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        TraceWriter(tmp_path / "t", make_header())
    (tmp_path / "e").mkdir()
    TraceWriter(tmp_path / "e", make_header()).close()  # an empty one is fine


def test_writer_after_close(tmp_path: Path) -> None:
    writer = write_trace(tmp_path / "t", [])
    writer.close()  # twice is harmless
    with pytest.raises(ValueError):
        writer.write(ExitFrame(1, 0))


def test_context_manager_closes(tmp_path: Path) -> None:
    with TraceWriter(tmp_path / "t", make_header()) as writer:
        writer.write(ExitFrame(1, 0))
    reader = TraceReader(tmp_path / "t")
    assert reader.complete
    assert list(reader.frames()) == [ExitFrame(1, 0)]


def test_context_manager_on_exception_flushes_but_stays_incomplete(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), TraceWriter(tmp_path / "t", make_header()) as writer:
        writer.write(ExitFrame(1, 0))
        raise RuntimeError("recorder failed")
    reader = TraceReader(tmp_path / "t")
    assert not reader.complete
    assert list(reader.frames()) == [ExitFrame(1, 0)]


def test_unclosed_writer_leaves_flushed_frames_readable(tmp_path: Path, small_blocks: None) -> None:
    frames = numbered(10)
    writer = write_trace(tmp_path / "t", frames, close=False)  # blocks of 4: 8 flushed
    reader = TraceReader(tmp_path / "t")
    assert not reader.complete
    assert list(reader.frames()) == frames[:8]
    writer.flush()
    assert read_all(tmp_path / "t") == frames
    writer.close()
    assert TraceReader(tmp_path / "t").complete


def test_recorder_killed_by_sigkill(tmp_path: Path) -> None:
    script = f"""
import os, signal, sys
sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
from tests.test_trace import make_header, numbered
from rrgdb.trace import TraceWriter
writer = TraceWriter({str(tmp_path / "t")!r}, make_header())
for frame in numbered(700):
    writer.write(frame)
writer.flush()
for frame in numbered(10):
    writer.write(frame)
os.kill(os.getpid(), signal.SIGKILL)
"""
    result = subprocess.run([sys.executable, "-c", script], check=False)
    assert result.returncode == -signal.SIGKILL
    reader = TraceReader(tmp_path / "t")
    assert not reader.complete
    assert list(reader.frames()) == numbered(700)


# -- files ----------------------------------------------------------------------------------


def test_add_file_is_content_addressed_deduplicated_and_keeps_exec_bit(tmp_path: Path) -> None:
    exe = tmp_path / "exe"
    exe.write_bytes(b"\x7fELF program")
    exe.chmod(0o750)
    data = tmp_path / "data"
    data.write_bytes(b"plain data" * 100000)
    same = tmp_path / "same"
    same.write_bytes(data.read_bytes())
    writer = TraceWriter(tmp_path / "t", make_header())
    exe_id = writer.add_file(exe)
    data_id = writer.add_file(str(data))
    assert writer.add_file(exe) == exe_id
    assert writer.add_file(same) == data_id
    writer.close()

    assert exe_id == hashlib.sha256(exe.read_bytes()).hexdigest()
    assert data_id == hashlib.sha256(data.read_bytes()).hexdigest()
    reader = TraceReader(tmp_path / "t")
    exe_copy, data_copy = reader.file_path(exe_id), reader.file_path(data_id)
    assert exe_copy.read_bytes() == exe.read_bytes()
    assert data_copy.read_bytes() == data.read_bytes()
    assert os.access(exe_copy, os.X_OK)
    assert not stat.S_IMODE(data_copy.stat().st_mode) & 0o111
    assert sorted(p.name for p in (tmp_path / "t" / "files").iterdir()) == sorted(
        [exe_id, data_id, "index", "names"]
    )
    index = (tmp_path / "t" / "files" / "index").read_bytes()
    assert index.count(b"\n") == 2


def test_add_file_does_not_rehash_an_unchanged_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"first")
    before = path.stat()
    writer = TraceWriter(tmp_path / "t", make_header())
    first = writer.add_file(path)
    path.write_bytes(b"other")  # same size; restore the mtime so the stat key is unchanged
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert writer.add_file(path) == first
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1))
    assert writer.add_file(path) != first
    writer.close()


def test_file_path_errors(tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"content")
    writer = TraceWriter(tmp_path / "t", make_header())
    file_id = writer.add_file(src)
    writer.close()
    reader = TraceReader(tmp_path / "t")
    for bad in ["../header", "index", "A" * 64, "0" * 64]:
        with pytest.raises(TraceError):
            reader.file_path(bad)
    copy = reader.file_path(file_id)
    copy.chmod(0o644)
    copy.write_bytes(b"short")
    with pytest.raises(TraceError, match="7-byte"):
        reader.file_path(file_id)
    copy.unlink()
    with pytest.raises(TraceError):
        reader.file_path(file_id)


# -- opening bad traces ---------------------------------------------------------------------


def one_line_error(directory: Path) -> str:
    with pytest.raises(TraceError) as info:
        list(TraceReader(directory).frames())
    message = str(info.value)
    assert message and "\n" not in message
    return message


def test_missing_directory(tmp_path: Path) -> None:
    assert "no such trace directory" in one_line_error(tmp_path / "nope")


def test_missing_header(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    assert "not an rrgdb trace" in one_line_error(tmp_path / "t")


def test_wrong_magic(tmp_path: Path) -> None:
    write_trace(tmp_path / "t", [])
    header = tmp_path / "t" / "header"
    header.write_bytes(b"ELF" + header.read_bytes()[3:])
    assert "bad magic" in one_line_error(tmp_path / "t")


def _set_version(trace: Path, version: int) -> None:
    """Rewrites the header's version, and its crc as that version computes it."""
    header = trace / "header"
    data = header.read_bytes()
    body = data[L.PREAMBLE_SIZE :]
    crc = zlib.crc32(body) if version == 4 else zlib.crc32(version.to_bytes(4, "little") + body)
    header.write_bytes(data[:8] + version.to_bytes(4, "little") + crc.to_bytes(4, "little") + body)


def test_other_version(tmp_path: Path) -> None:
    write_trace(tmp_path / "t", [])
    _set_version(tmp_path / "t", FORMAT_VERSION + 1)
    message = one_line_error(tmp_path / "t")
    expected = (f"version {FORMAT_VERSION + 1} is not supported "
                "(this rrgdb reads 4, 5, 6, 7, 8 and 9)")
    assert expected in message


@pytest.mark.parametrize("version", [4, 5, 7])
def test_older_versions_are_read(tmp_path: Path, version: int) -> None:
    """Version 7 differs from 8 only by the SyscallFrame's output_crc, 5 also by the
    PreemptFrame's watched words, 4 also by the CpuidFrame it cannot hold."""
    frames = [f for f in every_kind() if not isinstance(f, SyscallFrame)
              and (version > 5 or not isinstance(f, PreemptFrame))
              and (version > 4 or not isinstance(f, CpuidFrame))]
    write_trace(tmp_path / "t", frames)
    _set_version(tmp_path / "t", version)
    assert list(TraceReader(tmp_path / "t").frames()) == frames


def test_a_version_5_preempt_frame_has_no_watched_words() -> None:
    frame = PreemptFrame(7, REGS, bytes(range(32)), 5, bytes(range(24)))
    old = (bytes([L.KIND_PREEMPT]) + L.PREEMPT_HEAD.pack(7, REGS, bytes(range(32)), 5, 24)
           + bytes(range(24)))
    assert decode_frames(old, 0, 1, "t", version=5) == [frame]
    with pytest.raises(TraceError, match="frame 0 .PreemptFrame. is malformed"):
        decode_frames(old, 0, 1, "t")  # read as version 6: the watched words' size is missing


def test_a_version_7_syscall_frame_has_no_output_crc() -> None:
    frame = SyscallFrame(7, REGS, 5, [MemWrite(16, b"ab")], 1, "")
    old = (bytes([L.KIND_SYSCALL]) + L.SYSCALL_HEAD.pack(7, REGS, 5, 1)
           + L.MEM_WRITE_HEAD.pack(16, 2) + b"ab" + L.SYSCALL_TAIL_BEFORE_CRC.pack(1, 0))
    assert decode_frames(old, 0, 1, "t", version=7) == [frame]
    with pytest.raises(TraceError, match="frame 0 .SyscallFrame."):
        decode_frames(old, 0, 1, "t")  # read as version 8: the output_crc is missing


def test_watched_words_must_be_pairs() -> None:
    with pytest.raises(ValueError, match="pairs"):
        encode_frame(PreemptFrame(7, REGS, bytes(range(32)), 5, b"", bytes(8)))
    encoded = encode_frame(PreemptFrame(7, REGS, bytes(range(32)), 5, b"", bytes(16)))
    damaged = encoded[:-20] + struct.pack("<I", 8) + bytes(8)
    with pytest.raises(TraceError, match="not .address, value. pairs"):
        decode_frames(damaged, 0, 1, "t")


def test_missing_events_file(tmp_path: Path) -> None:
    write_trace(tmp_path / "t", [])
    (tmp_path / "t" / "events").unlink()
    one_line_error(tmp_path / "t")


# -- truncation and corruption --------------------------------------------------------------


def test_truncated_last_block(tmp_path: Path, small_blocks: None) -> None:
    frames = numbered(10)
    write_trace(tmp_path / "t", frames, close=False).flush()
    events = tmp_path / "t" / "events"
    data = events.read_bytes()
    last_block = data.rindex(L.BLOCK_MAGIC)
    for end in range(last_block, len(data)):
        events.write_bytes(data[:end])
        assert read_all(tmp_path / "t") == frames[:8]


def test_truncated_complete_trace_is_corrupt(tmp_path: Path, small_blocks: None) -> None:
    write_trace(tmp_path / "t", numbered(10))
    events = tmp_path / "t" / "events"
    data = events.read_bytes()
    for end in range(data.rindex(L.BLOCK_MAGIC), len(data)):
        events.write_bytes(data[:end])
        assert "truncated" in one_line_error(tmp_path / "t")


def test_every_byte_flip_is_detected(tmp_path: Path, small_blocks: None) -> None:
    write_trace(tmp_path / "t", every_kind()[1:])
    for name in ["events", "header", "complete"]:
        path = tmp_path / "t" / name
        data = path.read_bytes()
        for offset in range(len(data)):
            for xor in (0x01, 0x80):
                flipped = bytearray(data)
                flipped[offset] ^= xor
                path.write_bytes(flipped)
                one_line_error(tmp_path / "t")
        path.write_bytes(data)


def test_reordered_blocks_are_detected(tmp_path: Path, small_blocks: None) -> None:
    writer = write_trace(tmp_path / "t", numbered(8), close=False)
    events = tmp_path / "t" / "events"
    data = events.read_bytes()
    second = data.index(L.BLOCK_MAGIC, 1)
    events.write_bytes(data[second:] + data[:second])
    assert "expected 0" in one_line_error(tmp_path / "t")
    writer.close()


@settings(max_examples=1000, deadline=None)
@given(raw=st.binary(max_size=600), count=st.integers(0, 5))
def test_garbage_inside_a_valid_block_is_a_trace_error(raw: bytes, count: int) -> None:
    # A block's crc makes this unreachable by accident; the decoder must still be robust.
    kinds = [bytes([k]) for k in range(1, 6)]
    for candidate in [raw, *(k + raw for k in kinds)]:
        try:
            decode_frames(candidate, 7, count, "t")
        except TraceError as e:
            assert "\n" not in str(e)


@pytest.fixture(scope="module")
def reference_trace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The files of a small complete trace with two copied files, by relative path."""
    root = tmp_path_factory.mktemp("reference")
    src = root / "src"
    src.write_bytes(b"mapped file")
    writer = TraceWriter(root / "t", make_header())
    writer.add_file(src)
    writer.add_file(Path(__file__))
    for frame in every_kind()[1:] * 3:
        writer.write(frame)
        writer.flush()
    writer.close()
    return {
        str(p.relative_to(root / "t")): p.read_bytes()
        for p in sorted((root / "t").rglob("*"))
        if p.is_file()
    }


def _mutate(data: bytes, kind: str, offset: int, value: bytes) -> bytes | None:
    offset = offset % (len(data) + 1)
    if kind == "flip" and data:
        offset %= len(data)
        return data[:offset] + bytes([data[offset] ^ (value[0] | 1)]) + data[offset + 1 :]
    if kind == "truncate":
        return data[:offset]
    if kind == "insert":
        return data[:offset] + value + data[offset:]
    if kind == "delete":
        return data[:offset] + data[offset + len(value) :]
    if kind == "remove":
        return None
    return data


@settings(max_examples=400, deadline=None)
@given(
    mutations=st.lists(
        st.tuples(
            st.integers(0, 10),
            st.sampled_from(["flip", "truncate", "insert", "delete", "remove"]),
            st.integers(0, 1 << 20),
            st.binary(min_size=1, max_size=40),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_traces_fail_only_with_trace_error(
    reference_trace: dict[str, bytes], mutations: list[tuple[int, str, int, bytes]]
) -> None:
    files: dict[str, bytes | None] = dict(reference_trace)
    names = sorted(files)
    for which, kind, offset, value in mutations:
        name = names[which % len(names)]
        current = files[name]
        files[name] = None if current is None else _mutate(current, kind, offset, value)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "files").mkdir()
        for name, data in files.items():
            if data is not None:
                (root / name).write_bytes(data)
        try:
            reader = TraceReader(root)
            frames = list(reader.frames())
            for file_id in names:
                if L.FILES_DIR + "/" in file_id and not file_id.endswith("index"):
                    reader.file_path(file_id.split("/")[1])
        except TraceError as e:
            assert "\n" not in str(e)
            return
        # Survived: then it must read back as (a prefix of) what was written.
        written = every_kind()[1:] * 3
        assert frames == written[: len(frames)]
        assert len(frames) == len(written) or not reader.complete


def test_file_names_map_the_programs_paths_to_copies(tmp_path: Path) -> None:
    """A debugger asks for files by the path the program used; the trace remembers it."""
    lib = tmp_path / "libdemo.so"
    lib.write_bytes(b"\x7fELF fake library")
    writer = TraceWriter(tmp_path / "t", make_header())
    file_id = writer.add_file(lib, name="/usr/lib/libdemo.so")
    assert writer.add_file(lib, name="/usr/lib/libdemo.so") == file_id
    writer.close()
    names = TraceReader(tmp_path / "t").file_names()
    assert names == {"/usr/lib/libdemo.so": file_id}


# -- the file cache shared by recordings ----------------------------------------------------


def test_file_cache_links_an_unchanged_file_and_never_serves_a_changed_one(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    lib = tmp_path / "lib.so"
    lib.write_bytes(b"first version")
    lib.chmod(0o755)

    def record_once(name: str) -> tuple[str, Path]:
        writer = TraceWriter(tmp_path / name, make_header(), file_cache=cache)
        file_id = writer.add_file(lib)
        writer.close()
        return file_id, TraceReader(tmp_path / name).file_path(file_id)

    first_id, first_copy = record_once("t1")
    second_id, second_copy = record_once("t2")
    assert second_id == first_id
    assert os.path.samefile(first_copy, second_copy)  # linked, not copied again
    assert os.access(second_copy, os.X_OK)
    assert not os.access(second_copy, os.W_OK) or os.geteuid() == 0

    # Same size, mtime put back: only the ctime tells, and it must.
    before = lib.stat()
    lib.write_bytes(b"other version")
    os.utime(lib, ns=(before.st_atime_ns, before.st_mtime_ns))
    third_id, third_copy = record_once("t3")
    assert third_id == hashlib.sha256(b"other version").hexdigest() != first_id
    assert third_copy.read_bytes() == b"other version"
    assert first_copy.read_bytes() == b"first version"  # the cache's copy is untouched


def test_file_cache_is_optional(tmp_path: Path) -> None:
    """A cache that cannot be created (no home, another filesystem) only costs a copy."""
    (tmp_path / "not-a-dir").write_bytes(b"")
    for _ in range(2):
        trace = tmp_path / f"t{_}"
        writer = TraceWriter(trace, make_header(), file_cache=tmp_path / "not-a-dir" / "c")
        file_id = writer.add_file(Path(__file__))
        writer.close()
        assert TraceReader(trace).file_path(file_id).read_bytes() == Path(__file__).read_bytes()


def test_file_cache_prunes_objects_no_trace_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_file_cache, "PRUNE_AGE", -1)  # any unlinked object is old enough
    cache = tmp_path / "cache"
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(b"old library")
    new.write_bytes(b"new library")
    writer = TraceWriter(tmp_path / "t1", make_header(), file_cache=cache)
    old_id = writer.add_file(old)
    writer.close()
    shutil.rmtree(tmp_path / "t1")  # no trace links the old copy any more

    writer = TraceWriter(tmp_path / "t2", make_header(), file_cache=cache)
    new_id = writer.add_file(new)
    writer.close()
    assert sorted(p.name for p in (cache / "objects").iterdir()) == [new_id]
    assert [os.readlink(p) for p in (cache / "keys").iterdir()] == [new_id]
    assert old_id != new_id


def test_file_cache_defaults_to_the_home_cache_even_before_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A home without ~/.cache (this machine's) still gets a cache: recordings that copy
    every library again cost ~40 ms each."""
    monkeypatch.delenv("RRGDB_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _file_cache.default_cache_dir() == tmp_path / ".cache" / "rrgdb" / "files"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _file_cache.default_cache_dir() == tmp_path / "xdg" / "rrgdb" / "files"
    monkeypatch.setenv("RRGDB_CACHE_DIR", str(tmp_path / "mine"))
    assert _file_cache.default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("RRGDB_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "gone"))
    assert _file_cache.default_cache_dir() is None

    lib = tmp_path / "lib.so"
    lib.write_bytes(b"a library")
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("t1", "t2"):
        writer = TraceWriter(tmp_path / name, make_header())
        file_id = writer.add_file(lib)
        writer.close()
    assert os.path.samefile(TraceReader(tmp_path / "t1").file_path(file_id),
                            TraceReader(tmp_path / "t2").file_path(file_id))
