"""Conversions between the trace's dataclasses and the bytes of _layout, with validation.

Encoders raise ValueError/TypeError (a bug in the caller); decoders raise only TraceError,
whose message starts with `where` (a file name, block and frame index) so it needs no
further context.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from io import BytesIO
from typing import Any

import zstandard
from construct import Construct, ConstructError, Container

from . import _layout as L
from ._frames import (
    ExecFrame,
    ExitFrame,
    Frame,
    InstructionTrapFrame,
    Mapping,
    MemWrite,
    SignalFrame,
    SyscallFrame,
    TraceError,
    TraceHeader,
)

_LAYOUT_ERRORS = (ConstructError, struct.error)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _fixed(value: bytes, size: int, name: str) -> bytes:
    # Compiled construct writes Bytes(n) fields without checking their length.
    if len(value) != size or type(value) is not bytes:
        raise ValueError(f"{name} must be {size} bytes, got {value!r:.60}")
    return value


# -- frames: one encoder and one decoder per kind, in tables keyed by type and kind byte ----


def _enc_write(w: MemWrite) -> dict[str, Any]:
    return {"addr": w.addr, "data": w.data}


def _dec_writes(items: list[Container]) -> list[MemWrite]:
    return [MemWrite(w["addr"], w["data"]) for w in items]


def _enc_mapping(m: Mapping) -> dict[str, Any]:
    return {
        "start": m.start,
        "end": m.end,
        "prot": m.prot,
        "flags": m.flags,
        "offset": m.offset,
        "path": _raw(m.path),
        "file_id": _raw(m.file_id),
    }


def _dec_mapping(c: Container) -> Mapping:
    return Mapping(
        c["start"], c["end"], c["prot"], c["flags"], c["offset"], _text(c["path"]),
        _text(c["file_id"]),
    )  # fmt: skip


def _enc_exec(f: ExecFrame) -> dict[str, Any]:
    return {
        "tid": f.tid,
        "regs": _fixed(f.regs, L.REGS_SIZE, "regs"),
        "exe_path": _raw(f.exe_path),
        "exe_file_id": _raw(f.exe_file_id),
        "argv": [{"item": a} for a in f.argv],
        "envp": [{"item": e} for e in f.envp],
        "mappings": [_enc_mapping(m) for m in f.mappings],
        "memory": [_enc_write(w) for w in f.memory],
    }


def _dec_exec(c: Container) -> ExecFrame:
    return ExecFrame(
        c["tid"],
        c["regs"],
        _text(c["exe_path"]),
        _text(c["exe_file_id"]),
        [a["item"] for a in c["argv"]],
        [e["item"] for e in c["envp"]],
        [_dec_mapping(m) for m in c["mappings"]],
        _dec_writes(c["memory"]),
    )


def _enc_syscall(f: SyscallFrame) -> dict[str, Any]:
    # The hot path of a recording: _enc_write and _raw are inlined.
    return {
        "tid": f.tid,
        "regs": _fixed(f.regs, L.REGS_SIZE, "regs"),
        "result": f.result,
        "writes": [{"addr": w.addr, "data": w.data} for w in f.writes],
        "stream": f.stream,
        "file_id": f.file_id.encode("utf-8", "surrogateescape"),
    }


def _dec_syscall(c: Container) -> SyscallFrame:
    return SyscallFrame(
        c["tid"], c["regs"], c["result"], _dec_writes(c["writes"]), c["stream"],
        _text(c["file_id"]),
    )  # fmt: skip


def _enc_signal(f: SignalFrame) -> dict[str, Any]:
    return {
        "tid": f.tid,
        "regs": _fixed(f.regs, L.REGS_SIZE, "regs"),
        "signo": f.signo,
        "siginfo": _fixed(f.siginfo, L.SIGINFO_SIZE, "siginfo"),
        "deterministic": bool(f.deterministic),
    }


def _dec_signal(c: Container) -> SignalFrame:
    return SignalFrame(c["tid"], c["regs"], c["signo"], c["siginfo"], c["deterministic"])


def _enc_trap(f: InstructionTrapFrame) -> dict[str, Any]:
    return {
        "tid": f.tid,
        "regs": _fixed(f.regs, L.REGS_SIZE, "regs"),
        "value": f.value,
        "aux": f.aux,
    }


def _dec_trap(c: Container) -> InstructionTrapFrame:
    return InstructionTrapFrame(c["tid"], c["regs"], c["value"], c["aux"])


def _enc_exit(f: ExitFrame) -> dict[str, Any]:
    return {"tid": f.tid, "status": f.status}


def _dec_exit(c: Container) -> ExitFrame:
    return ExitFrame(c["tid"], c["status"])


_Encoder = tuple[bytes, Construct, Callable[[Any], dict[str, Any]]]
_Decoder = tuple[str, Construct, Callable[[Container], Frame]]

# One row per frame kind: its type, kind byte, layout, encoder and decoder.
_KINDS = (
    (ExecFrame, L.KIND_EXEC, L.EXEC, _enc_exec, _dec_exec),
    (SyscallFrame, L.KIND_SYSCALL, L.SYSCALL, _enc_syscall, _dec_syscall),
    (SignalFrame, L.KIND_SIGNAL, L.SIGNAL, _enc_signal, _dec_signal),
    (InstructionTrapFrame, L.KIND_INSTRUCTION_TRAP, L.INSTRUCTION_TRAP, _enc_trap, _dec_trap),
    (ExitFrame, L.KIND_EXIT, L.EXIT, _enc_exit, _dec_exit),
)
_ENCODERS: dict[type, _Encoder] = {t: (bytes([k]), lay, enc) for t, k, lay, enc, _ in _KINDS}
_DECODERS: dict[bytes, _Decoder] = {
    bytes([k]): (t.__name__, lay, dec) for t, k, lay, _, dec in _KINDS
}


def encode_frame(frame: Frame, out: BytesIO) -> None:
    """Append frame's kind byte and fields to out; on error out is left as it was."""
    try:
        kind, layout, fields = _ENCODERS[type(frame)]
    except KeyError:
        raise TypeError(f"not a trace frame: {frame!r:.80}") from None
    start = out.tell()
    try:
        out.write(kind)
        layout.build_stream(fields(frame), out)
    except (*_LAYOUT_ERRORS, AttributeError, KeyError, TypeError, ValueError) as e:
        out.seek(start)
        out.truncate()
        raise ValueError(f"cannot encode {frame!r:.120}: {e}") from e


