"""gdb workflows found broken when field-testing rrgdb against real replays, each checked
the way a user or an IDE drives gdb (tests/programs/*.c, recorded once per module)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gdb_helpers import GdbScript, Recording, record_program, replay_server, requires_gdb

pytestmark = requires_gdb


@pytest.fixture(scope="module")
def watch_threads(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return record_program("threads_watch", "O0", tmp_path_factory.mktemp("gdb-field-threads"))


def test_reverse_stepi_in_a_thread_that_is_not_the_last_stopped(
        watch_threads: Recording, tmp_path: Path) -> None:
    """`thread 1` + `reverse-stepi` (scheduler-locking on, so gdb sends `Hc<thread 1>`
    and `bs`) steps thread 1 back; it stepped the thread of the last stop, which gdb
    reported as a SIGTRAP in it, or died on an internal error."""
    s = GdbScript()
    s(f"break threads_watch.c:{watch_threads.line('worker-store')}")
    hit = s("continue")
    s("thread 1")
    before = s("print/x $pc")
    s("set scheduler-locking on")
    back = s("reverse-stepi")
    current = s("thread")
    after = s("print/x $pc")
    with replay_server(watch_threads, tmp_path) as server:
        t = s.run_remote(server)
    t.expect(hit, "hit Breakpoint 1, worker")
    for index in (back, current):
        assert "SIGTRAP" not in t[index] and "internal-error" not in t[index], t.context(index)
    t.expect_re(current, r"Current thread is 1 ")
    assert re.search(r"0x[0-9a-f]+", t[after]), t.context(after)
    assert t.value(after) != t.value(before), t.context(after)
