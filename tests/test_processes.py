"""Child processes and asynchronous signals record and replay exactly (issue 6, the
multi-process part): shell pipelines, fork/exec/wait, vfork (gcc's driver, Python's
subprocess), SIGCHLD handlers, SIGALRM while blocked or computing, kill() between
processes. `rrgdb ps` lists every process with its parent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import assert_replay_matches, describe, record, replay, run_rrgdb

PYTHON3 = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"


def record_and_replay(cmd: list[str], trace: Path, **kw: object) -> None:
    recorded = record(cmd, trace, **kw)
    assert b"trace saved" in recorded.stderr, describe(recorded)
    assert_replay_matches(recorded, replay(trace))


@pytest.mark.parametrize(
    "script",
    [
        "ls /usr/bin | wc -l",
        "gzip -c {data} | gunzip | md5sum",
        "for i in 1 2 3; do echo $i; done | sort -r | head -2; exit 3",
    ],
    ids=["ls-wc", "gzip-gunzip-md5sum", "loop-sort-exit"],
)
def test_shell_pipelines(script: str, tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_bytes(b"some data to compress\n" * 1000)
    record_and_replay(["/bin/sh", "-c", script.format(data=data)], tmp_path / "trace")


def test_gcc_driver_cc1_and_as(tmp_path: Path) -> None:
    """gcc vforks cc1 and as; the vfork parent is held until the child's exec is recorded."""
    source = tmp_path / "x.c"
    source.write_text("int twice(int x) { return 2 * x; }\n")
    trace = tmp_path / "trace"
    record_and_replay(["gcc", "-c", str(source), "-o", str(tmp_path / "x.o")], trace)
    listing = run_rrgdb(["ps", trace]).stdout.decode()
    assert "cc1" in listing and "as " in listing, listing


def test_python_subprocess(tmp_path: Path) -> None:
    code = "import subprocess;print(subprocess.run(['echo','hi'],capture_output=True).stdout)"
    record_and_replay([PYTHON3, "-c", code], tmp_path / "trace")


@pytest.mark.parametrize("name", ["fork_exec_wait", "alarm_signals", "spawn_with_handlers"])
def test_processes_and_signals(name: str, build, tmp_path: Path) -> None:
    record_and_replay([str(build(name, "O0"))], tmp_path / "trace")


def test_ps_lists_every_process_with_its_parent(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    record(["/bin/sh", "-c", "ls / | wc -l"], trace)
    rows = [line.split("\t") for line in run_rrgdb(["ps", trace]).stdout.decode().splitlines()]
    assert rows[0] == ["PID", "PPID", "EXIT", "CMD"]
    shell, *children = rows[1:]
    assert len(children) == 2
    assert all(child[1] == shell[0] for child in children)
    assert {child[3].split()[0] for child in children} == {"ls", "wc"}


def test_processes_sharing_memory_replay_their_interleaving(build, tmp_path: Path) -> None:
    """Forked children add to counters in MAP_SHARED memory (anonymous, and a file's)
    without locks, across traced syscalls: the recorder lets one process of those that
    share memory run user code at a time, and orders their syscall entries, so the sums
    (how many additions were lost) replay exactly, every time."""
    binary = build("shared_counter", "O2")
    for attempt in range(5):
        trace = tmp_path / f"trace{attempt}"
        recorded = record([str(binary)], trace)
        assert recorded.returncode == 0, describe(recorded)
        assert_replay_matches(recorded, replay(trace))


def test_a_first_shared_mapping_waits_for_the_shared_turn(build, tmp_path: Path) -> None:
    """The parent maps memory MAP_SHARED for the first time while its child, which shares
    memory already, computes: the parent keeps its own process's turn through the mmap and
    then needs the turn of the processes that share memory too. It must wait for it (the
    child is preempted for it), not stop forever: the recording hung."""
    binary = build("shared_mapping_turns", "O2")
    trace = tmp_path / "trace"
    recorded = record([str(binary)], trace, timeout=60)
    assert recorded.returncode == 0 and b"child exited with 0" in recorded.stdout, (
        describe(recorded))
    assert_replay_matches(recorded, replay(trace))


@pytest.mark.skipif(shutil.which("ninja") is None, reason="ninja is not installed")
def test_ninja_building_in_parallel(tmp_path: Path) -> None:
    """ninja compiles (with dependency files) and links two programs, several gcc
    processes at once: found in the field, where the recording of such a build hung at a
    gcc driver's mmap (3 of 3 recordings; the test above is the same case, forced)."""
    (tmp_path / "a.c").write_text("int main(void) { return 0; }\n")
    (tmp_path / "b.c").write_text('#include <stdio.h>\nint main(void) { puts("b"); }\n')
    (tmp_path / "build.ninja").write_text(
        "rule cc\n  command = gcc -MD -MF $out.d -O2 -c $in -o $out\n"
        "  deps = gcc\n  depfile = $out.d\n"
        "rule link\n  command = gcc $in -o $out\n"
        "build a.o: cc a.c\nbuild b.o: cc b.c\nbuild a: link a.o\nbuild b: link b.o\n")
    trace = tmp_path / "trace"
    recorded = record(["ninja", "-C", str(tmp_path)], trace, timeout=60)
    assert recorded.returncode == 0 and (tmp_path / "b").exists(), describe(recorded)
    assert_replay_matches(recorded, replay(trace))


def test_system_v_shared_memory(build, tmp_path: Path) -> None:
    """shmget/shmat/shmdt/shmctl between a parent and its child, with lock-free additions
    across traced syscalls: replay gives the segment one memfd, attached where the
    recording attached it, and the sum replays every time."""
    binary = build("sysv_shm", "O2")
    for attempt in range(3):
        trace = tmp_path / f"trace{attempt}"
        recorded = record([str(binary)], trace)
        assert recorded.returncode == 0 and b"size 8192, child 0" in recorded.stdout, (
            describe(recorded))
        assert_replay_matches(recorded, replay(trace))


def test_python_multiprocessing_pool(tmp_path: Path) -> None:
    """multiprocessing's workers share semaphores with the parent's threads: MAP_SHARED
    files in /dev/shm, several with the same contents, each of which must stay its own
    file in replay."""
    code = ("import multiprocessing as m\n"
            "with m.Pool(2) as pool: print(sum(pool.map(abs, range(-50, 50))))\n")
    trace = tmp_path / "trace"
    recorded = record([PYTHON3, "-c", code], trace)
    assert recorded.returncode == 0 and recorded.stdout == b"2500\n", describe(recorded)
    assert_replay_matches(recorded, replay(trace))
