"""Asynchronous signals record and replay exactly (issue 6, the signal part): handlers on
an alternate stack (sigaltstack + SA_ONSTACK, including a stack overflow), SA_RESTART
against EINTR for syscalls blocked when SIGALRM arrives, SIGCHLD handlers reaping
several children, kill() ping-pong between two processes, and SIGCHLD at its default
disposition interrupting a blocked parent (the kernel restarts the syscall, through
restart_syscall for nanosleep). Each program is recorded with and without the syscall
buffer; the recording must show what a native run shows, and the replay must print the
recorded bytes and exit with the recorded status."""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    assert_replay_matches,
    describe,
    replay,
    run_native,
    run_rrgdb,
    saved_trace_dir,
)

BUFFERING = [pytest.param([], id="syscallbuf"), pytest.param(["--no-syscallbuf"], id="nobuf")]

SIGRESTART_LINES = [
    "read, SA_RESTART: 4, alarms=1",
    "  data: data",
    "read, no SA_RESTART: -1 EINTR, alarms=1",
    "read again: 4, alarms=1",
    "  data: data",
    "waitpid, SA_RESTART: the child, then exit status 5, alarms=1",
    "waitpid, no SA_RESTART: -1 EINTR, then exit status 5, alarms=1",
    "nanosleep, SA_RESTART: -1 EINTR, alarms=1",
    "pause, SA_RESTART: -1 EINTR, alarms=1",
]


def record_with(
    binary: Path, trace: Path, options: list[str], *args: str
) -> subprocess.CompletedProcess[bytes]:
    """``rrgdb record OPTIONS -o TRACE -- BINARY ARGS``; checks the trace was saved."""
    recorded = run_rrgdb(["record", *options, "-o", trace, "--", binary, *args])
    assert saved_trace_dir(recorded) == trace, describe(recorded)
    return recorded


def record_and_replay(binary: Path, trace: Path, options: list[str], *args: str) -> list[str]:
    """Records, replays, checks the replay matches; returns the recorded stdout lines."""
    recorded = record_with(binary, trace, options, *args)
    assert_replay_matches(recorded, replay(trace))
    return recorded.stdout.decode().splitlines()


@pytest.mark.parametrize("options", BUFFERING)
def test_handlers_run_on_the_alternate_stack(
    options: list[str], build: Callable[..., Path], tmp_path: Path
) -> None:
    """raise, SIGALRM in pause() and in a computing loop, and the SIGSEGV of a stack
    overflow (on a ucontext stack with a guard page) all run their SA_ONSTACK handler on
    the alternate stack."""
    lines = record_and_replay(build("sigaltstack", "O2"), tmp_path / "trace", options)
    on_alt = [line for line in lines if "handler on alternate stack" in line]
    assert len(on_alt) == 4 and all(line.endswith(": yes") for line in on_alt), lines
    assert lines.count("main on alternate stack: no") == 2, lines
    assert any(line.startswith("stack overflow after ") for line in lines), lines


def test_stack_overflow_under_a_lowered_rlimit(
    build: Callable[..., Path], tmp_path: Path
) -> None:
    lines = record_and_replay(build("sigaltstack", "O2"), tmp_path / "trace", [], "rlimit")
    assert "stack overflow: SIGSEGV handler on alternate stack: yes" in lines, lines


@pytest.mark.parametrize("options", BUFFERING)
@pytest.mark.parametrize("stack", ["rlimit", "altstack"])
def test_nested_handlers_overflow_the_stack(
    stack: str, options: list[str], build: Callable[..., Path], tmp_path: Path
) -> None:
    """A SIGALRM handler that computes longer than its timer's period nests signal frames
    (SA_NODEFER), each with a SIGILL handler's frame (a fault) on it, until the stack
    overflows: the process dies by SIGSEGV, as natively, and the replay prints the same
    frames. Each handler prints a checksum of its frame's XSAVE area, whose unwritten
    bytes (gaps between components, AMX state in its initial state) the kernel clears
    only when its save faulted on a page not yet present: replay had other pages present
    (the recorded initial stack, written at exec), its frames held the stack's old bytes
    there, and it never found the preemption point in the third handler (hung) or
    diverged in a SIGILL handler. On the alternate stack the kernel finds no room for the
    last frame and forces a SIGSEGV, which replay took for a divergence."""
    binary = build("nested_handlers", "O2")
    native = run_native([binary, stack])
    assert native.returncode == -signal.SIGSEGV, describe(native)
    trace = tmp_path / "trace"
    recorded = record_with(binary, trace, options, stack)
    assert recorded.returncode == 128 + signal.SIGSEGV, describe(recorded)
    assert_replay_matches(recorded, replay(trace))
    frames = [line.split()[:2] for line in recorded.stdout.decode().splitlines()]
    depths = [int(level) for kind, level in frames if kind == "depth"]
    # (a tick that comes at a handler's write nests before its trap, when recorded)
    assert len(depths) >= 5 and depths == list(range(1, len(depths) + 1)), frames
    assert sum(kind == "trap" for kind, _ in frames) >= 3, frames


