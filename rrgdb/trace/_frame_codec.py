"""Frames to bytes and back: a kind byte, then the kind's layout from _layout.

Each kind has one encoder and one decoder in a table keyed by type and kind byte. Encoders
raise ValueError/TypeError (a bug in the caller); decode_frames raises only TraceError.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import replace
from io import BytesIO
from typing import Any

from construct import Container

from . import _layout as L
from ._frames import (
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
)
from ._layout import decode_text, encode_text

_Encode = Callable[[Any], bytes]
_Decode = Callable[[BytesIO], Frame]


def _fixed(value: bytes, size: int, name: str) -> bytes:
    # struct's "s" pads or cuts to the size instead of refusing another length.
    if len(value) != size or type(value) is not bytes:
        raise ValueError(f"{name} must be {size} bytes, got {value!r:.60}")
    return value


# -- SyscallFrame: struct, for speed (see _layout.SYSCALL_HEAD) -----------------------------

_HEAD = L.SYSCALL_HEAD
_WRITE = L.MEM_WRITE_HEAD
_TAIL = L.SYSCALL_TAIL
_TAIL_BEFORE_CRC = L.SYSCALL_TAIL_BEFORE_CRC


def _encode_syscall(f: SyscallFrame) -> bytes:
    parts = [_HEAD.pack(f.tid, _fixed(f.regs, L.REGS_SIZE, "regs"), f.result, len(f.writes))]
    for w in f.writes:
        parts += (_WRITE.pack(w.addr, len(w.data)), w.data)
    file_id = encode_text(f.file_id)
    parts += (_TAIL.pack(f.stream, f.output_crc, len(file_id)), file_id)
    return b"".join(parts)


def _decode_syscall_head(stream: BytesIO) -> tuple[int, bytes, int, list[MemWrite]]:
    read = stream.read
    tid, regs, result, count = _HEAD.unpack(read(_HEAD.size))
    writes = []
    for _ in range(count):
        addr, size = _WRITE.unpack(read(_WRITE.size))
        writes.append(MemWrite(addr, read(size)))
    return tid, regs, result, writes


def _decode_syscall(stream: BytesIO) -> SyscallFrame:
    tid, regs, result, writes = _decode_syscall_head(stream)
    stream_no, crc, size = _TAIL.unpack(stream.read(_TAIL.size))
    return SyscallFrame(tid, regs, result, writes, stream_no, decode_text(stream.read(size)),
                        crc)


def _decode_syscall_before_crc(stream: BytesIO) -> SyscallFrame:
    """A SyscallFrame of a trace older than L.OUTPUT_CRC_SINCE."""
    tid, regs, result, writes = _decode_syscall_head(stream)
    stream_no, size = _TAIL_BEFORE_CRC.unpack(stream.read(_TAIL_BEFORE_CRC.size))
    return SyscallFrame(tid, regs, result, writes, stream_no, decode_text(stream.read(size)))


# -- ExecFrame: construct, through dicts of its fields ---------------------------------------


def _enc_write(w: MemWrite) -> dict[str, Any]:
    return {"addr": w.addr, "data": w.data}


def _dec_write(c: Container) -> MemWrite:
    return MemWrite(c["addr"], c["data"])


def _enc_mapping(m: Mapping) -> dict[str, Any]:
    return {
        "start": m.start,
        "end": m.end,
        "prot": m.prot,
        "flags": m.flags,
        "offset": m.offset,
        "path": encode_text(m.path),
        "file_id": encode_text(m.file_id),
    }


def _dec_mapping(c: Container) -> Mapping:
    return Mapping(
        c["start"], c["end"], c["prot"], c["flags"], c["offset"], decode_text(c["path"]),
        decode_text(c["file_id"]),
    )  # fmt: skip


def _enc_exec(f: ExecFrame) -> dict[str, Any]:
    return {
        "tid": f.tid,
        "regs": _fixed(f.regs, L.REGS_SIZE, "regs"),
        "exe_path": encode_text(f.exe_path),
        "exe_file_id": encode_text(f.exe_file_id),
        "argv": [{"item": a} for a in f.argv],
        "envp": [{"item": e} for e in f.envp],
        "mappings": [_enc_mapping(m) for m in f.mappings],
        "memory": [_enc_write(w) for w in f.memory],
    }


def _dec_exec(c: Container) -> ExecFrame:
    return ExecFrame(
        c["tid"],
        c["regs"],
        decode_text(c["exe_path"]),
        decode_text(c["exe_file_id"]),
        [a["item"] for a in c["argv"]],
        [e["item"] for e in c["envp"]],
        [_dec_mapping(m) for m in c["mappings"]],
        [_dec_write(w) for w in c["memory"]],
    )


# -- the fixed-size kinds: one struct each (see _layout) ------------------------------------


def _encode_signal(f: SignalFrame) -> bytes:
    regs = _fixed(f.regs, L.REGS_SIZE, "regs")
    siginfo = _fixed(f.siginfo, L.SIGINFO_SIZE, "siginfo")
    return L.SIGNAL_STRUCT.pack(f.tid, regs, f.signo, siginfo, bool(f.deterministic))


def _decode_signal(stream: BytesIO) -> SignalFrame:
    return SignalFrame(*L.SIGNAL_STRUCT.unpack(stream.read(L.SIGNAL_STRUCT.size)))


def _encode_trap(f: InstructionTrapFrame) -> bytes:
    regs = _fixed(f.regs, L.REGS_SIZE, "regs")
    return L.INSTRUCTION_TRAP_STRUCT.pack(f.tid, regs, f.value, f.aux)


def _decode_trap(stream: BytesIO) -> InstructionTrapFrame:
    size = L.INSTRUCTION_TRAP_STRUCT.size
    return InstructionTrapFrame(*L.INSTRUCTION_TRAP_STRUCT.unpack(stream.read(size)))


def _encode_cpuid(f: CpuidFrame) -> bytes:
    regs = _fixed(f.regs, L.REGS_SIZE, "regs")
    return L.CPUID_STRUCT.pack(f.tid, regs, f.eax, f.ebx, f.ecx, f.edx)


def _decode_cpuid(stream: BytesIO) -> CpuidFrame:
    return CpuidFrame(*L.CPUID_STRUCT.unpack(stream.read(L.CPUID_STRUCT.size)))


def _encode_exit(f: ExitFrame) -> bytes:
    return L.EXIT_STRUCT.pack(f.tid, f.status)


def _decode_exit(stream: BytesIO) -> ExitFrame:
    return ExitFrame(*L.EXIT_STRUCT.unpack(stream.read(L.EXIT_STRUCT.size)))


def _encode_preempt(f: PreemptFrame) -> bytes:
    regs = _fixed(f.regs, L.REGS_SIZE, "regs")
    memory_hash = _fixed(f.memory_hash, L.MEMORY_HASH_SIZE, "memory_hash")
    if type(f.stack) is not bytes or type(f.watched) is not bytes:
        raise TypeError("PreemptFrame.stack and .watched must be bytes")
    if len(f.watched) % 16:
        raise ValueError("PreemptFrame.watched must be (address, value) u64 pairs")
    head = L.PREEMPT_HEAD.pack(f.tid, regs, memory_hash, f.patch_length, len(f.stack))
    return head + f.stack + L.BLOB_SIZE.pack(len(f.watched)) + f.watched


def _decode_preempt(stream: BytesIO) -> PreemptFrame:
    frame = _decode_preempt_unwatched(stream)
    size, = L.BLOB_SIZE.unpack(stream.read(L.BLOB_SIZE.size))
    watched = stream.read(size)
    if len(watched) % 16:
        raise struct.error(f"{len(watched)} bytes of watched words are not (address, "
                           "value) pairs")
    return replace(frame, watched=watched)


def _decode_preempt_unwatched(stream: BytesIO) -> PreemptFrame:
    """A PreemptFrame of a trace older than L.WATCHED_SINCE."""
    tid, regs, memory_hash, patch_length, size = L.PREEMPT_HEAD.unpack(
        stream.read(L.PREEMPT_HEAD.size))
    return PreemptFrame(tid, regs, memory_hash, patch_length, stream.read(size))


def _encode_entry(f: SyscallEntryFrame) -> bytes:
    return L.SYSCALL_ENTRY_STRUCT.pack(f.tid, _fixed(f.regs, L.REGS_SIZE, "regs"))


def _decode_entry(stream: BytesIO) -> SyscallEntryFrame:
    size = L.SYSCALL_ENTRY_STRUCT.size
    return SyscallEntryFrame(*L.SYSCALL_ENTRY_STRUCT.unpack(stream.read(size)))


def _encode_flush(f: FlushFrame) -> bytes:
    if type(f.data) is not bytes:
        raise TypeError("FlushFrame.data must be bytes")
    return L.FLUSH_HEAD.pack(f.tid, len(f.data)) + f.data


def _decode_flush(stream: BytesIO) -> FlushFrame:
    tid, size = L.FLUSH_HEAD.unpack(stream.read(L.FLUSH_HEAD.size))
    return FlushFrame(tid, stream.read(size))


_EXEC = L.CompiledOnReuse(L.EXEC)


def _encode_exec(f: ExecFrame) -> bytes:
    return _EXEC.build(_enc_exec(f))


def _decode_exec(stream: BytesIO) -> ExecFrame:
    return _dec_exec(_EXEC.parse_stream(stream))


# One row per frame kind: its type, kind byte, encoder and decoder.
_KINDS: tuple[tuple[type, int, _Encode, _Decode], ...] = (
    (ExecFrame, L.KIND_EXEC, _encode_exec, _decode_exec),
    (SyscallFrame, L.KIND_SYSCALL, _encode_syscall, _decode_syscall),
    (SignalFrame, L.KIND_SIGNAL, _encode_signal, _decode_signal),
    (InstructionTrapFrame, L.KIND_INSTRUCTION_TRAP, _encode_trap, _decode_trap),
    (CpuidFrame, L.KIND_CPUID, _encode_cpuid, _decode_cpuid),
    (ExitFrame, L.KIND_EXIT, _encode_exit, _decode_exit),
    (PreemptFrame, L.KIND_PREEMPT, _encode_preempt, _decode_preempt),
    (FlushFrame, L.KIND_FLUSH, _encode_flush, _decode_flush),
    (SyscallEntryFrame, L.KIND_SYSCALL_ENTRY, _encode_entry, _decode_entry),
)
_ENCODERS = {t: (bytes([kind]), encode) for t, kind, encode, _ in _KINDS}
_DECODERS = {bytes([kind]): (t.__name__, decode) for t, kind, _, decode in _KINDS}
# Older traces: before L.OUTPUT_CRC_SINCE a SyscallFrame has no output_crc; before
# L.WATCHED_SINCE a PreemptFrame ends after the stack too.
_DECODERS_BEFORE_CRC = {**_DECODERS, bytes([L.KIND_SYSCALL]): (SyscallFrame.__name__,
                                                              _decode_syscall_before_crc)}
_UNWATCHED_DECODERS = {**_DECODERS_BEFORE_CRC,
                       bytes([L.KIND_PREEMPT]): (PreemptFrame.__name__,
                                                 _decode_preempt_unwatched)}


def encode_frame(frame: Frame) -> bytes:
    """The kind byte and fields of frame."""
    try:
        kind, encode = _ENCODERS[type(frame)]
    except KeyError:
        raise TypeError(f"not a trace frame: {frame!r:.80}") from None
    try:
        return kind + encode(frame)
    except (*L.LAYOUT_ERRORS, AttributeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"cannot encode {frame!r:.120}: {e}") from e


def decode_frames(raw: bytes, first: int, count: int, where: str,
                  version: int = L.FORMAT_VERSION) -> list[Frame]:
    """The count frames (numbered from first) that make up raw, exactly, as trace format
    version writes them."""
    if version >= L.OUTPUT_CRC_SINCE:
        decoders = _DECODERS
    elif version >= L.WATCHED_SINCE:
        decoders = _DECODERS_BEFORE_CRC
    else:
        decoders = _UNWATCHED_DECODERS
    # Bytes fields are read with a bare read(), which comes back short at the end of the
    # buffer instead of failing; one byte of padding turns any such overrun into a position
    # past len(raw), which the loop checks after every frame.
    stream = BytesIO(raw + b"\0")
    end = len(raw)
    read = stream.read
    tell = stream.tell
    frames: list[Frame] = []
    append = frames.append
    for index in range(first, first + count):
        kind = read(1)
        decoder = decoders.get(kind)
        if decoder is None:
            raise TraceError(f"{where}: frame {index} has unknown kind {kind.hex() or 'EOF'}")
        name, decode = decoder
        try:
            append(decode(stream))
        except L.LAYOUT_ERRORS as e:
            raise TraceError(
                f"{where}: frame {index} ({name}) is malformed: {L.layout_error_text(e)}"
            ) from e
        if tell() > end:
            raise TraceError(f"{where}: frame {index} ({name}) runs past the end of its block")
    if tell() != end:
        raise TraceError(f"{where}: {end - tell()} stray bytes after frame {first + count - 1}")
    return frames
