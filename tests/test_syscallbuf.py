"""Syscall buffering (issue 5): with the preload library, hot syscalls -- called by the
program or by libc itself through its patched syscall sites -- are recorded without a
ptrace stop and replayed without one; results are the same with and without buffering
(`--no-syscallbuf`)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import (
    assert_replay_matches,
    describe,
    record,
    replay,
    rrgdb_lines,
    run_native,
    run_rrgdb,
)
from test_record_replay import recorded_pid, rewrite_trace

from rrgdb.trace import CpuidFrame, FlushFrame, TraceReader

PYTHON3 = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"

LOOP = r"""
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    int zero = open("/dev/zero", O_RDONLY), null = open("/dev/null", O_WRONLY);
    char buf[64];
    long total = 0;
    struct timespec ts;
    for (int i = 0; i < 20000; i++) {
        total += read(zero, buf, sizeof buf);
        total += write(null, buf, sizeof buf);
        clock_gettime(CLOCK_MONOTONIC, &ts);
    }
    printf("%ld bytes, last clock %ld\n", total, (long)ts.tv_nsec);
    return 0;
}
"""


def stats(trace: Path) -> dict[str, str]:
    lines = run_rrgdb(["dump", "--stats", trace]).stdout.decode().splitlines()
    return dict(line.split("\t", 1) for line in lines if "\t" in line and line[0] != " ")


def per_syscall(trace: Path) -> dict[str, tuple[int, int]]:
    """name -> (all calls, buffered calls), from `dump --stats` (the 15 most frequent)."""
    lines = run_rrgdb(["dump", "--stats", trace]).stdout.decode().splitlines()
    out = {}
    for line in lines:
        if line.startswith("  ") and line.endswith(" buffered)"):
            name, count, buffered = line.strip().split("\t")
            out[name] = (int(count), int(buffered.strip("(").split()[0]))
    return out


def traced_and_buffered(trace: Path) -> tuple[int, int]:
    traced, buffered = (int(n.split()[0]) for n in stats(trace)["syscalls"].split(", "))
    return traced, buffered


@pytest.fixture
def loop_program(tmp_path: Path) -> Path:
    source = tmp_path / "loop.c"
    source.write_text(LOOP)
    binary = tmp_path / "loop"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(source)], check=True)
    return binary


@pytest.mark.needs_syscallbuf
def test_buffered_syscalls_record_and_replay_without_traps(loop_program: Path,
                                                           tmp_path: Path) -> None:
    trace = tmp_path / "buffered"
    recorded = record([str(loop_program)], trace)
    assert_replay_matches(recorded, replay(trace))
    numbers = stats(trace)
    traced, buffered = (int(n.split()[0]) for n in numbers["syscalls"].split(", "))
    assert buffered >= 59000 and traced < 200, numbers
    record_traps = float(numbers["traps per 1000 syscalls"].split()[0])
    assert record_traps < 10, numbers


def test_results_are_the_same_without_buffering(loop_program: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    recorded = run_rrgdb(["record", "--no-syscallbuf", "-o", plain, loop_program])
    assert recorded.returncode == 0, describe(recorded)
    assert_replay_matches(recorded, replay(plain))
    assert stats(plain)["syscalls"].endswith(" 0 buffered")


@pytest.mark.parametrize("name", ["clocks", "file_io", "signals", "alarm_signals",
                                  "fork_exec_wait", "threads_mutex"])
def test_programs_replay_with_and_without_buffering(name: str, build, tmp_path: Path) -> None:
    flags = ("-pthread",) if name.startswith("threads") else ()
    binary = build(name, "O0", *flags)
    args = [str(tmp_path)] if name == "file_io" else []
    for option in ([], ["--no-syscallbuf"]):
        trace = tmp_path / f"trace{len(option)}"
        recorded = run_rrgdb(["record", *option, "-o", trace, binary, *args])
        assert b"trace saved" in recorded.stderr, describe(recorded)
        assert_replay_matches(recorded, replay(trace))


# Programs of calls buffered in some forms only, with, for each syscall of their loops,
# how many calls at least are buffered and how many at most traced: the forms that stay
# traced (a new signal action, a poll with a signal mask, a message carrying an fd, an
# unblocking that lets a pending signal in), and a sleep interrupted by signals (each
# SIGALRM that comes during a buffered sleep costs a few traced calls: the sleep is remade
# traced, where the signal is delivered).
BUFFERED_PROGRAMS = {
    "buffered_queries": {"rt_sigaction": (3100, 55), "rt_sigprocmask": (150, 0),
                         "getpid": (52, 0), "gettimeofday": (50, 0)},
    # 200 rounds of block + unblock and 50 ms of them under a 500 µs timer; traced: the
    # unblockings that let in the 20 raised signals and the timer's (about 100)
    "buffered_masks": {"rt_sigprocmask": (800, 200)},
    "buffered_sleeps": {"clock_nanosleep": (402, 120)},
    "buffered_polls": {"poll": (202, 0), "ppoll": (202, 100), "epoll_wait": (202, 0),
                       "epoll_pwait": (202, 100)},
    "buffered_messages": {"sendmsg": (201, 0), "recvmsg": (225, 1)},
    # 200 waits that fail with EAGAIN and 100 wakes; traced: the ping-pong's waits that
    # sleep (at most one a round per thread) and 5 that time out
    "buffered_futexes": {"futex": (300, 110)},
    # 100 hints buffered; the 20 MADV_DONTNEED traced
    "buffered_hints": {"madvise": (100, 25)},
}


def varying_removed(output: bytes) -> bytes:
    """A program's output without what may differ between runs (in parentheses)."""
    return re.sub(rb" \(.*?\)", b"", output)