@pytest.mark.parametrize("options", BUFFERING)
def test_sa_restart_against_eintr(
    options: list[str], build: Callable[..., Path], tmp_path: Path
) -> None:
    """read() and wait4() restart after an SA_RESTART handler and fail with EINTR without
    it; nanosleep() and pause() fail with EINTR either way, as natively."""
    lines = record_and_replay(build("sigrestart", "O2"), tmp_path / "trace", options)
    assert [line for line in lines if not line.startswith("  time left:")] == SIGRESTART_LINES
    (left,) = [line for line in lines if line.startswith("  time left:")]
    assert 4.0 < float(left.split()[2]) < 5.0, lines


@pytest.mark.parametrize("options", BUFFERING)
def test_sigchld_handler_and_kill_between_processes(
    options: list[str], build: Callable[..., Path], tmp_path: Path
) -> None:
    """A SIGCHLD handler reaps four children that exit together; parent and child then
    exchange five SIGUSR1/SIGUSR2 rounds with kill()."""
    lines = record_and_replay(build("sigchld_kill", "O2"), tmp_path / "trace", options)
    assert lines[0] == "reaped 4 children, exit statuses 10 11 12 13", lines
    assert lines[2] == "ping-pong: parent got 5 SIGUSR2, child exit status 0", lines


@pytest.mark.parametrize("options", BUFFERING)
def test_default_sigchld_interrupting_a_blocked_parent(
    options: list[str], build: Callable[..., Path], tmp_path: Path
) -> None:
    """The recorder drops a syscall result the program never saw (a restart code) and
    records restart_syscall as the nanosleep it continues; the output equals a native
    run's."""
    binary = build("sigchld_default", "O2")
    native = run_native([binary])
    assert native.returncode == 0, describe(native)
    lines = record_and_replay(binary, tmp_path / "trace", options)
    assert lines == native.stdout.decode().splitlines()


def test_sigsuspend_waits_for_a_blocked_signal(
    build: Callable[..., Path], tmp_path: Path
) -> None:
    lines = record_and_replay(build("sigsuspend", "O2"), tmp_path / "trace", [])
    assert lines[-1] == "still blocked afterwards: 1 1", lines


