"""memory_hash, the digest a PreemptFrame records: it depends on the contents and addresses
of private writable memory only, never on which pages the kernel has populated (replay
may populate a page of zeros that the recording never touched, and the other way round).
Checked on real processes that map a region at a fixed address and then wait."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import PROGRAMS_DIR, compile_program

from rrgdb import native
from rrgdb.kernel.address_space import SYSCALL_BUFFER_ADDR, memory_hash
from rrgdb.kernel.task import Task

PAGE = 4096
ADDR = 0x6F0000000000
PAGES = 16
BIG_PAGES = 16384  # 64 MiB


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/programs/mapped_region.c, built (what it runs is said there)."""
    binary = tmp_path_factory.mktemp("memory_hash") / "mapped_region"
    compile_program(PROGRAMS_DIR / "mapped_region.c", binary, "O2", ())
    return binary


@contextmanager
def running(binary: Path, *args: str | int) -> Iterator[int]:
    """A process of binary with args, ready and waiting; killed on the way out."""
    process = subprocess.Popen([str(binary), *map(str, args)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(b"ready"), "the program did not map"
        while not Path(f"/proc/{process.pid}/syscall").read_text().startswith("0 "):
            time.sleep(0.001)  # its memory is still changing until it blocks in read
        yield process.pid
    finally:
        process.kill()
        process.wait()


def region_hash(pid: int, pages: int = PAGES, addr: int = ADDR) -> bytes:
    return native.memory_hash(pid, [(addr, addr + pages * PAGE, True)])


def present(pid: int, pages: int = PAGES) -> int:
    """How many pages of the region /proc/PID/pagemap shows present."""
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        entries = os.pread(f.fileno(), 8 * pages, ADDR // PAGE * 8)
    return sum(entries[i + 7] >> 7 for i in range(0, len(entries), 8))


def test_the_same_contents_at_the_same_addresses_give_the_same_digest(mapped: Path) -> None:
    with running(mapped, ADDR, PAGES, "pattern") as first, \
            running(mapped, ADDR, PAGES, "pattern") as second, \
            running(mapped, ADDR + PAGE, PAGES, "pattern") as moved:
        digest = region_hash(first)
        assert len(digest) == 32
        assert region_hash(second) == digest
        assert native.memory_hash(first, [(ADDR, ADDR + PAGES * PAGE, False)]) == digest
        assert region_hash(moved, addr=ADDR + PAGE) != digest


@pytest.mark.parametrize("mode", ["untouched", "read", "dropped"])
def test_pages_never_written_hash_like_zeros_written(mapped: Path, mode: str) -> None:
    with running(mapped, ADDR, PAGES, "zeros") as written, \
            running(mapped, ADDR, PAGES, mode) as other:
        assert present(written) == PAGES
        # untouched and dropped pages are skipped unread, read ones map the zero page
        assert present(other) == (PAGES if mode == "read" else 0)
        assert region_hash(other) == region_hash(written)
        assert region_hash(other) != region_hash(written, PAGES - 1)  # bounds count


@pytest.mark.parametrize("where", ["first byte", "last byte", "inside a big untouched region"])
def test_one_changed_byte_changes_the_digest(mapped: Path, where: str) -> None:
    pages = BIG_PAGES if where.startswith("inside") else PAGES
    address = {"first byte": ADDR, "last byte": ADDR + pages * PAGE - 1,
               "inside a big untouched region": ADDR + pages // 3 * PAGE + 123}[where]
    with running(mapped, ADDR, pages, "untouched" if pages == BIG_PAGES else "pattern") as pid:
        task = Task(pid)
        before, original = memory_hash(task), task.read(address, 1)
        for value in (original[0] ^ 1, original[0] ^ 0x80):
            native.write_memory_vm(pid, address, bytes([value]))
            assert memory_hash(task) != before, f"{value:#x} at {address:#x}"
        native.write_memory_vm(pid, address, original)
        assert memory_hash(task) == before  # a page of zeros again, now present


def test_untouched_pages_of_a_file_mapped_privately_are_read(mapped: Path,
                                                             tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_bytes(bytes(range(256)) * (PAGES * PAGE // 256))
    with running(mapped, ADDR, PAGES, "untouched", data) as pid:
        assert present(pid) == 0
        task = Task(pid)
        before = memory_hash(task)
        with open(data, "r+b") as f:  # untouched private pages still show the file
            os.pwrite(f.fileno(), b"\xff", 5 * PAGE + 7)
        assert memory_hash(task) != before


def test_pages_past_the_end_of_a_file_are_hashed_too(mapped: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_bytes(b"\x01" * PAGE)
    with running(mapped, ADDR, PAGES, "untouched", data) as pid:
        task = Task(pid)
        before = memory_hash(task)
        assert memory_hash(task) == before
        native.write_memory_vm(pid, ADDR + 9, b"\x02")
        assert memory_hash(task) != before


@pytest.mark.parametrize("where", ["shared", "syscall buffer"])
def test_shared_memory_and_the_syscall_buffer_are_left_out(mapped: Path, where: str) -> None:
    addr = SYSCALL_BUFFER_ADDR if where == "syscall buffer" else ADDR
    with running(mapped, addr, PAGES, "shared" if where == "shared" else "untouched") as pid:
        task = Task(pid)
        before = memory_hash(task)
        native.write_memory_vm(pid, addr + PAGE, b"\x01")
        assert memory_hash(task) == before


P1, P2, P3, P4 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                  0x85EBCA77C2B2AE63)
MASK = (1 << 64) - 1
SEEDS = ((P1 + P2) & MASK, P2, 0, -P1 & MASK)
RANGE_TAG = 0x52414E4745000000


def _round(acc: int, value: int) -> int:
    acc = (acc + value * P2) & MASK
    return (((acc << 31) | (acc >> 33)) & MASK) * P1 & MASK


def _finish(lanes: list[int], length: int) -> list[int]:
    total = (sum(lanes) + length * P4) & MASK
    out = []
    for lane in lanes:
        h = (lane + total) & MASK
        h = ((h ^ (h >> 33)) * P2) & MASK
        h = ((h ^ (h >> 29)) * P3) & MASK
        out.append(h ^ (h >> 32))
    return out


def reference_digest(regions: list[tuple[int, bytes]]) -> bytes:
    """The digest as docs/trace-format.md describes it, of readable regions."""
    def page_hash(page: bytes) -> list[int]:
        words = [int.from_bytes(page[i:i + 8], "little") for i in range(0, PAGE, 8)]
        lanes = list(SEEDS)
        for i, word in enumerate(words):
            lanes[i % 4] = _round(lanes[i % 4], word)
        return _finish(lanes, PAGE)

    zero, lanes, records = page_hash(bytes(PAGE)), list(SEEDS), []
    for start, data in regions:
        records.append((start, [start + len(data), RANGE_TAG, RANGE_TAG, RANGE_TAG]))
        for offset in range(0, len(data), PAGE):
            if (hashed := page_hash(data[offset:offset + PAGE])) != zero:
                records.append((start + offset, hashed))
    for address, hashed in records:
        lanes = [_round(_round(lane, address), h) for lane, h in zip(lanes, hashed, strict=True)]
    return b"".join(word.to_bytes(8, "little") for word in _finish(lanes, len(records)))


def test_the_digest_is_the_one_the_trace_format_describes(mapped: Path) -> None:
    with running(mapped, ADDR, PAGES, "pattern") as pid:
        native.write_memory_vm(pid, ADDR + 3 * PAGE, bytes(PAGE))  # a page of zeros: left out
        contents = Task(pid).read(ADDR, PAGES * PAGE)
        assert native.memory_hash(pid, [(ADDR, ADDR + PAGES * PAGE, True)]) \
            == reference_digest([(ADDR, contents)])
