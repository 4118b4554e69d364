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
    t.expect_re(first, r"Thread \d+ hit Breakpoint 1, work \(arg=0x0\)")
    t.expect_re(second, r"Thread \d+ hit Breakpoint 1, work \(arg=0x1\)")
    ids = re.findall(r"Thread (\d+)\.(\d+)", t[listing])
    assert len({tid for _, tid in ids}) >= 3, t.context(listing)
    assert re.search(r"^\*\s+\d+\s+Thread \d+\.\d+\s+work \(arg=0x1\)", t[listing], re.M), \
        t.context(listing)
    t.expect(bt, "start_thread")
    t.expect(arg, "(void *) 0x1")
    assert int(t[real].strip()) > 0, t.context(real)
    t.expect_re(back, r"work \(arg=0x0\)")
    t.expect(arg_back, "(void *) 0x0")
    assert t[stepped].strip() and t[unstepped].strip()
    t.expect_re(again, r"Thread \d+ hit Breakpoint 1, work \(arg=0x1\)")