@pytest.mark.needs_syscallbuf
@pytest.mark.parametrize("name", sorted(BUFFERED_PROGRAMS))
def test_queries_sleeps_polls_messages_and_futex_waits_are_buffered(
        name: str, build, tmp_path: Path) -> None:
    """Signal-state queries, signal mask changes, gettimeofday, getpid, sleeps, polls
    (blocking ones too, until a child writes a pipe 20 ms later), messages and futex waits
    that do not sleep, called through libc: recorded without a stop, replayed without one,
    with the results of a native run and of a run without buffering."""
    binary = build(name, "O2", "-pthread")
    native = run_native([binary])
    assert native.returncode == 0, describe(native)
    traces = {}
    for option in ([], ["--no-syscallbuf"]):
        trace = traces[len(option)] = tmp_path / f"trace{len(option)}"
        recorded = run_rrgdb(["record", *option, "-o", trace, binary])
        assert recorded.returncode == 0 and b"trace saved" in recorded.stderr, describe(recorded)
        assert varying_removed(recorded.stdout) == varying_removed(native.stdout), (
            describe(recorded))
        assert_replay_matches(recorded, replay(trace))
    counts = per_syscall(traces[0])
    for syscall, (least, most_traced) in BUFFERED_PROGRAMS[name].items():
        total, buffered = counts[syscall]
        assert buffered >= least and total - buffered <= most_traced, (syscall, counts)
    plain = per_syscall(traces[1])
    for syscall, (least, _) in BUFFERED_PROGRAMS[name].items():
        assert plain[syscall][0] >= least and plain[syscall][1] == 0, (syscall, plain)


