"""The on-disk layout of a trace: file names and every binary record as a construct schema.

This is the one module that knows binary layouts (the text of files/index is in _codec);
docs/trace-format.md describes the same thing in prose. Every integer is little-endian. A
"blob" is a u32 byte count followed by that many bytes; strings are blobs holding
os.fsencode()d text.

The schemas are not compiled at import: construct's compile step costs ~1-6 ms per schema
at every start, more than it saves on records read or written a few times per trace (the
header, the completion marker; ExecFrame's is compiled when reused). Records on a hot path
have an equivalent `struct` codec below their schema (~20x faster than even compiled
construct); tests/test_trace.py checks that both give the same bytes.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

from construct import (
    Bytes,
    Construct,
    ConstructError,
    Container,
    Flag,
    Float64l,
    Int8ul,
    Int32sl,
    Int32ul,
    Int64sl,
    Int64ul,
    PrefixedArray,
    Rebuild,
    Struct,
    Terminated,
    len_,
    this,
)

FORMAT_VERSION = 9
# The versions this rrgdb reads: a version-4 trace has no CpuidFrame (cpuid was not
# trapped); before version 6 a PreemptFrame has no watched words; before version 7 the
# recorder left a program's alternate signal stack as exec left it (frames unchanged);
# before version 8 a SyscallFrame has no output_crc; before version 9 the recorder left
# the bytes of a signal frame's XSAVE area that the kernel does not write as they were
# (frames unchanged).
READABLE_VERSIONS = (4, 5, 6, 7, 8, 9)
WATCHED_SINCE = 6
ALTSTACK_OFF_SINCE = 7
OUTPUT_CRC_SINCE = 8
XSAVE_GAPS_ZEROED_SINCE = 9

HEADER_FILE = "header"
EVENTS_FILE = "events"
COMPLETE_FILE = "complete"
FILES_DIR = "files"
FILES_INDEX = "index"  # inside FILES_DIR; file ids are 64 hex digits so cannot clash
FILES_NAMES = "names"  # inside FILES_DIR: "<file_id> <hex of the original path>" lines

HEADER_MAGIC = b"RRGDBTRC"
BLOCK_MAGIC = b"RBLK"
COMPLETE_MAGIC = b"RRGDBEND"

REGS_SIZE = 216  # struct user_regs_struct: 27 u64
SIGINFO_SIZE = 128

# A block is flushed when it holds this many frames or this many raw bytes.
BLOCK_MAX_FRAMES = 512
BLOCK_MAX_BYTES = 1 << 20


# What a decoder can raise on bytes that do not fit a layout.
LAYOUT_ERRORS = (ConstructError, struct.error)


def layout_error_text(error: Exception) -> str:
    """One line for an error of LAYOUT_ERRORS (construct's span several: path, then cause)."""
    return " ".join(str(error).split())


def encode_text(text: str) -> bytes:
    """How strings are stored: as os.fsencode() would on Linux, whatever the locale."""
    return text.encode("utf-8", "surrogateescape")


def decode_text(data: bytes) -> str:
    """The inverse of encode_text; never fails."""
    return data.decode("utf-8", "surrogateescape")


def _blob(name: str) -> tuple[Construct, Construct]:
    """A u32 length then that many bytes, as two fields `<name>_len` and `<name>`.

    Spelled with Rebuild + Bytes rather than Prefixed(GreedyBytes) because construct
    compiles this form in both directions (see CompiledOnReuse).
    """
    size = f"{name}_len"
    return (size / Rebuild(Int32ul, len_(this[name])), name / Bytes(this[size]))


class CompiledOnReuse:
    """A schema used uncompiled for its first `uses` builds and parses, compiled after.

    Compiling costs more than a few uncompiled uses (ExecFrame: ~6 ms against ~3.5 ms per
    use, 0.4 ms compiled): a trace with one exec never pays for it, one with hundreds does
    once.
    """

    def __init__(self, schema: Construct, uses: int = 2) -> None:
        self._schema = schema
        self._left = uses

    def _current(self) -> Construct:
        if self._left == 0:
            self._schema = self._schema.compile()
        self._left -= 1
        return self._schema

    def build(self, fields: dict[str, Any]) -> bytes:
        return self._current().build(fields)

    def parse_stream(self, stream: BinaryIO) -> Container:
        return self._current().parse_stream(stream)


# -- header file: preamble, then crc32 of the body, then the body --------------------------

PREAMBLE = Struct("magic" / Bytes(8), "version" / Int32ul, "crc" / Int32ul)
PREAMBLE_SIZE = PREAMBLE.sizeof()

HEADER_BODY = Struct(
    *_blob("program"),
    "argv" / PrefixedArray(Int32ul, Struct(*_blob("item"))),
    *_blob("cwd"),
    "rlimit_soft" / Int64ul,
    "rlimit_hard" / Int64ul,
    "created" / Float64l,
    *_blob("kernel"),
    *_blob("cpu"),
    "syscallbuf" / Flag,
    "extra" / PrefixedArray(Int32ul, Struct(*_blob("key"), *_blob("value"))),
    Terminated,
)

# -- events file: a sequence of blocks ------------------------------------------------------

BLOCK_HEADER = Struct(
    "magic" / Bytes(4),
    "first_frame" / Int64ul,
    "frames" / Int32ul,
    "raw_size" / Int32ul,
    "stored_size" / Int32ul,
    "data_crc" / Int32ul,  # crc32 of the stored (compressed) bytes
    "header_crc" / Int32ul,  # crc32 of the 28 bytes before this field
)
BLOCK_HEADER_STRUCT = struct.Struct("<4sQIIIII")  # BLOCK_HEADER, read and written per block
BLOCK_HEADER_SIZE = BLOCK_HEADER_STRUCT.size

# -- frames: a kind byte, then the kind's fields --------------------------------------------

KIND_EXEC = 1
KIND_SYSCALL = 2
KIND_SIGNAL = 3
KIND_INSTRUCTION_TRAP = 4
KIND_EXIT = 5
KIND_PREEMPT = 6
KIND_SYSCALL_ENTRY = 7
KIND_FLUSH = 8
KIND_CPUID = 9
MEMORY_HASH_SIZE = 32

_MEM_WRITE = Struct("addr" / Int64ul, *_blob("data"))

_MAPPING = Struct(
    "start" / Int64ul,
    "end" / Int64ul,
    "prot" / Int32ul,
    "flags" / Int32ul,
    "offset" / Int64ul,
    *_blob("path"),
    *_blob("file_id"),
)

EXEC = Struct(
    "tid" / Int32sl,
    "regs" / Bytes(REGS_SIZE),
    *_blob("exe_path"),
    *_blob("exe_file_id"),
    "argv" / PrefixedArray(Int32ul, Struct(*_blob("item"))),
    "envp" / PrefixedArray(Int32ul, Struct(*_blob("item"))),
    "mappings" / PrefixedArray(Int32ul, _MAPPING),
    "memory" / PrefixedArray(Int32ul, _MEM_WRITE),
)

SYSCALL = Struct(
    "tid" / Int32sl,
    "regs" / Bytes(REGS_SIZE),
    "result" / Int64sl,
    "writes" / PrefixedArray(Int32ul, _MEM_WRITE),
    "stream" / Int8ul,
    "output_crc" / Int32ul,
    *_blob("file_id"),
)

# SYSCALL in struct notation, for the hot path of recording and replay (construct's
# compiled codec costs ~25 us per frame each way, struct ~3 us).
SYSCALL_HEAD = struct.Struct(f"<i{REGS_SIZE}sqI")  # tid, regs, result, len(writes)
MEM_WRITE_HEAD = struct.Struct("<QI")  # addr, len(data), then data
SYSCALL_TAIL = struct.Struct("<BII")  # stream, output_crc, len(file_id), then file_id
SYSCALL_TAIL_BEFORE_CRC = struct.Struct("<BI")  # before OUTPUT_CRC_SINCE: no output_crc

SIGNAL = Struct(
    "tid" / Int32sl,
    "regs" / Bytes(REGS_SIZE),
    "signo" / Int32sl,
    "siginfo" / Bytes(SIGINFO_SIZE),
    "deterministic" / Flag,
)
SIGNAL_STRUCT = struct.Struct(f"<i{REGS_SIZE}si{SIGINFO_SIZE}s?")

INSTRUCTION_TRAP = Struct(
    "tid" / Int32sl, "regs" / Bytes(REGS_SIZE), "value" / Int64ul, "aux" / Int32ul
)
INSTRUCTION_TRAP_STRUCT = struct.Struct(f"<i{REGS_SIZE}sQI")

CPUID = Struct(
    "tid" / Int32sl, "regs" / Bytes(REGS_SIZE), "eax" / Int32ul, "ebx" / Int32ul,
    "ecx" / Int32ul, "edx" / Int32ul,
)
CPUID_STRUCT = struct.Struct(f"<i{REGS_SIZE}sIIII")

EXIT = Struct("tid" / Int32sl, "status" / Int32sl)
EXIT_STRUCT = struct.Struct("<ii")

FLUSH = Struct("tid" / Int32sl, *_blob("data"))
FLUSH_HEAD = struct.Struct("<iI")  # tid, len(data), then data

SYSCALL_ENTRY = Struct("tid" / Int32sl, "regs" / Bytes(REGS_SIZE))
SYSCALL_ENTRY_STRUCT = struct.Struct(f"<i{REGS_SIZE}s")

PREEMPT = Struct(
    "tid" / Int32sl, "regs" / Bytes(REGS_SIZE), "memory_hash" / Bytes(MEMORY_HASH_SIZE),
    "patch_length" / Int8ul, *_blob("stack"), *_blob("watched"),
)
PREEMPT_HEAD = struct.Struct(f"<i{REGS_SIZE}s{MEMORY_HASH_SIZE}sBI")  # then the stack bytes
BLOB_SIZE = struct.Struct("<I")  # (the watched words' byte count, then them)

# -- complete file: written atomically by TraceWriter.close() -------------------------------

COMPLETE = Struct(
    "magic" / Bytes(8),
    "frames" / Int64ul,
    "events_size" / Int64ul,
    "crc" / Int32ul,  # crc32 of the 24 bytes before this field
)
COMPLETE_SIZE = COMPLETE.sizeof()
