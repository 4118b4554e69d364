"""Thread-local storage addresses from glibc's thread_db descriptors (rrgdb/gdb/tls.py),
over a fake memory: no process, no socket."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from rrgdb.gdb.tls import (
    DESCRIPTOR_SYMBOLS,
    Field,
    ThreadDbLayout,
    read_thread_db_layout,
    tls_block,
)

# glibc 2.36 on x86-64: l_tls_modid at 1152 in link_map, the dtv pointer at 8 in the
# thread descriptor, 16-byte dtv_t slots, pointer.val and counter at 0.
LAYOUT = ThreadDbLayout(
    l_tls_modid=Field(64, 1, 1152),
    dtvp=Field(64, 1, 8),
    dtv_slots=Field(128, 134217727, 0),
    pointer_val=Field(64, 1, 0),
    counter=Field(64, 1, 0),
)
THREAD = 0x7FFFF7D8A740  # fs_base: the thread descriptor
DTV = 0x5555555592A0  # what the descriptor's dtv field points at (&dtv[1] of the array)
LIBC_MAP = 0x7FFFF7FC1000
EXE_MAP = 0x7FFFF7FFE2E0


def memory(slots: int = 4, blocks: dict[int, int] | None = None,
           modids: dict[int, int] | None = None) -> dict[int, int]:
    """u64 words of a thread with a dtv of `slots` entries holding `blocks` by modid."""
    words = {THREAD + 8: DTV, DTV - 16: slots, DTV: 1}  # dtv[-1] = length, dtv[0] = gen
    for modid, block in (blocks or {1: 0x7FFFF7D8A738, 2: 0x7FFFF7D8A6B0}).items():
        words[DTV + 16 * modid] = block
    for link_map, modid in (modids or {EXE_MAP: 1, LIBC_MAP: 2}).items():
        words[link_map + 1152] = modid
    return words


def block_of(words: dict[int, int], link_map: int, thread: int = THREAD) -> int | None:
    return tls_block(LAYOUT, words.get, thread, link_map)


def test_each_module_has_its_block() -> None:
    words = memory()
    assert block_of(words, EXE_MAP) == 0x7FFFF7D8A738
    assert block_of(words, LIBC_MAP) == 0x7FFFF7D8A6B0
    assert block_of(words, 0) == 0x7FFFF7D8A738  # a static program's executable: modid 1


@pytest.mark.parametrize(
    ("words", "link_map", "thread"),
    [
        (memory(blocks={1: 0x7FFFF7D8A738, 2: (1 << 64) - 1}), LIBC_MAP, THREAD),  # unallocated
        (memory(blocks={1: 0x7FFFF7D8A738, 2: 0}), LIBC_MAP, THREAD),  # not set up yet
        (memory(slots=1), LIBC_MAP, THREAD),  # a module newer than the thread's dtv
        (memory(modids={EXE_MAP: 1, LIBC_MAP: 0}), LIBC_MAP, THREAD),  # no TLS
        (memory(), 0x1000, THREAD),  # unreadable link_map
        (memory(), EXE_MAP, 0),  # no thread pointer yet
        ({k: v for k, v in memory().items() if k != THREAD + 8}, EXE_MAP, THREAD),  # no dtv
    ],
)
def test_no_block(words: dict[int, int], link_map: int, thread: int) -> None:
    assert block_of(words, link_map, thread) is None


def test_layout_needs_every_descriptor() -> None:
    raw = {name: struct.pack("<3I", 64, 1, 8 * i) for i, name in enumerate(DESCRIPTOR_SYMBOLS)}
    assert ThreadDbLayout.from_fields(raw).dtvp == Field(64, 1, 8)
    del raw["_thread_db_pthread_dtvp"]
    with pytest.raises(ValueError, match="_thread_db_pthread_dtvp"):
        ThreadDbLayout.from_fields(raw)


def _glibc_version() -> tuple[int, ...]:
    name, _, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").partition(" ")
    return tuple(int(part) for part in version.split(".")[:2]) if name == "glibc" else ()


def test_descriptors_are_read_from_libc() -> None:
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6")
    if not libc.exists() or _glibc_version() < (2, 34):
        pytest.skip("needs glibc >= 2.34's libc.so.6 (Debian's path)")
    layout = read_thread_db_layout(str(libc))
    assert layout is not None
    assert layout.dtvp == Field(64, 1, 8)  # tcbhead_t.dtv on x86-64
    assert layout.dtv_slots.bits == 128 and layout.dtv_slots.offset == 0
    assert layout.pointer_val == Field(64, 1, 0)


def test_files_without_descriptors(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an ELF file\n")
    assert read_thread_db_layout(str(text)) is None
    assert read_thread_db_layout(str(tmp_path / "missing.so")) is None
    assert read_thread_db_layout("/proc/self/exe") is None  # python: no thread_db symbols