@pytest.mark.needs_syscallbuf
def test_a_tampered_buffered_result_is_reported_as_divergence(build, tmp_path: Path) -> None:
    """getpid is buffered: change its result in the flush that holds it to a pid with one
    more digit, and the replay diverges at the next traced syscall (a register holds the
    pid, or the line the program writes is longer)."""
    trace = tmp_path / "trace"
    recorded = record([str(build("pids", "O0"))], trace)
    assert recorded.returncode == 0, describe(recorded)
    pid = recorded_pid(recorded)
    getpid = 39
    head = struct.Struct("<qII")  # a record: result, syscall number, size

    def tamper(frames: list[object]) -> list[object]:
        for index, frame in enumerate(frames):
            data = frame.data if isinstance(frame, FlushFrame) else b""
            pos = 8  # after the FlushFrame's prefix
            while pos + head.size <= len(data):
                result, nr, size = head.unpack_from(data, pos)
                if nr == getpid:
                    assert result == pid
                    changed = bytearray(data)
                    head.pack_into(changed, pos, pid * 10 + 1, nr, size)
                    frames[index] = dataclasses.replace(frame, data=bytes(changed))  # type: ignore
                    return frames
                pos += (size + 7) & ~7
        raise AssertionError("no buffered getpid in the trace")

    tampered = tmp_path / "tampered"
    rewrite_trace(trace, tampered, tamper)
    replayed = replay(tampered)
    assert replayed.returncode == 1, describe(replayed)
    message = b"\n".join(rrgdb_lines(replayed.stderr)).decode()
    assert re.search(r"diverged at event \d+ .*registers differ", message), describe(replayed)


