"""gdb follows a chosen process of a multi-process recording (issue 6): `rrgdb replay -p
PID|NAME` from the process's first exec, `-f PID` from its fork, as rr's -p/-f. Forward
and reverse execution, breakpoints and watchpoints apply to that process only; the other
processes are replayed around it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import record, run_rrgdb
from gdb_helpers import GdbScript, Recording, record_program, replay_server


@pytest.fixture(scope="module")
def forks(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return record_program("fork_debuggee", "O0", tmp_path_factory.mktemp("gdb-forks"))


def child_pid(recording: Recording) -> int:
    """The pid (as recorded) of the parent's child, from `rrgdb ps`."""
    listing = run_rrgdb(["ps", recording.trace]).stdout.decode()
    rows = re.findall(r"^(\d+)\t(\d+)\t", listing, re.M)
    assert len(rows) == 1, listing
    return int(rows[0][0])


def test_follow_the_child_from_its_exec(forks: Recording, tmp_path: Path) -> None:
    s = GdbScript()
    s("break work")
    first = s("continue")
    second = s("continue")
    s("watch counter")
    watched = s("continue")
    unwritten = s("reverse-continue")  # back over the write just reported
    back = s("reverse-continue")
    x_back = s("print x")
    counter_back = s("print counter")
    s("delete")
    end = s("continue")  # the end of the recording is a SIGKILL stop, as with rr
    exited = s("continue")
    with replay_server(forks, tmp_path, ["-p", str(child_pid(forks))]) as server:
        t = s.run_remote(server)
    # the kid calls work(1), work(2), work(3); the parent's work(100) is never seen
    t.expect_re(first, r"Breakpoint 1, work \(x=1\)")
    t.expect_re(second, r"Breakpoint 1, work \(x=2\)")
    t.expect(watched, "Old value = 1", "New value = 3")
    t.expect(unwritten, "Old value = 3", "New value = 1", "work (x=2)")
    t.expect_re(back, r"Breakpoint 1, work \(x=2\)")
    assert t.value(x_back) == "2" and t.value(counter_back) == "1", t.context(counter_back)
    t.expect(end, "SIGKILL", "_exit (status=status@entry=6)")
    t.expect(exited, "exited with code 06")
    assert "x=100" not in t.text, t.context()


def test_follow_the_child_from_its_fork(forks: Recording, tmp_path: Path) -> None:
    pid = child_pid(forks)
    s = GdbScript()
    threads = s("info threads")
    s("break child_side")
    hit = s("continue")
    s("finish")
    line = s("next")
    s("delete")
    back = s("reverse-next")
    begin = s("reverse-continue")
    s("break child_side")
    again = s("continue")
    with replay_server(forks, tmp_path, ["-f", str(pid)]) as server:
        t = s.run_remote(server)
    t.expect_re(threads, rf"Thread {pid}\.{pid}")
    t.expect_re(hit, r"Breakpoint 1, child_side \(n=10\)")
    assert t[line].strip(), t.context(line)
    t.expect_line(back, forks.line("child"))
    t.expect(begin, "No more reverse-execution history", "arch_fork")
    t.expect_re(again, r"Breakpoint 2, child_side \(n=10\)")


def test_the_followed_process_execs(forks: Recording, tmp_path: Path) -> None:
    """Followed from its fork, the child execs: gdb gets an exec event, loads the new
    program, and reverse execution goes back to the exec, not before it."""
    s = GdbScript()
    s("break child_side")
    s("continue")
    s("break work")
    first = s("continue")
    s("continue")
    back = s("reverse-continue")
    begin = s("reverse-continue")
    again = s("continue")
    with replay_server(forks, tmp_path, ["-f", str(child_pid(forks))]) as server:
        t = s.run_remote(server)
    t.expect(first, "is executing new program")
    t.expect_re(first, r"Breakpoint 2, work \(x=1\)")
    t.expect_re(back, r"Breakpoint 2, work \(x=1\)")
    t.expect(begin, "No more reverse-execution history", "_start")
    t.expect_re(again, r"Breakpoint 2, work \(x=1\)")


def test_follow_a_process_by_program_name(forks: Recording, tmp_path: Path) -> None:
    """A name picks the first process running that program: here the parent."""
    s = GdbScript()
    s("break work")
    hit = s("continue")
    with replay_server(forks, tmp_path, ["-p", forks.binary.name]) as server:
        t = s.run_remote(server)
    t.expect_re(hit, r"Breakpoint 1, work \(x=100\)")


@pytest.mark.parametrize("option", ["-p", "-f"])
def test_an_unknown_process_is_refused_with_the_list(forks: Recording, option: str) -> None:
    result = run_rrgdb(["replay", "-s", "1", option, "999999", forks.trace], check=False)
    assert result.returncode == 2, result
    message = result.stderr.decode()
    assert "no process 999999" in message and str(child_pid(forks)) in message, message


def test_ps_lists_processes_not_threads(build, tmp_path: Path) -> None:
    """pthread_create's clone3 keeps its flags in memory: the trace keeps them too."""
    trace = tmp_path / "trace"
    record([str(build("threads_mutex", "O0"))], trace)
    listing = run_rrgdb(["ps", trace]).stdout.decode().splitlines()
    assert len(listing) == 2, listing  # the header and the one process
