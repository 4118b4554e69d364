"""gdb on a multi-threaded replay (issue 6): threads are listed and selectable, stops name
the thread that hit, each thread has its own registers and backtrace, `monitor real-tid`
names a live thread, and reverse execution works across thread switches and exits."""

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


def test_threads_exit_and_the_process_ends_once(threads: Recording, tmp_path: Path) -> None:
    """Workers that return are gone from the thread list; their exits are not stops (the
    end of the recording is: the main thread's exit, once), and reverse execution goes
    back across them to a worker."""
    s = GdbScript()
    s(f"break threads_mutex.c:{threads.line('report')}")
    report = s("continue")
    listing = s("info threads")
    s("break work")
    back = s("reverse-continue")
    back_listing = s("info threads")
    s("delete")
    end = s("continue")
    exited = s("continue")
    with replay_server(threads, tmp_path) as server:
        t = s.run_remote(server)
    t.expect_re(report, r"Breakpoint 1, main \(\) at \S*threads_mutex\.c:"
                        rf"{threads.line('report')}")
    assert "SIGKILL" not in t[report] and "exited" not in t[report], t.context(report)
    assert len(re.findall(r"Thread \d+\.\d+", t[listing])) == 1, t.context(listing)
    # the last worker to start its loop (all four were live then)
    t.expect_re(back, r"hit Breakpoint 2, work \(arg=0x\d\)")
    assert len(re.findall(r"Thread \d+\.\d+", t[back_listing])) >= 2, t.context(back_listing)
    t.expect(end, "SIGKILL")
    t.expect_re(end, r"_exit")
    t.expect(exited, "exited normally")



@pytest.fixture(scope="module")
def watch_threads(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    rec = record_program("threads_watch", "O0", tmp_path_factory.mktemp("gdb-threads-watch"))
    assert rec.status == 0 and b"shared=13" in rec.stdout, rec
    return rec


def test_reverse_watchpoint_across_threads(watch_threads: Recording, tmp_path: Path) -> None:
    """threads_watch: a worker stores 1, 2, 3 while main sleeps in a read, then main
    stores 13. Forwards the watchpoint stops at each store in its thread; backwards it
    undoes main's, then the worker's, stepping back in the thread that wrote (main, asleep
    in the syscall buffer's code then, is not the thread to step)."""
    s = GdbScript()
    s("break main")
    s("continue")
    s("delete")
    s("watch shared")
    forward = [s("continue") for _ in range(4)]
    back = []
    for _ in range(3):
        back += [s("reverse-continue"), s("print shared")]
    with replay_server(watch_threads, tmp_path) as server:
        t = s.run_remote(server)
    for index, (old, new) in zip(forward, [(0, 1), (1, 2), (2, 3), (3, 13)], strict=True):
        t.expect(index, f"Old value = {old}", f"New value = {new}")
    t.expect_re(forward[3], r"main \(\)")
    for index, printed, (old, new) in zip(back[::2], back[1::2], [(13, 3), (3, 2), (2, 1)],
                                          strict=True):
        t.expect(index, f"Old value = {old}", f"New value = {new}")
        assert t.value(printed) == str(new), t.context(printed)
    t.expect_line(back[0], watch_threads.line("main-store"))
    t.expect_re(back[2], r"in worker \(")
    t.expect_line(back[2], watch_threads.line("worker-store"))


@pytest.mark.needs_syscallbuf  # the stub of the buffer's blocked read()
def test_reverse_stepi_right_after_a_syscall_that_others_ran_past(
        watch_threads: Recording, tmp_path: Path) -> None:
    """threads_watch's main thread sleeps in read() (made again traced from the buffer's
    stub when it blocks) while the worker runs: stopped just after that syscall, with the
    worker's events recorded since, reverse-stepi goes back to the syscall instruction
    (the main thread's own previous event, not the worker's) and stepi forward again."""
    s = GdbScript()
    s("break main")
    s("continue")
    s("break *rrgdb_traced_cmp4096+2")
    hit = s("continue")
    at = s("print/x $pc")
    s("reverse-stepi")
    at_back = s("print/x $pc")
    s("stepi")
    again = s("print/x $pc")
    with replay_server(watch_threads, tmp_path) as server:
        t = s.run_remote(server)
    t.expect_re(hit, r"Thread 1 .* hit Breakpoint 2, .* in rrgdb_traced_cmp4096")
    assert int(t.value(at_back), 16) == int(t.value(at), 16) - 2, t.context()
    assert t.value(again) == t.value(at), t.context()


def test_reverse_next_over_a_call_the_other_threads_make_too(
        threads: Recording, tmp_path: Path) -> None:
    """Back over usleep(), which the other workers call meanwhile: the step-resume
    breakpoint at its entry is hit by them first. gdb steps each back over it (which takes
    every thread to that moment), then puts a breakpoint where its own thread stands now
    and expects that thread to report there at once. reverse-next lands on the call's
    line, in the same thread and iteration, and reverse-step goes on from there."""
    s = GdbScript()
    s(f"break threads_mutex.c:{threads.line('add')} if id == 1")
    s("continue")
    s("delete")
    for _ in range(5):
        s("next")
    ahead = s("frame")
    back = s("reverse-next")
    where = s("frame")
    worker = s("print id")
    iteration = s("print i")
    further = s("reverse-next")
    with replay_server(threads, tmp_path) as server:
        t = s.run_remote(server)
    t.expect_re(ahead, r"work \(arg=0x1\)")
    t.expect_line(ahead, threads.line("loop"))
    t.expect_line(back, threads.line("nap"))
    t.expect_re(where, r"work \(arg=0x1\)")
    assert t.value(worker) == "1" and t.value(iteration) == "0", t.context(where)
    t.expect_line(further, threads.line("nap") - 1)


def test_breakpoints_hit_while_replay_searches_for_a_preemption_point(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """threads_compute's threads are preempted mid-loop; on the way to such a point replay
    searches at the program's speed behind a patched jump. A breakpoint the thread passes
    on the way is reported (it raised 'did not reach the preemption point': E01), going
    on searches on, and reverse-continue comes back to the hits in order."""
    recording = record_program("threads_compute", "O2", tmp_path_factory.mktemp("compute"))
    s = GdbScript()
    s(f"break threads_compute.c:{recording.line('round')}")
    forward = [s("continue") for _ in range(6)]
    rounds = s("print progress")
    back = s("reverse-continue")
    rounds_back = s("print progress")
    s("delete")
    end = s("continue")
    with replay_server(recording, tmp_path) as server:
        t = s.run_remote(server)
    for stop in forward:
        t.expect_re(stop, r"hit Breakpoint 1, work \(")
    done = [int(n) for n in re.findall(r"\d+", t[rounds].split("=", 1)[1])]
    done_back = [int(n) for n in re.findall(r"\d+", t[rounds_back].split("=", 1)[1])]
    assert len(done) == 3 and sum(done) >= 4, t.context(rounds)
    t.expect_re(back, r"hit Breakpoint 1, work \(")
    assert sum(done_back) == sum(done) - 1, t.context(rounds_back)
    t.expect(end, "SIGKILL")