@pytest.mark.needs_syscallbuf
def test_libc_internal_syscalls_are_buffered(build, tmp_path: Path) -> None:
    """fopen/fprintf/fgets/readdir/stat reach their syscalls inside libc (no exported
    function to interpose): the patched sites buffer them in record, replay needs no stop
    for them, and the output is the same."""
    binary = build("libc_io", "O2")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    trace = tmp_path / "trace"
    recorded = record([str(binary), str(scratch)], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert_replay_matches(recorded, replay(trace))
    counts = per_syscall(trace)
    rounds = 300
    for name, calls in (("openat", 3 * rounds), ("close", 3 * rounds), ("write", rounds),
                        ("read", rounds), ("getdents64", 2 * rounds),
                        ("newfstatat", 4 * rounds)):
        total, buffered = counts[name]
        assert buffered >= calls and total - buffered < 10, (name, counts)
    summary = stats(trace)
    replay_traps = float(summary["traps per 1000 syscalls"].split(", ")[1].split()[0])
    # less cpuid's stops (CPUID faulting: about 70 in the start-up, none per syscall)
    traced, _, buffered_calls, _ = summary["syscalls"].split()
    cpuid = sum(isinstance(f, CpuidFrame) for f in TraceReader(trace).frames())
    assert replay_traps - 1000 * cpuid / (int(traced) + int(buffered_calls)) < 30, summary


@pytest.mark.needs_syscallbuf
def test_python_workload(tmp_path: Path) -> None:
    """The interpreter's own file work (stat, open, read, lseek, close, ioctl) is buffered:
    before libc's sites were patched this run had ~600 traced syscalls. So are the
    queries of every signal's action it makes at start-up."""
    code = "import json,os;d=[{'k':i,'v':os.urandom(4).hex()} for i in range(2000)];" \
           "print(len(json.dumps(d)), d[7])"
    trace = tmp_path / "trace"
    recorded = record([PYTHON3, "-c", code], trace)
    assert_replay_matches(recorded, replay(trace))
    traced, buffered = traced_and_buffered(trace)
    assert traced < 300 and buffered > 2500, stats(trace)
    assert per_syscall(trace)["rt_sigaction"][1] >= 60, stats(trace)


def test_library_exports_the_64_bit_names() -> None:
    """Programs built with _FILE_OFFSET_BITS=64 call the 64-suffixed names."""
    from rrgdb.syscallbuf import preload_library

    symbols = subprocess.run(["nm", "-D", "--defined-only", str(preload_library())],
                             capture_output=True, text=True, check=True).stdout.split()
    for name in ("lseek64", "stat64", "fstat64", "lstat64", "fstatat64", "getdents64"):
        assert name in symbols, name
    # cancellation points are left to libc (its patched sites): see test_threads.py
    for name in ("read", "write", "open", "open64", "openat", "close", "pread64", "readv"):
        assert name not in symbols, name


@pytest.mark.needs_syscallbuf
def test_writes_through_copies_of_stdout_and_stderr_are_replayed(build, tmp_path: Path) -> None:
    """Replay prints output from traced writes, so writes through a copy of stdout or
    stderr (dup, fcntl F_DUPFD, open("/dev/stdout"), inherited by a fork or across an
    exec) must stay traced: without that they were buffered and replay lost them. A plain
    file dup2'd over such a copy is buffered again (200 one-byte writes)."""
    binary = build("stdio_copies", "O2")
    for option in ([], ["--no-syscallbuf"]):
        trace = tmp_path / f"trace{len(option)}"
        recorded = run_rrgdb(["record", *option, "-o", trace, binary])
        assert recorded.stdout.count(b"through") == 4, describe(recorded)
        assert b"after exec, through the inherited copy of stderr" in recorded.stderr
        assert_replay_matches(recorded, replay(trace))
    writes, buffered = per_syscall(tmp_path / "trace0")["write"]
    assert buffered >= 200 and writes - buffered <= 8, (writes, buffered)


@pytest.mark.needs_syscallbuf
def test_a_pipeline_stages_stdin_and_stdout_transfers_are_buffered(build, tmp_path: Path) -> None:
    """A pipeline stage reads fd 0 and writes fd 1, pipes that are not rrgdb's stdout or
    stderr: those transfers are buffered (they were all traced: `seq | while read` in
    bash, a read per byte, recorded ~100x slower than natively), while the writes after
    the stage puts its stdout back on fd 1, and those to fd 2, stay traced and replay
    prints them."""
    binary = build("pipeline_stdio", "O2")
    for option in ([], ["--no-syscallbuf"]):
        trace = tmp_path / f"trace{len(option)}"
        recorded = run_rrgdb(["record", *option, "-o", trace, binary])
        assert recorded.stdout.startswith(b"stage: back on stdout\n18890 bytes back"), \
            describe(recorded)
        assert b"stage: done\n" in recorded.stderr, describe(recorded)
        assert_replay_matches(recorded, replay(trace))
    counts = per_syscall(tmp_path / "trace0")
    reads, buffered_reads = counts["read"]
    writes, buffered_writes = counts["write"]
    assert buffered_reads >= 18890 and reads - buffered_reads < 20, counts
    assert buffered_writes >= 4000 and writes - buffered_writes < 10, counts


@pytest.mark.needs_syscallbuf
def test_a_vfork_parent_buffers_again_once_its_child_execs_or_exits(
        build, tmp_path: Path) -> None:
    """A vfork child shares its parent's memory and buffer, so the clone stops buffering
    in the process; it stayed stopped for good (after one posix_spawn, system() or Python
    subprocess.run, every call was traced). It comes back at the child's exec or exit, in
    record and replay alike, with the table of stdout copies as the parent left it (the
    child's dup2 over fd 1 must not unmark the parent's stdout)."""
    binary = build("vfork_buffer", "O2")
    for option in ([], ["--no-syscallbuf"]):
        trace = tmp_path / f"trace{len(option)}"
        recorded = run_rrgdb(["record", *option, "-o", trace, binary])
        assert recorded.stdout == (b"before: 2000\nafter posix_spawn (status 0): 2000\n"
                                   b"after vfork (status 7): 2000\n"), describe(recorded)
        assert_replay_matches(recorded, replay(trace))
    stat_calls, buffered = per_syscall(tmp_path / "trace0")["newfstatat"]
    assert buffered >= 6000 and stat_calls - buffered < 20, (stat_calls, buffered)


@pytest.mark.needs_syscallbuf
def test_a_multi_threaded_process_buffers_again_after_vforks_from_two_threads(
        build, tmp_path: Path) -> None:
    """The same in a process with other threads, which stayed unbuffered after its first
    vfork (20000 getppid after one posix_spawn took 2.6 s to record instead of 0.13 s):
    two threads spawn 8 children each while two others make buffered calls all along.
    Buffering stops at a clone's entry, where the parent holds its process's turn, and
    comes back at the parent's next syscall entry, once no vfork child shares the memory:
    both points replay finds again. Stopped at the clone's event instead, a sibling's
    records were flushed as the child's, and its calls under way raced with the switch
    (replay diverged in 1 of 6 recordings before, in every one with the buffer coming
    back). Several recordings, as the threads' interleaving differs in each."""
    binary = build("threads_vfork_buffer", "O2")
    expected = b"spawned 16, getuid pairs 5000, busy threads made calls: 1\n"
    for attempt in range(4):
        trace = tmp_path / f"trace{attempt}"
        recorded = run_rrgdb(["record", "-o", trace, binary])
        assert recorded.stdout == expected, describe(recorded)
        assert_replay_matches(recorded, replay(trace))
        calls, buffered = per_syscall(trace)["getuid"]
        assert calls == 10000 and buffered >= 9990, (calls, buffered)


def test_a_fork_copies_no_sibling_records_into_its_child(build, tmp_path: Path) -> None:
    """A fork copies the memory, the syscall buffer's included, when the kernel gets to
    it. The parent used to give up its process's turn at the fork's entry, so a sibling
    ran on meanwhile, and the records it had not flushed yet (or a call half made) went
    into the child's copy: the child's first flush took them as its own, and replay, which
    forks at the frame, diverged in about 1 recording of 3 ("the buffered syscalls used 0
    bytes of records"). The parent now keeps the turn through a fork, as through the
    calls that change the address space. Several recordings, each interleaving
    differently; in both modes (a sibling's state in the child is the same matter)."""
    binary = build("threads_fork_buffer", "O2")
    for attempt in range(6):
        trace = tmp_path / f"trace{attempt}"
        recorded = run_rrgdb(["record", "-o", trace, binary])
        assert recorded.stdout == b"30 children exited 3\n", describe(recorded)
        assert_replay_matches(recorded, replay(trace))


@pytest.mark.needs_syscallbuf
def test_buffered_calls_given_bad_pointers_fail_with_efault(build, tmp_path: Path) -> None:
    """A buffered call whose output (or input) pointer is bad fails with EFAULT, as it does
    natively and without buffering: the kernel writes the caller's memory itself. The
    library used to have the kernel write into the record and copy the bytes out, which
    killed the program with SIGSEGV inside the library (read, pread, readv, getdents64,
    getrandom, stat, statx, clocks, FIONREAD, epoll_wait, poll, recv, rt_sigprocmask).
    It also read some arguments itself before the call, and died on those: the path of an
    open (a bad pointer, or a path that runs into a PROT_NONE page), readv's iovec array,
    recvmsg's header and iovec array, recvfrom's address length; and it wrote the
    caller's memory after the call: recvfrom's data and address, rt_sigprocmask's old
    mask. Now the kernel reads those first, or the library asks it whether it can read
    them (the call is traced when not). And replay wrote ppoll's timeout back into
    read-only memory, where the kernel writes nothing (20 rounds of 39 calls, 34 of them
    failing)."""
    binary = build("bad_pointers", "O2")
    native = run_native([binary])
    assert native.returncode == 0 and native.stdout.count(b"Bad address") == 20 * 34, (
        describe(native))
    for option in ([], ["--no-syscallbuf"]):
        trace = tmp_path / f"trace{len(option)}"
        recorded = run_rrgdb(["record", *option, "-o", trace, binary])
        assert recorded.returncode == 0 and recorded.stdout == native.stdout, describe(recorded)
        assert_replay_matches(recorded, replay(trace))
    assert traced_and_buffered(tmp_path / "trace0")[1] >= 20 * 20
