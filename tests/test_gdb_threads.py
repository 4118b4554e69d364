"""gdb on a multi-threaded replay (issue 6): threads are listed and selectable, stops name
the thread that hit, each thread has its own registers and backtrace, `monitor real-tid`
names a live thread, and reverse execution works across thread switches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gdb_helpers import GdbScript, Recording, record_program, replay_server


@pytest.fixture(scope="module")
def threads(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return record_program("threads_mutex", "O0", tmp_path_factory.mktemp("gdb-threads"))


def test_threads_in_gdb_forward_and_reverse(threads: Recording, tmp_path: Path) -> None:
    s = GdbScript()
    s("break work")
    first = s("continue")
    second = s("continue")
    listing = s("info threads")
    bt = s("bt 2")
    arg = s("print arg")
    real = s("monitor real-tid")
    back = s("reverse-continue")
    arg_back = s("print arg")
    stepped = s("stepi")
    unstepped = s("reverse-stepi")
    again = s("continue")
    with replay_server(threads, tmp_path) as server:
        t = server and s.run_remote(server)
    # which worker runs first is the recording's choice; the replay must keep it
    hit = r'Thread \d+ "threads_mutex-O" hit Breakpoint 1, work \(arg=(0x\d)\)'
    a = t.expect_re(first, hit).group(1)
    b = t.expect_re(second, hit).group(1)
    assert a != b, t.context(second)
    ids = re.findall(r"Thread (\d+)\.(\d+)", t[listing])
    # names from qXfer:threads (comm: the recorded program's name, at most 15 bytes)
    assert t[listing].count('"threads_mutex-O"') == len(ids), t.context(listing)
    assert len({tid for _, tid in ids}) >= 3, t.context(listing)
    assert re.search(rf"^\*\s+\d+\s+Thread \d+\.\d+ .*work \(arg={b}\)", t[listing], re.M), \
        t.context(listing)
    t.expect(bt, "start_thread")
    t.expect(arg, f"(void *) {b}")
    assert int(t[real].strip()) > 0, t.context(real)
    t.expect_re(back, rf"work \(arg={a}\)")
    t.expect(arg_back, f"(void *) {a}")
    assert t[stepped].strip() and t[unstepped].strip()
    assert t.expect_re(again, hit).group(1) == b, t.context(again)