def decode_frames(raw: bytes, first: int, count: int, where: str) -> list[Frame]:
    """The count frames (numbered from first) that make up raw, exactly."""
    # Compiled construct reads Bytes fields with a bare read(), which comes back short at
    # the end of the buffer instead of failing; one byte of padding turns any such overrun
    # into a position past len(raw), which the loop checks after every frame.
    stream = BytesIO(raw + b"\0")
    end = len(raw)
    read = stream.read
    tell = stream.tell
    frames: list[Frame] = []
    append = frames.append
    for index in range(first, first + count):
        kind = read(1)
        decoder = _DECODERS.get(kind)
        if decoder is None:
            raise TraceError(f"{where}: frame {index} has unknown kind {kind.hex() or 'EOF'}")
        name, layout, decode = decoder
        try:
            append(decode(layout.parse_stream(stream)))
        except _LAYOUT_ERRORS as e:
            raise TraceError(f"{where}: frame {index} ({name}) is malformed: {e}") from e
        if tell() > end:
            raise TraceError(f"{where}: frame {index} ({name}) runs past the end of its block")
    if tell() != end:
        raise TraceError(f"{where}: {end - tell()} stray bytes after frame {first + count - 1}")
    return frames


# -- blocks ---------------------------------------------------------------------------------


def pack_block(raw: bytes, first: int, count: int, compressor: zstandard.ZstdCompressor) -> bytes:
    """A whole block (header + zstd-compressed frames) ready to append to the events file."""
    stored = compressor.compress(raw)
    fields = {
        "magic": L.BLOCK_MAGIC,
        "first_frame": first,
        "frames": count,
        "raw_size": len(raw),
        "stored_size": len(stored),
        "data_crc": zlib.crc32(stored),
        "header_crc": 0,
    }
    fields["header_crc"] = zlib.crc32(L.BLOCK_HEADER.build(fields)[: L.BLOCK_HEADER_SIZE - 4])
    return L.BLOCK_HEADER.build(fields) + stored


def unpack_block_header(data: bytes, first: int, where: str) -> Container:
    """The checked header of the block expected to start with frame number first."""
    head = L.BLOCK_HEADER.parse(data)
    if head.magic != L.BLOCK_MAGIC or head.header_crc != zlib.crc32(data[:-4]):
        raise TraceError(f"{where}: block header is corrupt")
    if head.first_frame != first:
        raise TraceError(f"{where}: block starts at frame {head.first_frame}, expected {first}")
    return head


