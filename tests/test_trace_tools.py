"""Trace tools: `dump --stats` summarises a trace; `pack` confirms a trace is
self-contained, and a packed trace replays after being moved and after the originals of
the program and its libraries' copies' sources are gone."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import assert_replay_matches, describe, record, replay, run_rrgdb


def test_dump_stats_counts_syscalls_and_traps(build, tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    record([str(build("pids", "O0"))], trace)
    stats = run_rrgdb(["dump", "--stats", trace])
    assert stats.returncode == 0, describe(stats)
    text = stats.stdout.decode()
    assert "mmap" in text and "traps (record)" in text and "traps per 1000 syscalls" in text
    events = int(next(line for line in text.splitlines()
                      if line.startswith("events\t")).split("\t")[1])
    assert "scheduling\tno PMU" in text or "scheduling\t" in text
    listed = run_rrgdb(["dump", trace]).stdout.decode().splitlines()
    assert events == len(listed)


def test_pack_then_replay_elsewhere_after_deleting_the_originals(build, tmp_path: Path) -> None:
    program = tmp_path / "prog"
    shutil.copy(build("pointers", "O0"), program)
    trace = tmp_path / "trace"
    recorded = record([str(program)], trace)
    packed = run_rrgdb(["pack", trace])
    assert packed.returncode == 0 and b"self-contained" in packed.stderr, describe(packed)
    program.unlink()
    moved = tmp_path / "elsewhere" / "moved-trace"
    moved.parent.mkdir()
    shutil.move(str(trace), moved)
    assert_replay_matches(recorded, replay(moved, cwd="/"))


def test_pack_reports_a_missing_copy(build, tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    record([str(build("pids", "O0"))], trace)
    copies = [p for p in (trace / "files").iterdir() if len(p.name) == 64]
    copies[0].unlink()
    packed = run_rrgdb(["pack", trace])
    assert packed.returncode == 2, describe(packed)
    assert packed.stderr.startswith(b"rrgdb:") and b"Traceback" not in packed.stderr


def test_dump_names_real_time_signals(tmp_path: Path) -> None:
    """A real-time signal (no name in Python's signal module) is dumped as gdb names it."""
    python3 = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
    code = ("import os, signal; signal.signal(35, lambda *a: None); "
            "os.kill(os.getpid(), 35); print('handled')")
    trace = tmp_path / "trace"
    recorded = record([python3, "-c", code], trace)
    assert recorded.stdout == b"handled\n", describe(recorded)
    dumped = run_rrgdb(["dump", trace])
    assert dumped.returncode == 0, describe(dumped)
    assert b"signal SIG35" in dumped.stdout, dumped.stdout.decode()[-2000:]
    assert_replay_matches(recorded, replay(trace))
