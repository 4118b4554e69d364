"""Thread-local storage addresses without libthread_db, for gdb's qGetTLSAddr.

glibc (since 2.34, in libc.so.6) exports the descriptors libthread_db reads: each
`_thread_db_<struct>_<field>` symbol is three uint32s (size in bits, element count, byte
offset; nptl_db/structs.def, db-symbols). From them, as td_thr_tlsbase does:
modid = link_map.l_tls_modid; dtv = pthread.dtvp (the thread descriptor is the thread
pointer, fs_base on x86-64); the module's block is dtv[modid].pointer.val. A statically
linked program keeps the descriptors in .symtab; gdb names its one module link_map 0,
which is modid 1 (as gdb's thread_db layer does)."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

_DESCRIPTOR = struct.Struct("<3I")
_UNALLOCATED = 1  # TLS_DTV_UNALLOCATED is (void *) -1: an odd pointer is no block
_STATIC_MODID = 1

#: the descriptors read, by symbol name
DESCRIPTOR_SYMBOLS = (
    "_thread_db_link_map_l_tls_modid",
    "_thread_db_pthread_dtvp",
    "_thread_db_dtv_dtv",
    "_thread_db_dtv_t_pointer_val",
    "_thread_db_dtv_t_counter",
)


@dataclass(frozen=True, slots=True)
class Field:
    """One thread_db descriptor: a field's size in bits, element count and byte offset."""

    bits: int
    count: int
    offset: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> Field:
        return cls(*_DESCRIPTOR.unpack(raw))


@dataclass(frozen=True, slots=True)
class ThreadDbLayout:
    """Where glibc keeps what a TLS address is computed from (the libc's descriptors)."""

    l_tls_modid: Field  # in struct link_map
    dtvp: Field  # in struct pthread: the thread's dtv pointer
    dtv_slots: Field  # the dtv array: bits is the size of one dtv_t
    pointer_val: Field  # in dtv_t: the block's address
    counter: Field  # in dtv_t: dtv[-1].counter is the number of slots

    @classmethod
    def from_fields(cls, fields: dict[str, bytes]) -> ThreadDbLayout:
        """From each descriptor symbol's 12 bytes (ValueError if any is missing)."""
        try:
            raw = [fields[name] for name in DESCRIPTOR_SYMBOLS]
        except KeyError as missing:
            raise ValueError(f"no thread_db descriptor {missing}") from None
        return cls(*(Field.from_bytes(value) for value in raw))


def tls_block(layout: ThreadDbLayout, read_word: Callable[[int], int | None],
              thread_pointer: int, link_map: int) -> int | None:
    """The address of the TLS block of the module `link_map` describes (0: a static
    program's executable), in the thread whose descriptor is at `thread_pointer`; None if
    it has none (no TLS, a slot not allocated yet in this thread) or a word cannot be
    read. read_word(addr) reads a little-endian u64 (None if unreadable)."""
    if thread_pointer == 0:
        return None
    modid = read_word(link_map + layout.l_tls_modid.offset) if link_map else _STATIC_MODID
    dtv = read_word(thread_pointer + layout.dtvp.offset)
    if not modid or not dtv:
        return None
    slot_size = layout.dtv_slots.bits // 8
    slots = read_word(dtv - slot_size + layout.counter.offset)
    if slots is None or modid > slots:
        return None  # a module loaded after this thread last updated its dtv
    block = read_word(dtv + layout.dtv_slots.offset + modid * slot_size
                      + layout.pointer_val.offset)
    if not block or block & _UNALLOCATED:
        return None
    return block


@functools.lru_cache(maxsize=256)
def read_thread_db_layout(path: str) -> ThreadDbLayout | None:
    """The thread_db descriptors in an ELF file's dynamic symbols (libc.so.6 since glibc
    2.34) or, in a statically linked file (no DT_NEEDED), its .symtab; None if it has
    none or is not ELF."""
    from elftools.common.exceptions import ELFError  # 60 ms to import: only when needed
    from elftools.elf.elffile import ELFFile

    fields: dict[str, bytes] = {}
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            table = _symbols_with(elf, ".dynsym", DESCRIPTOR_SYMBOLS[0])
            if table is None and not _dynamically_linked(elf):
                table = _symbols_with(elf, ".symtab", DESCRIPTOR_SYMBOLS[0])
            if table is None:
                return None
            for name in DESCRIPTOR_SYMBOLS:
                symbols = table.get_symbol_by_name(name)
                if not symbols or symbols[0]["st_size"] != _DESCRIPTOR.size:
                    return None
                offsets = list(elf.address_offsets(symbols[0]["st_value"], _DESCRIPTOR.size))
                if not offsets:
                    return None
                f.seek(offsets[0])
                fields[name] = f.read(_DESCRIPTOR.size)
        return ThreadDbLayout.from_fields(fields)
    except (OSError, ELFError, ValueError, struct.error):
        return None


def _symbols_with(elf: ELFFile, section: str, name: str) -> SymbolTableSection | None:
    """The symbol table `section` if it defines `name`."""
    from elftools.elf.sections import SymbolTableSection

    table = elf.get_section_by_name(section)
    if isinstance(table, SymbolTableSection) and table.get_symbol_by_name(name):
        return table
    return None


def _dynamically_linked(elf: ELFFile) -> bool:
    """Whether the file needs shared libraries (then libc's .dynsym is where to look)."""
    dynamic = elf.get_section_by_name(".dynamic")
    return dynamic is not None and any(True for _ in dynamic.iter_tags("DT_NEEDED"))