def test_preemption_after_a_handled_signal(build: Callable[..., Path], tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    recorded = record_with(build("signal_then_spin", "O2"), trace, ["--no-syscallbuf"])
    assert recorded.stdout == b"spin ended by SIGALRM\n", describe(recorded)
    assert_replay_matches(recorded, replay(trace, timeout=20))


@pytest.mark.needs_syscallbuf
def test_buffering_resumes_after_a_held_back_signal(build, tmp_path: Path) -> None:
    """SIGALRM arrives during a loop of buffered getppid calls: the recorder holds it back
    and makes the next buffered call trap, to deliver it there. After that the buffer
    works as before: the 4000 reads and writes that follow do not trap."""
    trace = tmp_path / "trace"
    lines = record_and_replay(build("signal_then_buffered", "O2"), trace, [])
    assert lines == ["signal handled; read+write 256000 bytes"], lines
    stats = run_rrgdb(["dump", "--stats", trace]).stdout.decode()
    for call in ("read", "write"):
        match = re.search(rf"  {call}\t(\d+)\t\((\d+) buffered\)", stats)
        assert match and int(match.group(2)) >= 2000, stats


@pytest.mark.parametrize("options", BUFFERING)
def test_loops_whose_registers_repeat_are_found_by_their_memory(
        build: Callable[..., Path], tmp_path: Path, options: list[str]) -> None:
    """A timer signal ends a loop that keeps its count in the heap, with the same
    registers and stack at every turn, then a loop whose registers come back only every
    100 visits (an inner loop's count in rcx, the outer one's in the heap); then two
    threads run loops like the first and are preempted mid-loop. Replay stopped at every
    turn of the loop to hash the memory (a Python loop ended by setitimer did not replay
    in 5 minutes, nor these in 100 s); now the recorder finds the words that change from
    turn to turn and the stub compares them."""
    trace = tmp_path / "trace"
    recorded = record_with(build("timer_memory_loop", "O2", "-pthread"), trace, options)
    lines = recorded.stdout.decode().splitlines()
    assert lines[0] == "alarm after many turns", describe(recorded)
    assert lines[2].startswith("outer turns "), describe(recorded)
    assert lines[3].startswith("thread counted 2000000, main waited"), describe(recorded)
    frames = run_rrgdb(["dump", trace]).stdout.decode()
    assert "preempted at" in frames, frames
    assert_replay_matches(recorded, replay(trace, timeout=60))


@pytest.mark.parametrize("options", BUFFERING)
def test_a_fast_timer_into_a_computing_loop(
        build: Callable[..., Path], tmp_path: Path, options: list[str]) -> None:
    """A 1 kHz timer into a loop without syscalls: every expiry while one was parked
    interrupted the recorder's steps and probe, and the recording never placed the
    signal (over 2 minutes for a 0.6 s program; ~1 s now)."""
    trace = tmp_path / "trace"
    recorded = run_rrgdb(["record", *options, "-o", trace, "--",
                          build("fast_timer_loop", "O2")], timeout=60)
    assert recorded.returncode == 0, describe(recorded)
    assert recorded.stdout.endswith(b", ticked: yes\n"), describe(recorded)
    assert_replay_matches(recorded, replay(trace, timeout=60))


@pytest.mark.parametrize("options", BUFFERING)
def test_a_timer_faster_than_the_recorder_into_a_computing_loop(
        build: Callable[..., Path], tmp_path: Path, options: list[str]) -> None:
    """A timer every 150 us into a loop without syscalls: a tick handled under the
    recorder (delivery, handler, traced rt_sigreturn) took longer than the period, so
    every rt_sigreturn returned into the next tick's handler and the loop never ran on (no
    end in 40 s; natively 0.2 s). A tick that comes again before the interrupted code ran
    an instruction is now parked, and the code runs until the park's end; the ticks that
    come meanwhile are dropped before any register is read (~1-5 s here)."""
    trace = tmp_path / "trace"
    recorded = run_rrgdb(["record", *options, "-o", trace, "--",
                          build("fast_timer_loop", "O2"), "150", "100"], timeout=40)
    assert recorded.returncode == 0, describe(recorded)
    assert recorded.stdout.endswith(b", ticked: yes\n"), describe(recorded)
    assert_replay_matches(recorded, replay(trace, timeout=60))


@pytest.mark.parametrize("options", BUFFERING)
def test_timer_ticks_pace_a_computing_loop(
        build: Callable[..., Path], tmp_path: Path, options: list[str]) -> None:
    """A 10 ms timer into a loop without syscalls that ends after 60 ticks: every tick is
    parked and forced at a preemption point when no syscall comes. A parked signal
    waited 0.5 s for one, so this 0.6 s program took 30 s to record; it now waits twice
    what the thread's last preemption cost, 20 ms at least (~3 s here)."""
    trace = tmp_path / "trace"
    recorded = run_rrgdb(["record", *options, "-o", trace, "--",
                          build("timer_ticks_loop", "O2")], timeout=20)
    assert recorded.returncode == 0, describe(recorded)
    assert recorded.stdout == b"ticks: 60 or more, state: nonzero\n", describe(recorded)
    assert_replay_matches(recorded, replay(trace, timeout=60))


@pytest.mark.parametrize("options", BUFFERING)
def test_a_timer_tick_after_buffered_calls_at_the_same_registers(
        build: Callable[..., Path], tmp_path: Path, options: list[str]) -> None:
    """Perl's safe signals under a 10 ms timer (timer_mask_spin.c): a loop whose registers
    come back at every turn, where rt_sigreturn (traced) returns to a preemption point and
    the loop then makes buffered sigprocmask calls. A tick that stopped the thread at those
    registers again was recorded as delivered at rt_sigreturn's exit, before the buffered
    calls: replay diverged in 6 recordings of 6 (perl: 4 of 4). A stop at a syscall's exit
    registers is its boundary only if the thread made no buffered call since."""
    trace = tmp_path / "trace"
    recorded = record_with(build("timer_mask_spin", "O2"), trace, options)
    assert recorded.stdout == b"ticks 5\n", describe(recorded)
    frames = run_rrgdb(["dump", trace]).stdout.decode()
    assert frames.count("signal SIGALRM") >= 5, frames
    assert_replay_matches(recorded, replay(trace, timeout=60))
