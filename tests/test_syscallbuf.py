"""Syscall buffering (issue 5): with the preload library, hot syscalls -- called by the
program or by libc itself through its patched syscall sites -- are recorded without a
ptrace stop and replayed without one; results are the same with and without buffering
(`--no-syscallbuf`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import assert_replay_matches, describe, record, replay, run_rrgdb

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
    replay_traps = float(stats(trace)["traps per 1000 syscalls"].split(", ")[1].split()[0])
    assert replay_traps < 30, stats(trace)


def test_python_workload(tmp_path: Path) -> None:
    """The interpreter's own file work (stat, open, read, lseek, close, ioctl) is buffered:
    before libc's sites were patched this run had ~600 traced syscalls."""
    code = "import json,os;d=[{'k':i,'v':os.urandom(4).hex()} for i in range(2000)];" \
           "print(len(json.dumps(d)), d[7])"
    trace = tmp_path / "trace"
    recorded = record([PYTHON3, "-c", code], trace)
    assert_replay_matches(recorded, replay(trace))
    traced, buffered = traced_and_buffered(trace)
    assert traced < 300 and buffered > 2500, stats(trace)


def test_library_exports_the_64_bit_names() -> None:
    """Programs built with _FILE_OFFSET_BITS=64 call the 64-suffixed names."""
    from rrgdb.syscallbuf import preload_library

    symbols = subprocess.run(["nm", "-D", "--defined-only", str(preload_library())],
                             capture_output=True, text=True, check=True).stdout.split()
    for name in ("open64", "openat64", "lseek64", "pread64", "pwrite64", "stat64", "fstat64",
                 "lstat64", "fstatat64", "readv", "writev", "getdents64"):
        assert name in symbols, name
