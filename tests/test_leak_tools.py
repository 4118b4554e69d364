"""Leak hunting with real gdb against a real `rrgdb replay -s` server: `monitor refs`, the
gdb extension's `last` and `leak-roots`, rr's command names, and `rrgdb gdbinit`.

The program is tests/programs/leak.c, recorded once per module. It prints the addresses
the tests need (replay reproduces them: the recording runs without ASLR), and "MARK:"
comments name the source lines the tests expect gdb to stop at.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import PROGRAMS_DIR, TIMEOUT, compile_program, describe, record, rrgdb_env, run_rrgdb

from rrgdb.gdb import memory_refs
from rrgdb.kernel.address_space import PROT_READ, PROT_WRITE, MapsEntry

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")

SOURCE = PROGRAMS_DIR / "leak.c"


def mark_line(name: str) -> int:
    """The line of leak.c whose comment says MARK: name."""
    for number, line in enumerate(SOURCE.read_text().splitlines(), 1):
        if f"MARK: {name} " in line:
            return number
    raise AssertionError(f"no MARK: {name} in {SOURCE}")


@dataclass(frozen=True)
class Recording:
    binary: Path
    trace: Path
    printed: dict[str, list[int]]  # first word of each output line -> its addresses


@pytest.fixture(scope="module")
def leak(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    out = tmp_path_factory.mktemp("leak")
    binary = out / "leak-O0"
    compile_program(SOURCE, binary, "O0", ())
    recorded = record([binary], out / "trace")
    assert recorded.returncode == 0, describe(recorded)
    printed = {}
    for line in recorded.stdout.decode().splitlines():
        words = line.split()
        printed[words[0]] = [int(w, 16) for w in words[1:] if w.startswith("0x")]
    return Recording(binary, out / "trace", printed)


@pytest.fixture(scope="module")
def script() -> Path:
    result = run_rrgdb(["gdbinit"])
    assert result.returncode == 0, describe(result)
    return Path(result.stdout.decode().strip())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def replay_server(trace: Path, scratch: Path) -> Iterator[int]:
    """`rrgdb replay -s PORT TRACE` until the block ends; yields the port."""
    port = _free_port()
    errors = scratch / f"server-{port}.err"
    with open(errors, "wb") as err, open(scratch / f"server-{port}.out", "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "rrgdb", "replay", "-s", str(port), str(trace)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=rrgdb_env())
    try:
        deadline = time.monotonic() + 30
        while b"target extended-remote" not in errors.read_bytes():
            assert server.poll() is None, errors.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield port
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def run_gdb(leak: Recording, script: Path, port: int, commands: Sequence[str]) -> list[str]:
    """Runs gdb in batch mode with the extension against the server; returns the output
    of each command (stdout and stderr interleaved)."""
    argv = ["gdb", "-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off",
            "-ex", f"target extended-remote 127.0.0.1:{port}", "-x", str(script)]
    for index, command in enumerate(commands):
        argv += ["-ex", f"echo @@{index}@@\\n", "-ex", command]
    argv += ["-ex", f"echo @@{len(commands)}@@\\n", str(leak.binary)]
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=TIMEOUT, text=True)
    text = result.stdout
    outputs = []
    for index in range(len(commands)):
        start = text.find(f"@@{index}@@\n")
        end = text.find(f"@@{index + 1}@@\n")
        assert start >= 0 and end >= 0, f"gdb did not run command {index}:\n{text}"
        outputs.append(text[start + len(f"@@{index}@@\n"):end])
    return outputs


def _when(output: str) -> int:
    match = re.search(r"Current event: (\d+)", output)
    assert match, output
    return int(match.group(1))


def _holders(output: str) -> dict[int, str]:
    return {int(line.split()[0], 16): line for line in output.splitlines()
            if line.startswith("0x")}


# --------------------------------------------------------------------------- gdbinit


def test_gdbinit_prints_an_existing_absolute_path(script: Path) -> None:
    assert script.is_absolute(), script
    assert script.is_file(), script
    assert "LastCommand" in script.read_text()


def test_rrgdb_replay_loads_the_extension(leak: Recording, tmp_path: Path) -> None:
    """`rrgdb replay TRACE` starts gdb with the extension: its commands exist there."""
    commands = tmp_path / "commands"
    commands.write_text("when\nhelp last\nhelp leak-roots\n")
    with open(commands) as stdin:
        result = run_rrgdb(["replay", leak.trace], stdin=stdin)
    output = result.stdout.decode() + result.stderr.decode()
    assert "Current event: 1" in output, describe(result)
    assert "Go back to the last write" in output, describe(result)
    assert "Report the roots of a set of leaked objects" in output, describe(result)


# --------------------------------------------------------------------------- monitor refs


def test_monitor_refs_finds_every_slot_holding_a_pointer(
        leak: Recording, script: Path, tmp_path: Path) -> None:
    holder, slot, global_slot, stack, c = leak.printed["holder"]
    with replay_server(leak.trace, tmp_path) as port:
        exact, ranged, nothing, malformed = run_gdb(leak, script, port, [
            f"break leak.c:{mark_line('end')}",
            "continue",
            f"monitor refs {c:#x}",
            f"monitor refs {c - 8:#x} 16",
            "monitor refs 0x12345678",
            "monitor refs",
        ])[2:]
    hits = _holders(exact)
    assert {slot, global_slot, stack} <= set(hits), exact
    assert "[heap]" in hits[slot] and "[stack]" in hits[stack], exact
    assert str(leak.binary) in hits[global_slot], exact  # named as the program knows it
    ranged_hits = _holders(ranged)
    assert set(hits) <= set(ranged_hits), ranged
    assert all(line.endswith(f"-> {c:#x}") for h, line in ranged_hits.items() if h in hits)
    assert "No references to 0x12345678" in nothing
    assert "usage: refs ADDR [LEN]" in malformed


def _fake_memory(words: dict[int, int], start: int, size: int) -> bytearray:
    memory = bytearray(size)
    for addr, value in words.items():
        memory[addr - start:addr - start + 8] = value.to_bytes(8, "little")
    return memory


@pytest.mark.parametrize("chunk", [memory_refs.CHUNK, 64])
def test_find_refs_exact_range_and_alignment(monkeypatch: pytest.MonkeyPatch,
                                             chunk: int) -> None:
    monkeypatch.setattr(memory_refs, "CHUNK", chunk)
    start, size = 0x10000, 0x2000
    target = 0x5555_5555_9ac0
    memory = _fake_memory({0x10008: target, 0x10100: target + 8, 0x11ff8: target,
                           0x10200: 0x7FFF_0000_0000, 0x10400: 3}, start, size)
    memory[0x10303 - start:0x1030B - start] = target.to_bytes(8, "little")  # misaligned
    maps = [MapsEntry(start, start + size, PROT_READ | PROT_WRITE, False, 0, 0, "[heap]"),
            MapsEntry(0x20000, 0x21000, 0, False, 0, 0, "")]  # unreadable: skipped

    def read(addr: int, length: int) -> bytes:
        assert start <= addr and addr + length <= start + size
        return bytes(memory[addr - start:addr - start + length])

    exact, cut = memory_refs.find_refs(maps, read, target)
    assert [r.holder for r in exact] == [0x10008, 0x11FF8] and not cut
    near, _ = memory_refs.find_refs(maps, read, target, 16)
    assert [(r.holder, r.value) for r in near] == [
        (0x10008, target), (0x10100, target + 8), (0x11FF8, target)]
    wide, _ = memory_refs.find_refs(maps, read, 1, 1 << 62)  # the array('Q') scan
    # the misaligned pointer's top bytes make the word at 0x10308 0x55 (the one at 0x10300
    # is 0x5555559ac0000000, above the range)
    assert [r.holder for r in wide] == [0x10008, 0x10100, 0x10200, 0x10308, 0x10400,
                                        0x11FF8]
    limited, cut = memory_refs.find_refs(maps, read, 1, 1 << 62, limit=2)
    assert len(limited) == 2 and cut
    text = memory_refs.format_refs(target, 1, exact, False)
    assert text.splitlines()[0] == "0x10008 [heap] 0x10000-0x12000 +0x8"


# --------------------------------------------------------------------------- last


def test_last_walks_back_through_each_write(leak: Recording, script: Path,
                                            tmp_path: Path) -> None:
    with replay_server(leak.trace, tmp_path) as port:
        outputs = run_gdb(leak, script, port, [
            f"break leak.c:{mark_line('after-slots')}",
            "continue",
            "when",
            "last holder->slot",
            "last holder->slot",
            "last",
            "last holder->slot",
            "when",
            "info line *$pc",
        ])
    before, third, second, first, none, after, line = outputs[2:]
    for output, mark in ((third, "slot-3"), (second, "slot-2"), (first, "slot-1")):
        assert re.search(rf"leak\.c:{mark_line(mark)}\n{mark_line(mark)}\t", output), output
        assert "last: this write changed holder->slot" in output, output
    assert re.search(r"from 0x0 to 0x", first), first
    assert "No earlier write to holder->slot in the recording." in none
    # the fruitless `last` left the replay where it was asked: at the first store
    assert _when(after) == _when(before)
    assert f"Line {mark_line('slot-1')} of" in line, line


def test_last_refuses_what_is_not_memory(leak: Recording, script: Path,
                                         tmp_path: Path) -> None:
    with replay_server(leak.trace, tmp_path) as port:
        register, usage = run_gdb(leak, script, port, [
            f"break leak.c:{mark_line('after-slots')}",
            "continue",
            "last $rax",
            "last",
        ])[2:]
    assert "not in memory" in register, register
    assert "Usage: last EXPR" in usage, usage


# --------------------------------------------------------------------------- leak-roots


def test_leak_roots_reports_the_root_and_where_it_was_stored(
        leak: Recording, script: Path, tmp_path: Path) -> None:
    head, second, third = leak.printed["list"]
    with replay_server(leak.trace, tmp_path) as port:
        before, report, after = run_gdb(leak, script, port, [
            "continue",  # to the end of the recording
            "when",
            f"leak-roots {third:#x} {head:#x} {second:#x}",
            "when",
        ])[1:]
    assert "3 leaked objects, 2 references among them" in report, report
    roots = re.findall(r"^root (0x[0-9a-f]+)", report, re.M)
    assert roots == [f"{head:#x}"], report
    stored = re.search(r"last reference to (0x[0-9a-f]+) stored at pc 0x[0-9a-f]+ in "
                       r"remember at \S*leak\.c:(\d+)", report)
    assert stored, report
    assert int(stored.group(1), 16) == head
    assert int(stored.group(2)) == mark_line("store-head")
    registry = leak.printed["registry"][0]
    assert f"into {registry + 16:#x} ([heap]+" in report, report
    assert _when(after) == _when(before)  # back at the end


def test_leak_roots_reports_a_cycle(leak: Recording, script: Path, tmp_path: Path) -> None:
    ring = leak.printed["ring"]
    head = leak.printed["list"][0]
    listing = tmp_path / "leaks.txt"
    listing.write_text("# leaked, one per line\n" + "".join(f"{a:#x}\n" for a in ring))
    with replay_server(leak.trace, tmp_path) as port:
        cycle_report, both = run_gdb(leak, script, port, [
            f"break leak.c:{mark_line('end')}",
            "continue",
            f"leak-roots -f {listing}",
            "leak-roots " + " ".join(f"{a:#x}" for a in ring + leak.printed["list"]),
        ])[2:]
    assert "no roots: every leaked object is referenced by another one" in cycle_report
    cycle = re.search(r"cycle of 3 objects \(reaching 3\): (.*)", cycle_report)
    assert cycle, cycle_report
    members = [int(x, 16) for x in cycle.group(1).split(" -> ")]
    assert members[0] == members[-1] and sorted(members[:3]) == sorted(ring)
    for holder, target in zip(members, members[1:], strict=False):
        assert f"{holder:#x}+0x0 holds {target:#x}" in cycle_report
    stored = re.search(r"last external reference to (0x[0-9a-f]+) stored at pc 0x[0-9a-f]+ "
                       r"in remember_ring at \S*leak\.c:(\d+)", cycle_report)
    assert stored and int(stored.group(1), 16) == ring[0], cycle_report
    assert int(stored.group(2)) == mark_line("store-ring")
    # both structures at once: one root, one cycle, each with its store
    assert re.findall(r"^root (0x[0-9a-f]+)", both, re.M) == [f"{head:#x}"], both
    assert "cycle of 3 objects" in both
    assert f"leak.c:{mark_line('store-head')}" in both
    assert f"leak.c:{mark_line('store-ring')}" in both


# --------------------------------------------------------------------------- rr names


def test_rr_command_names(leak: Recording, script: Path, tmp_path: Path) -> None:
    with replay_server(leak.trace, tmp_path) as port:
        outputs = run_gdb(leak, script, port, [
            f"break leak.c:{mark_line('after-slots')}",
            "continue",
            "when",
            "checkpoint",
            "info checkpoints",
            "continue",
            "restart 1",
            "when",
            "delete checkpoint 1",
            "info checkpoints",
        ])
    when, made, listed, _, restarted, again, deleted, empty = outputs[2:]
    assert re.match(r"Checkpoint 1 at event \d+", made), made
    assert re.search(r"^1\tevent \d+", listed, re.M), listed
    assert "Restarted at event" in restarted, restarted
    assert f"leak.c:{mark_line('after-slots')}" in restarted, restarted  # the frame shown
    assert _when(again) == _when(when)
    assert "Deleted checkpoint 1" in deleted
    assert not re.search(r"^1\t", empty, re.M), empty


def test_scan_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    """64 MiB of memory is searched in well under a second (bytes.find, not word loops)."""
    size = 64 << 20
    memory = bytes(size - 8) + (0x5555_5555_9AC0).to_bytes(8, "little")
    maps = [MapsEntry(0, size, PROT_READ, False, 0, 0, "anon")]
    started = time.monotonic()
    hits, _ = memory_refs.find_refs(maps, lambda a, n: memory[a:a + n], 0x5555_5555_9AC0)
    ranged, _ = memory_refs.find_refs(maps, lambda a, n: memory[a:a + n], 0x5555_5555_9000,
                                      0x1000)
    assert [h.holder for h in hits] == [size - 8] == [h.holder for h in ranged]
    assert time.monotonic() - started < 2.0 * (1 if os.environ.get("CI") is None else 3)
