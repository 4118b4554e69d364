"""The trace's containers to bytes and back: blocks, header, completion marker, file index.

Encoders raise ValueError (a bug in the caller); decoders raise only TraceError, whose
message starts with `where` (a file name, and block index) so it needs no further context.
"""

from __future__ import annotations

import re
import zlib
from typing import NamedTuple

import zstandard

from . import _layout as L
from ._frames import TraceError, TraceHeader
from ._layout import LAYOUT_ERRORS, decode_text, encode_text, layout_error_text

# -- blocks ---------------------------------------------------------------------------------


class BlockHeader(NamedTuple):
    """The fields of a block header (L.BLOCK_HEADER) but its magic and crc."""

    first_frame: int
    frames: int
    raw_size: int
    stored_size: int
    data_crc: int


def pack_block(raw: bytes, first: int, count: int, compressor: zstandard.ZstdCompressor) -> bytes:
    """A whole block (header + zstd-compressed frames) ready to append to the events file."""
    stored = compressor.compress(raw)
    head = L.BLOCK_HEADER_STRUCT.pack(
        L.BLOCK_MAGIC, first, count, len(raw), len(stored), zlib.crc32(stored), 0
    )[:-4]
    return head + zlib.crc32(head).to_bytes(4, "little") + stored


def unpack_block_header(data: bytes, first: int, where: str) -> BlockHeader:
    """The checked header of the block expected to start with frame number first."""
    magic, *fields, header_crc = L.BLOCK_HEADER_STRUCT.unpack(data)
    head = BlockHeader(*fields)
    if magic != L.BLOCK_MAGIC or header_crc != zlib.crc32(data[:-4]):
        raise TraceError(f"{where}: block header is corrupt")
    if head.first_frame != first:
        raise TraceError(f"{where}: block starts at frame {head.first_frame}, expected {first}")
    return head


def unpack_block_data(
    head: BlockHeader, stored: bytes, decompressor: zstandard.ZstdDecompressor, where: str
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


def _header_crc(version: int, body: bytes) -> int:
    """The header's crc: of the body, and from version 5 on of the version before it (a
    5 flipped to 4 would otherwise pass for an older trace)."""
    if version == 4:
        return zlib.crc32(body)
    return zlib.crc32(body, zlib.crc32(version.to_bytes(4, "little")))


def encode_header(header: TraceHeader) -> bytes:
    """The whole header file."""
    fields = {
        "program": encode_text(header.program),
        "argv": [{"item": encode_text(a)} for a in header.argv],
        "cwd": encode_text(header.cwd),
        "rlimit_soft": header.rlimit_stack[0],
        "rlimit_hard": header.rlimit_stack[1],
        "created": header.created,
        "kernel": encode_text(header.kernel),
        "cpu": encode_text(header.cpu),
        "syscallbuf": bool(header.syscallbuf),
        "extra": [
            {"key": encode_text(k), "value": encode_text(v)} for k, v in header.extra.items()
        ],
    }
    try:
        body = L.HEADER_BODY.build(fields)
    except LAYOUT_ERRORS as e:
        raise ValueError(f"cannot encode {header!r:.120}: {e}") from e
    preamble = {"magic": L.HEADER_MAGIC, "version": L.FORMAT_VERSION,
                "crc": _header_crc(L.FORMAT_VERSION, body)}
    return L.PREAMBLE.build(preamble) + body


def decode_header(data: bytes, where: str) -> tuple[TraceHeader, int]:
    """The header from the header file's bytes, and the trace's format version; checks
    magic, version and crc in that order."""
    if len(data) < L.PREAMBLE_SIZE or not data.startswith(L.HEADER_MAGIC):
        raise TraceError(f"{where}: not an rrgdb trace (bad magic)")
    preamble = L.PREAMBLE.parse(data)
    if preamble.version not in L.READABLE_VERSIONS:
        *earlier, last = map(str, L.READABLE_VERSIONS)
        readable = f"{', '.join(earlier)} and {last}" if earlier else last
        raise TraceError(
            f"{where}: trace format version {preamble.version} is not supported "
            f"(this rrgdb reads {readable})"
        )
    body = data[L.PREAMBLE_SIZE :]
    if _header_crc(preamble.version, body) != preamble.crc:
        raise TraceError(f"{where}: header is corrupt (crc mismatch)")
    try:
        c = L.HEADER_BODY.parse(body)
        return TraceHeader(
            program=decode_text(c.program),
            argv=[decode_text(a.item) for a in c.argv],
            cwd=decode_text(c.cwd),
            rlimit_stack=(c.rlimit_soft, c.rlimit_hard),
            created=c.created,
            kernel=decode_text(c.kernel),
            cpu=decode_text(c.cpu),
            syscallbuf=c.syscallbuf,
            extra={decode_text(e.key): decode_text(e.value) for e in c.extra},
        ), preamble.version
    except LAYOUT_ERRORS as e:
        raise TraceError(f"{where}: header is malformed: {layout_error_text(e)}") from e


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