def unpack_block_data(
    head: Container, stored: bytes, decompressor: zstandard.ZstdDecompressor, where: str
) -> bytes:
    """The raw frame bytes of a block whose header and stored bytes were read whole."""
    if zlib.crc32(stored) != head.data_crc:
        raise TraceError(f"{where}: block data is corrupt (crc mismatch)")
    try:
        raw = decompressor.decompress(stored, max_output_size=head.raw_size)
    except zstandard.ZstdError as e:
        raise TraceError(f"{where}: block data does not decompress: {e}") from e
    if len(raw) != head.raw_size:
        raise TraceError(f"{where}: block holds {len(raw)} bytes, header says {head.raw_size}")
    return raw


# -- header and completion marker -----------------------------------------------------------


def encode_header(header: TraceHeader) -> bytes:
    """The whole header file."""
    fields = {
        "program": _raw(header.program),
        "argv": [{"item": _raw(a)} for a in header.argv],
        "cwd": _raw(header.cwd),
        "rlimit_soft": header.rlimit_stack[0],
        "rlimit_hard": header.rlimit_stack[1],
        "created": header.created,
        "kernel": _raw(header.kernel),
        "cpu": _raw(header.cpu),
        "syscallbuf": bool(header.syscallbuf),
        "extra": [{"key": _raw(k), "value": _raw(v)} for k, v in header.extra.items()],
    }
    try:
        body = L.HEADER_BODY.build(fields)
    except _LAYOUT_ERRORS as e:
        raise ValueError(f"cannot encode {header!r:.120}: {e}") from e
    preamble = {"magic": L.HEADER_MAGIC, "version": L.FORMAT_VERSION, "crc": zlib.crc32(body)}
    return L.PREAMBLE.build(preamble) + body


def decode_header(data: bytes, where: str) -> TraceHeader:
    """The header from the header file's bytes; checks magic, version and crc in that order."""
    if len(data) < L.PREAMBLE_SIZE or not data.startswith(L.HEADER_MAGIC):
        raise TraceError(f"{where}: not an rrgdb trace (bad magic)")
    preamble = L.PREAMBLE.parse(data)
    if preamble.version != L.FORMAT_VERSION:
        raise TraceError(
            f"{where}: trace format version {preamble.version} is not supported "
            f"(this rrgdb reads {L.FORMAT_VERSION})"
        )
    body = data[L.PREAMBLE_SIZE :]
    if zlib.crc32(body) != preamble.crc:
        raise TraceError(f"{where}: header is corrupt (crc mismatch)")
    try:
        c = L.HEADER_BODY.parse(body)
        return TraceHeader(
            program=_text(c.program),
            argv=[_text(a.item) for a in c.argv],
            cwd=_text(c.cwd),
            rlimit_stack=(c.rlimit_soft, c.rlimit_hard),
            created=c.created,
            kernel=_text(c.kernel),
            cpu=_text(c.cpu),
            syscallbuf=c.syscallbuf,
            extra={_text(e.key): _text(e.value) for e in c.extra},
        )
    except _LAYOUT_ERRORS as e:
        raise TraceError(f"{where}: header is malformed: {e}") from e


def encode_complete(frames: int, events_size: int) -> bytes:
    """The whole completion marker file."""
    fields = {"magic": L.COMPLETE_MAGIC, "frames": frames, "events_size": events_size, "crc": 0}
    fields["crc"] = zlib.crc32(L.COMPLETE.build(fields)[: L.COMPLETE_SIZE - 4])
    return L.COMPLETE.build(fields)


def decode_complete(data: bytes, where: str) -> tuple[int, int]:
    """(frames, events_size) from the completion marker's bytes."""
    if len(data) != L.COMPLETE_SIZE:
        raise TraceError(f"{where}: completion marker is corrupt (wrong size)")
    c = L.COMPLETE.parse(data)
    if c.magic != L.COMPLETE_MAGIC or c.crc != zlib.crc32(data[:-4]):
        raise TraceError(f"{where}: completion marker is corrupt")
    return c.frames, c.events_size


# -- files/index: one text line "<file_id> <size>\n" per copied file ------------------------

FILE_ID = re.compile(r"[0-9a-f]{64}")
_INDEX_LINE = re.compile(rb"([0-9a-f]{64}) ([0-9]{1,20})")


def encode_index_entry(file_id: str, size: int) -> bytes:
    """One line of files/index."""
    return f"{file_id} {size}\n".encode()


def decode_index(data: bytes, allow_torn_tail: bool, where: str) -> dict[str, int]:
    """file_id → size from the bytes of files/index."""
    lines = data.split(b"\n")
    if lines.pop() and not allow_torn_tail:
        raise TraceError(f"{where}: last entry is truncated")
    index: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        match = _INDEX_LINE.fullmatch(line)
        if match is None:
            raise TraceError(f"{where}: line {number} is corrupt")
        index[match[1].decode()] = int(match[2])
    return index
