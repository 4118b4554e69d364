"""Byte-level encodings of the remote protocol: checksums, binary escaping, run-length
encoding, and strict hex parsing.

Every parser here raises `MalformedPacket` and nothing else on bad input, so the packet
readers above it can turn any peer mistake into an error reply."""

from __future__ import annotations

import re

ESCAPE = 0x7D  # '}'
RLE_MARK = 0x2A  # '*'
_MUST_ESCAPE = frozenset(b"#$}*")
_ESCAPE_RE = re.compile(rb"[#$}*]")
_HEX_RE = re.compile(rb"[0-9a-fA-F]+")
# The repeat-count characters gdb forbids: '#' and '$' would be read as framing.
_RLE_FORBIDDEN_COUNTS = frozenset(b"#$")
_RLE_MIN_RUN = 4  # shorter runs cost more encoded than plain
_RLE_MAX_EXTRA = 126 - 29


class MalformedPacket(Exception):
    """A packet body that does not follow its packet's syntax."""


def checksum(payload: bytes) -> int:
    """The modulo-256 sum of the bytes between `$` and `#`."""
    return sum(payload) & 0xFF


def frame(payload: bytes) -> bytes:
    """`$payload#cc`, with `payload` already escaped as its packet requires."""
    return b"$%b#%02x" % (payload, checksum(payload))


def escape(data: bytes) -> bytes:
    """Escape `# $ } *` in binary data as `}` followed by the byte xor 0x20."""
    return _ESCAPE_RE.sub(lambda m: bytes((ESCAPE, m.group()[0] ^ 0x20)), data)


def unescape(data: bytes) -> bytes:
    """Undo `escape`; a dangling `}` at the end is malformed."""
    if ESCAPE not in data:
        return bytes(data)
    out = bytearray()
    it = iter(data)
    for byte in it:
        if byte == ESCAPE:
            following = next(it, None)
            if following is None:
                raise MalformedPacket("binary data ends inside an escape")
            out.append(following ^ 0x20)
        else:
            out.append(byte)
    return bytes(out)


def rle_decode(payload: bytes) -> bytes:
    """Expand `X*c` into X repeated ord(c)-29 more times."""
    if RLE_MARK not in payload:
        return bytes(payload)
    out = bytearray()
    i = 0
    while i < len(payload):
        byte = payload[i]
        if byte != RLE_MARK:
            out.append(byte)
            i += 1
            continue
        if not out or i + 1 >= len(payload):
            raise MalformedPacket("run-length marker without a character or a count")
        count = payload[i + 1] - 29
        if count < 3 or payload[i + 1] > 126:
            raise MalformedPacket(f"bad run-length count {payload[i + 1]:#x}")
        out += bytes((out[-1],)) * count
        i += 2
    return bytes(out)


def rle_encode(payload: bytes) -> bytes:
    """Compress runs in an (already escaped) payload; never emits `#` or `$` as a count."""
    out = bytearray()
    i = 0
    while i < len(payload):
        byte = payload[i]
        run = 1
        while i + run < len(payload) and payload[i + run] == byte and run <= _RLE_MAX_EXTRA:
            run += 1
        extra = run - 1
        while extra + 29 in _RLE_FORBIDDEN_COUNTS:
            extra -= 1
        if run >= _RLE_MIN_RUN and byte not in _MUST_ESCAPE:
            out += bytes((byte, RLE_MARK, extra + 29))
            i += extra + 1
        else:
            out.append(byte)
            i += 1
    return bytes(out)


def parse_hex_int(text: bytes) -> int:
    """A non-negative hex number with no sign, prefix, spaces or underscores."""
    if not _HEX_RE.fullmatch(text):
        raise MalformedPacket(f"expected a hex number, got {bytes(text)[:40]!r}")
    return int(text, 16)


def parse_hex_bytes(text: bytes) -> bytes:
    """Bytes written as two hex digits each."""
    if not text:
        return b""
    if len(text) % 2 or not _HEX_RE.fullmatch(text):
        raise MalformedPacket(f"expected hex bytes, got {bytes(text)[:40]!r}")
    return bytes.fromhex(text.decode("ascii"))


def hex_text(text: bytes) -> str:
    """Hex-encoded text (paths, commands); undecodable bytes survive as surrogates."""
    return parse_hex_bytes(text).decode("utf-8", "surrogateescape")


def split_exact(text: bytes, separator: bytes, count: int) -> list[bytes]:
    """Split into exactly `count` fields or reject the packet."""
    fields = text.split(separator, count - 1)
    if len(fields) != count:
        raise MalformedPacket(f"expected {count} fields separated by {separator!r}")
    return fields
