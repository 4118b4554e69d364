"""gdb workflows found broken when field-testing rrgdb against real replays, each checked
the way a user or an IDE drives gdb (tests/programs/*.c, recorded once per module)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gdb_helpers import (
    GdbScript,
    Recording,
    ReplayServer,
    record_program,
    replay_server,
    requires_gdb,
)

pytestmark = requires_gdb


@pytest.fixture(scope="module")
def debuggee(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    rec = record_program("gdb_debuggee", "O0", tmp_path_factory.mktemp("gdb-field-debuggee"))
    assert rec.status == 42, rec
    return rec


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


def test_info_auxv_is_the_recorded_one(watch_threads: Recording, tmp_path: Path) -> None:
    """`info auxv` shows the auxv the program was given (its strings read from the
    replayed stack); it was the replaying exec's, whose AT_EXECFN and AT_PLATFORM pointed
    into other strings of the recorded stack (the middle of LD_PRELOAD's value)."""
    s = GdbScript()
    at_start = s("info auxv")
    s("break main")
    s("continue")
    in_main = s("info auxv")
    with replay_server(watch_threads, tmp_path) as server:
        t = s.run_remote(server)
    for index in (at_start, in_main):
        t.expect_re(index, rf'AT_EXECFN .* 0x[0-9a-f]+ "{re.escape(str(watch_threads.binary))}"$')
        t.expect_re(index, r'AT_PLATFORM .* 0x[0-9a-f]+ "x86_64"$')
        t.expect_re(index, r"AT_SYSINFO_EHDR .* 0x[0-9a-f]+$")


def test_rwatch_stops_at_reads_only(debuggee: Recording, tmp_path: Path) -> None:
    """`rwatch counter` stops where counter is read, both ways, as gdb does natively on
    x86: the server says read watchpoints are unsupported and gdb falls back to an access
    watchpoint, skipping hits that changed the value. The server used to accept Z3 and
    set an access watchpoint, so gdb reported the store `counter += delta` as a read."""
    L = debuggee.line
    s = GdbScript()
    s("rwatch counter")
    first = s("continue")
    second = s("continue")
    third = s("continue")
    back = s("reverse-continue")  # the same read, seen from before it (record full's way)
    back2 = s("reverse-continue")
    with replay_server(debuggee, tmp_path) as server:
        t = s.run_remote(server)
    t.expect(first, "Hardware read watchpoint 1: counter", "Value = 0", "add_to_counter (delta=1)")
    t.expect_line(first, L("counter-store"))
    # `return counter`: the trap comes after the load, on the next line's first instruction
    t.expect(second, "Hardware read watchpoint 1: counter", "Value = 1", "(delta=1)")
    t.expect_line(second, L("counter-store") + 2)
    t.expect(third, "Value = 1", "add_to_counter (delta=2)")
    t.expect_line(third, L("counter-store"))
    t.expect(back, "Value = 1", "add_to_counter (delta=2)")
    t.expect_line(back, L("counter-store"))
    t.expect(back2, "Value = 1", "add_to_counter (delta=1)")
    t.expect_line(back2, L("counter-store") + 1)


#: rrgdb's command line, with each replay target taking longer to make than gdb waits for
#: a packet's ack (2 s) or for a reply (3 x 2 s): a loaded machine, or `-g EVENT` far
#: into a long trace.
_SLOW_TARGETS = """
import sys, time
import rrgdb.gdb.replay_target as replay_target
from rrgdb.cli import main
delays = [3.0, 7.0]
made = replay_target.ReplayTarget.__init__
def slowly(self, *args, **kwargs):
    time.sleep(delays.pop(0) if delays else 0.0)
    made(self, *args, **kwargs)
replay_target.ReplayTarget.__init__ = slowly
sys.exit(main(sys.argv[1:]))
"""


def test_gdb_connects_while_the_replay_takes_long_to_start(
        debuggee: Recording, tmp_path: Path) -> None:
    """The replay for a connection was made when gdb connected, before its first packet
    was read: gdb sent qSupported again after 2 s without an ack, and took the second
    answer for the answer to vMustReplyEmpty ("Remote replied unexpectedly"); past 6 s
    it gave up on the reply. The first target is made before the server is announced,
    packets are acked at once, and a `+` a second keeps gdb waiting for a slow reply."""
    s = GdbScript()
    when = s("monitor when")
    stepped = s("stepi")
    server = ReplayServer(debuggee.trace, tmp_path, launcher=("-c", _SLOW_TARGETS))
    with server:
        first = s.run_remote(server)
        second = s.run_remote(server)  # its target is made when it connects: 7 s
    for t in (first, second):
        assert "Remote replied unexpectedly" not in t.text, t.context()
        assert "Ignoring packet error" not in t.text, t.context()
        t.expect(when, "Current event: ")
        t.expect_re(stepped, r"0x[0-9a-f]+ in _start")


def test_stepping_on_after_reverse_execution_went_back_before_libc_was_loaded(
        debuggee: Recording, tmp_path: Path) -> None:
    """reverse-continue to the start of the recording, where libc is not mapped yet, then
    `next`: gdb inserts its longjmp breakpoint in libc, as it has seen libc loaded. The
    server refused a breakpoint where nothing was mapped, so `next` failed ("Cannot
    insert breakpoint 0"), and `continue` after it. Such a breakpoint is now pending,
    written once code is mapped there."""
    s = GdbScript()
    s("break main")
    for _ in range(2):
        s("continue")
        back = s("reverse-continue")
    stepped = s("next")
    s("delete")
    s(f"break gdb_debuggee.c:{debuggee.line('write')}")
    hit = s("continue")
    with replay_server(debuggee, tmp_path) as server:
        t = s.run_remote(server)
    t.expect(back, "No more reverse-execution history")
    for index in (stepped, hit):
        assert "Cannot insert breakpoint" not in t[index], t.context(index)
    t.expect_line(hit, debuggee.line("write"))
