"""`monitor refs ADDR [LEN]`: which memory of the replayed process holds a pointer to ADDR.

Every readable mapping is read in large chunks (process_vm_readv, one call per chunk, never
word by word) and searched for 8-byte aligned little-endian words equal to ADDR, or inside
[ADDR, ADDR+LEN). An exact value is found with bytes.find on its 8 bytes; a range with
bytes.find on the high bytes that every value of the range shares, and when the range is
so wide that fewer than three bytes are shared, with an array('Q') scan of each chunk.
The bytes are the program's: int3s rrgdb inserted for breakpoints are shadowed.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from rrgdb.kernel.address_space import PROT_READ, MapsEntry

CHUNK = 4 << 20  # bytes read per call; a multiple of the word size
MAX_HITS = 10_000
_UNREADABLE = ("[vvar]", "[vsyscall]")

Reader = Callable[[int, int], bytes]


@dataclass(frozen=True, slots=True)
class Ref:
    """One word holding a matching value."""

    holder: int  # address of the word
    value: int  # the pointer it holds
    mapping: MapsEntry


def mapping_name(entry: MapsEntry, names: Mapping[str, str] | None = None) -> str:
    """How a hit's mapping is named: [heap]/[stack]/..., anon, or its path; a trace's copy
    of a file (named by its content id) goes by the name the program used, from names
    (file id → path)."""
    if not entry.path:
        return "anon"
    if names:
        name = names.get(entry.path.rsplit("/", 1)[-1])
        if name is not None:
            return name
    return entry.path


def _word_matches(data: bytes, low: int, high: int) -> Iterator[tuple[int, int]]:
    """(offset, value) of the aligned words of data with low <= value < high."""
    if high - low == 1:
        needle = low.to_bytes(8, "little")
        pos = data.find(needle)
        while pos >= 0:
            if pos % 8 == 0:
                yield pos, low
                pos = data.find(needle, pos + 8)
            else:
                pos = data.find(needle, pos + 1)
        return
    last = high - 1
    shared = 8
    while shared and (low >> (8 * (8 - shared))) != (last >> (8 * (8 - shared))):
        shared -= 1
    if shared >= 3:
        needle = low.to_bytes(8, "little")[8 - shared:]
        skip = 8 - shared
        pos = data.find(needle, skip)
        while pos >= 0:
            start = pos - skip
            if start % 8 == 0:
                value = int.from_bytes(data[start:start + 8], "little")
                if low <= value < high:
                    yield start, value
            pos = data.find(needle, pos + 1)
        return
    words = array("Q")
    words.frombytes(data[: len(data) - len(data) % 8])
    for index, value in enumerate(words):
        if low <= value < high:
            yield index * 8, value


def find_refs(maps: list[MapsEntry], read: Reader, addr: int, length: int = 1,
              limit: int = MAX_HITS) -> tuple[list[Ref], bool]:
    """The words of the readable mappings holding a value in [addr, addr+length).
    read(addr, n) returns memory as the program sees it (possibly short). Returns the hits
    in address order and whether the limit cut the search short."""
    low, high = addr, addr + max(1, length)
    hits: list[Ref] = []
    for entry in maps:
        if not entry.prot & PROT_READ or entry.path in _UNREADABLE:
            continue
        pos = entry.start
        while pos < entry.end:
            size = min(CHUNK, entry.end - pos)
            data = read(pos, size)
            if not data:  # an unreadable stretch: skip a page
                pos = (pos | 0xFFF) + 1
                continue
            for offset, value in _word_matches(data, low, high):
                hits.append(Ref(pos + offset, value, entry))
                if len(hits) >= limit:
                    return hits, True
            pos += len(data) - len(data) % 8 or 8
    return hits, False


def format_refs(addr: int, length: int, hits: list[Ref], truncated: bool,
                names: Mapping[str, str] | None = None) -> str:
    """The monitor reply: one line per hit, holder first (0x… hex), then its mapping
    (name, range, offset of the holder in it), then for a range search the value."""
    what = f"{addr:#x}" if length <= 1 else f"[{addr:#x}, {addr + length:#x})"
    if not hits:
        return f"No references to {what}\n"
    lines = []
    for ref in hits:
        entry = ref.mapping
        line = (f"{ref.holder:#x} {mapping_name(entry, names)} {entry.start:#x}-{entry.end:#x} "
                f"+{ref.holder - entry.start:#x}")
        if length > 1:
            line += f" -> {ref.value:#x}"
        lines.append(line)
    if truncated:
        lines.append(f"(stopped after {len(hits)} references)")
    return "\n".join(lines) + "\n"


def parse_refs_arguments(words: list[str]) -> tuple[int, int]:
    """ADDR [LEN] (hex with 0x, or decimal) → (addr, length); ValueError if malformed."""
    if not 1 <= len(words) <= 2:
        raise ValueError("usage: refs ADDR [LEN]")
    addr = int(words[0], 0)
    length = int(words[1], 0) if len(words) == 2 else 1
    if addr < 0 or addr >= 1 << 64 or length < 1:
        raise ValueError("refs: ADDR must be a 64-bit address and LEN positive")
    return addr, length


HELP = """\
  refs ADDR [LEN]       the 8-byte aligned words of every readable mapping holding ADDR
                        (or a value in [ADDR, ADDR+LEN)): holder address, then mapping
"""
