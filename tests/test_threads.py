"""Threads record and replay exactly without a PMU (issue 6): one thread of a process runs
user code at a time, switches happen at syscalls, a thread spinning without syscalls is
preempted and the preemption point found again by its state. Each threaded program is
recorded and replayed many times: not a single divergence is allowed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import (
    assert_replay_matches,
    describe,
    program_stderr,
    record,
    replay,
    run_rrgdb,
)

from rrgdb import native
from rrgdb.kernel.breakpoints import DR6, DR6_STEP
from rrgdb.kernel.remote_syscalls import resume_keeping_sigtrap
from rrgdb.kernel.task import Task
from rrgdb.record.session import recorded_cpu
from rrgdb.replay.session import ReplaySession, _signal_details
from rrgdb.trace import PreemptFrame, TraceReader, TraceWriter


def _preemptions(trace: Path) -> list[PreemptFrame]:
    """The PreemptFrames of a trace, in order."""
    return [f for f in TraceReader(trace).frames() if isinstance(f, PreemptFrame)]


@contextmanager
def _replaying(trace: Path) -> Iterator[tuple[ReplaySession, Task]]:
    """A replay of trace, started: the session and its followed task; closed after."""
    session = ReplaySession(trace, echo=None)
    try:
        session.start()
        assert session.task is not None
        yield session, session.task
    finally:
        session.close()


PYTHON3 = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
REPETITIONS = 20

PYTHON_THREADS = """
import threading
out, lock = [], threading.Lock()
def work(n):
    total = 0
    for i in range(20000):
        total += i * n
        if i % 5000 == 0:
            with lock:
                out.append(n)
    with lock:
        out.append((n, total))
threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(out)
"""

JAVA_THREADS = """
import java.util.*;
public class H { public static void main(String[] a) throws Exception {
  List<Thread> ts = new ArrayList<>(); final long[] r = new long[4];
  for (int i = 0; i < 4; i++) { final int k = i; Thread t = new Thread(() -> { long s = 0;
    for (int j = 0; j < 2000000; j++) { s += Integer.toString(j * k).hashCode(); }
    r[k] = s; }); ts.add(t); t.start(); }
  for (Thread t : ts) t.join();
  System.out.println(Arrays.toString(r)); } }
"""


@pytest.mark.parametrize("name", ["threads_mutex", "threads_condvar", "threads_spin",
                                  "exit_with_blocked_threads"])
def test_threaded_program_replays_every_time(name: str, build, tmp_path: Path) -> None:
    binary = build(name, "O2", "-pthread")
    for attempt in range(REPETITIONS):
        trace = tmp_path / f"trace-{attempt}"
        recorded = record([str(binary)], trace)
        assert b"trace saved" in recorded.stderr, describe(recorded)
        assert_replay_matches(recorded, replay(trace))


def test_spinning_thread_is_preempted_and_found_again(build, tmp_path: Path) -> None:
    binary = build("threads_spin", "O0", "-pthread")
    trace = tmp_path / "trace"
    recorded = record([str(binary)], trace)
    assert_replay_matches(recorded, replay(trace))
    events = run_rrgdb(["dump", trace]).stdout.decode()
    assert "clone3" in events or "clone" in events


def test_python_threads(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    recorded = record([PYTHON3, "-c", PYTHON_THREADS], trace)
    assert_replay_matches(recorded, replay(trace))


def test_syscalls_no_sibling_runs_around_need_no_scheduling_event(build, tmp_path: Path) -> None:
    """SCHED elision: a syscall entry of a multi-threaded process is written only when a
    sibling's event comes before the syscall returns. Here the other thread is blocked
    (pthread_join) or gone while 4000 umask calls are made: a handful of entry events, not
    one per call, and every replay still matches."""
    trace = tmp_path / "trace"
    recorded = record([str(build("threads_alone", "O2", "-pthread"))], trace)
    assert recorded.stdout == b"worker 2000, main 2000\n", describe(recorded)
    kinds = TraceReader(trace).frames()
    counts: dict[str, int] = {}
    for frame in kinds:
        counts[type(frame).__name__] = counts.get(type(frame).__name__, 0) + 1
    assert counts["SyscallFrame"] > 4000, counts
    assert counts.get("SyscallEntryFrame", 0) < 50, counts
    for _ in range(3):
        assert_replay_matches(recorded, replay(trace))


@pytest.mark.needs_syscallbuf
def test_threads_buffer_their_syscalls(build, tmp_path: Path) -> None:
    """Threads share their process's syscall buffer: the 24 000 small syscalls of four
    threads are buffered (not traced), and every replay gives the recorded output."""
    trace = tmp_path / "trace"
    recorded = record([str(build("threads_syscalls", "O2", "-pthread"))], trace)
    assert recorded.stdout == b"counter 8000, calls 8000\n", describe(recorded)
    stats = run_rrgdb(["dump", "--stats", trace]).stdout.decode()
    traced, buffered = map(int, re.search(r"syscalls\t(\d+) traced, (\d+) buffered",
                                          stats).groups())
    assert buffered >= 20000 and traced < 2000, stats
    for _ in range(3):
        assert_replay_matches(recorded, replay(trace))


@pytest.mark.needs_syscallbuf
def test_blocking_buffered_calls_do_not_hold_up_other_threads(build, tmp_path: Path) -> None:
    """Two threads ping-pong a byte through pipes, 1000 times each way: each buffered read
    blocks while its thread holds the process's turn. The recorder sees the thread asleep
    at the untraced stub and turns the call into a traced one at once; waiting for the
    turn's time slice instead (50 ms a block, ~100 s in all) runs past the timeout."""
    binary = build("threads_pipe", "O2", "-pthread")
    trace = tmp_path / "trace"
    recorded = record([str(binary), "1000"], trace, timeout=60)
    assert recorded.returncode == 0 and recorded.stdout.startswith(b"rounds 1000, sum "), (
        describe(recorded))
    stats = run_rrgdb(["dump", "--stats", trace]).stdout.decode()
    writes = int(re.search(r"  write\t\d+\t\((\d+) buffered\)", stats).group(1))
    assert writes >= 1900, stats  # the writes never block: they stay buffered
    for _ in range(3):
        assert_replay_matches(recorded, replay(trace))


def test_a_thread_blocked_in_read_is_cancelled(build, tmp_path: Path) -> None:
    """pthread_cancel of a thread waiting in read(): recorded (with the buffer, its read is
    a patched libc site; its unwind goes through the buffer's code) and replayed."""
    trace = tmp_path / "trace"
    recorded = record([str(build("thread_cancel", "O2", "-pthread"))], trace, timeout=60)
    assert recorded.stdout == b"cancelled: 1\n", describe(recorded)
    assert_replay_matches(recorded, replay(trace))


def test_concurrent_writes_to_stdout_replay_in_the_order_they_were_made(
        build, tmp_path: Path) -> None:
    """The main thread, three more and a forked child each make 150 small writes to stdout
    and stderr at the same time. The recorded output is the order the kernel performed
    them in; replay prints the writes in trace order, so the recorder lets one stdio write
    into the kernel at a time (different on nearly every run otherwise)."""
    binary = build("stdio_race", "O2", "-pthread")
    for attempt in range(3):
        trace = tmp_path / f"trace-{attempt}"
        recorded = record([str(binary)], trace)
        assert recorded.stdout.count(b" ") == 5 * 135, describe(recorded)
        assert_replay_matches(recorded, replay(trace))
    # stdout and stderr into one pipe: their relative order is kept too
    trace = tmp_path / "trace-combined"
    recorded = record([str(binary)], trace, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    replayed = replay(trace, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert program_stderr(replayed.stdout) == program_stderr(recorded.stdout), describe(replayed)


def test_computing_threads_are_found_again_at_the_programs_speed(build, tmp_path: Path) -> None:
    """Threads computing without syscalls are preempted mid-loop; replay finds each
    moment again although the loop visits its pc millions of times in between (it gave
    up after 200 000 visits, one ptrace stop each): the recorder steps each thread to
    instructions a jump may replace (at -O2 several short ones, one of them a jcc), and
    replay puts a register-comparing stub behind that jump."""
    binary = build("threads_compute", "O2", "-pthread")
    # CPU hogs vary where the recorder stops the threads: a thread stopped inside the
    # window of its next preemption point (which replay must first step out of) came up
    # in about half of the recordings made under load
    hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(2)]
    try:
        for attempt in range(3):
            trace = tmp_path / f"trace{attempt}"
            recorded = record([str(binary)], trace)
            assert recorded.returncode == 0, describe(recorded)
            preemptions = _preemptions(trace)
            assert preemptions and all(f.patch_length >= 5 for f in preemptions), preemptions
            assert_replay_matches(recorded, replay(trace))
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


@pytest.mark.parametrize("damage", ["patch_length", "stack"])
def test_a_damaged_preemption_point_is_a_clear_error(damage: str, build, tmp_path: Path) -> None:
    """A PreemptFrame whose window length does not fit the code there, or whose stack is
    longer than any recorder writes, stops the replay with one line saying so (not a
    traceback, not a jump written over the middle of an instruction)."""
    trace, damaged = tmp_path / "trace", tmp_path / "damaged"
    recorded = record([str(build("threads_compute", "O2", "-pthread"))], trace)
    assert recorded.returncode == 0, describe(recorded)
    reader = TraceReader(trace)
    writer = TraceWriter(damaged, reader.header)
    first = True
    for frame in reader.frames():
        if isinstance(frame, PreemptFrame) and first:
            first = False
            frame = (replace(frame, patch_length=frame.patch_length + 1)
                     if damage == "patch_length" else replace(frame, stack=bytes(4096)))
        writer.write(frame)
    shutil.copytree(trace / "files", damaged / "files", dirs_exist_ok=True)
    writer.close()
    assert not first, "no preemption recorded"
    result = replay(damaged)
    assert result.returncode != 0 and b"Traceback" not in result.stderr, describe(result)
    expected = b"bytes of instructions recorded" if damage == "patch_length" else b"damaged"
    assert b"replay diverged" in result.stderr and expected in result.stderr, describe(result)


def test_a_thread_back_at_the_same_registers_has_still_moved(build, tmp_path: Path) -> None:
    """threads_memory_loop's threads come back to the same registers at every turn of
    their loop (the count is in memory): each preemption is recorded although its
    registers are those of the thread's previous one. The recorder used to take such a
    thread for one that had not moved since its last event and wrote no frame, so replay
    ran the other thread on with this one's turns missing, and diverged. (Only when the
    stop landed right on the previous point's instruction, before being stepped to a
    window: this test passes on the old recorder most of the time; threads_compute at -O0
    diverged in about one recording in three.)"""
    binary = build("threads_memory_loop", "O2", "-pthread")
    trace = tmp_path / "trace"
    recorded = record([str(binary)], trace)
    assert recorded.returncode == 0, describe(recorded)
    preemptions: dict[int, list[bytes]] = {}
    for frame in _preemptions(trace):
        preemptions.setdefault(frame.tid, []).append(frame.regs)
    # what the old recorder left out: a preemption with the registers of the one before
    repeated = sum(a == b for regs in preemptions.values()
                   for a, b in zip(regs, regs[1:], strict=False))
    assert repeated >= 1, {tid: len(regs) for tid, regs in preemptions.items()}
    assert_replay_matches(recorded, replay(trace))


def test_the_replays_own_single_steps_leave_no_step_bit_for_the_debugger(
        build, tmp_path: Path) -> None:
    """A single step the replay makes for itself (out of a window, past a visit that did
    not match) must not leave the step bit in DR6: the debugger's next breakpoint hit
    was then taken for the end of a step, went unreported, and the thread ran on from the
    middle of the instruction (the gdb test on threads_compute, now and then under load)."""
    trace = tmp_path / "trace"
    recorded = record([str(build("threads_compute", "O2", "-pthread"))], trace)
    assert recorded.returncode == 0, describe(recorded)
    with _replaying(trace) as (session, task):
        for _ in range(3):
            assert session._step_unseen(task) is None
            assert not task.get_debugreg(DR6) & DR6_STEP


def test_an_unexpected_trap_is_described_with_its_debug_status(build, tmp_path: Path) -> None:
    """A divergence on a signal says where it came and, for a SIGTRAP, what DR6 says (a
    step, a breakpoint, or neither): the one CI failure of a gdb reverse-next this
    session was a SIGTRAP that was neither, and said no more than its name."""
    trace = tmp_path / "trace"
    recorded = record([str(build("threads_compute", "O2", "-pthread"))], trace)
    assert recorded.returncode == 0, describe(recorded)
    with _replaying(trace) as (_, task):
        stop = resume_keeping_sigtrap(task, native.PTRACE_SINGLESTEP)
        rip = task.regs().rip
        details = _signal_details(task, stop)
        assert details.startswith(" (si_code ") and f"at {rip:#x}, DR6 " in details, details
        assert int(details.rsplit(" ", 1)[1].rstrip(")"), 16) & DR6_STEP, details


def test_threads_rewriting_their_code_are_found_again(build, tmp_path: Path) -> None:
    """threads_rewritten_code's threads compute in code they generated and keep rewriting
    (a new immediate in the `movabs` the recorder leaves them at, as HotSpot writes into
    its compiled code): replay's search must let those stores reach the code behind its
    jump. The code was not even there when the first search began (replay stopped: "not
    the 10 bytes of instructions recorded"); a store over the jump crashed the program."""
    binary = build("threads_rewritten_code", "O2", "-pthread")
    for attempt in range(2):
        trace = tmp_path / f"trace{attempt}"
        recorded = record([str(binary)], trace)
        assert recorded.returncode == 0, describe(recorded)
        lengths = [f.patch_length for f in _preemptions(trace)]
        assert 10 in lengths, lengths  # a thread left at the movabs
        assert_replay_matches(recorded, replay(trace))


def test_a_thread_stopped_inside_a_rep_copy_is_recorded_after_it(build, tmp_path: Path) -> None:
    """threads_rep_copy's threads spend their time inside `rep movsb`: the recorder stops
    them part-way through one (rcx counted down), a moment replay never sees, as a visit
    is the start of an instruction. The recorder runs the copy to its end first (before,
    it took the single step of one iteration for a turn of a loop and recorded the middle:
    every recording diverged; found with `xz -T2`, whose memmove is such a copy). Its
    threads also create malloc arenas, whose munmap a sibling's mmap overtook in replay
    (5 recordings in 8 diverged so) until address-space calls kept the turn."""
    binary = build("threads_rep_copy", "O2", "-pthread")
    for attempt in range(2):
        trace = tmp_path / f"trace{attempt}"
        recorded = record([str(binary)], trace)
        assert recorded.returncode == 0, describe(recorded)
        assert _preemptions(trace)
        assert_replay_matches(recorded, replay(trace))


def test_a_thread_stepped_over_popf_keeps_running(build, tmp_path: Path) -> None:
    """threads_popf's threads load the flags with push and popf in their loop, as V8's
    double modulo does. The kernel takes the trap flag of a single step over popf for the
    program's own and keeps it set at the steps after it, so the recorder's steps to a
    window left it set: the thread died of SIGTRAP after its next instruction (every
    recording; node with worker threads computing, most recordings). The recorder
    clears it when the popf loaded it clear."""
    binary = build("threads_popf", "O2", "-pthread")
    for attempt in range(2):
        trace = tmp_path / f"trace{attempt}"
        recorded = record([str(binary)], trace)
        assert recorded.returncode == 0, describe(recorded)
        assert _preemptions(trace)
        assert_replay_matches(recorded, replay(trace))


def test_a_thread_stopped_where_no_jump_fits_steps_on_into_its_caller(
        build, tmp_path: Path) -> None:
    """threads_short_code's threads are stopped in generated code of short instructions
    only, in a mapping of its own: the recorder steps them on, out of that code into the
    caller's loop, to instructions a jump may replace. It used to stop stepping at the
    mapping's end and record the return address with no window, where replay stopped at
    every visit and gave up after 200 000 (HotSpot's threads stopped in libjvm did so)."""
    binary = build("threads_short_code", "O2", "-pthread")
    for attempt in range(2):
        trace = tmp_path / f"trace{attempt}"
        recorded = record([str(binary)], trace)
        assert recorded.returncode == 0, describe(recorded)
        lengths = [f.patch_length for f in _preemptions(trace)]
        assert lengths and all(length >= 5 for length in lengths), lengths
        assert_replay_matches(recorded, replay(trace))


def test_a_loop_counted_far_up_the_stack_is_told_apart_by_the_stub(
        build, tmp_path: Path) -> None:
    """threads_deep_state's threads are preempted in a leaf function whose registers and
    nearby stack are the same at every call; only a count ~750 bytes above the stack
    pointer differs. The stub compares the stack up to rsp + STACK_ABOVE (2048) in a
    loop; when it compared up to rsp + 256, every call was a match that stopped the
    thread and hashed its memory: the replay was not done after 100 s (1 s now). A Java
    program was so: 137 s to replay a 5 s recording, 6 s now."""
    binary = build("threads_deep_state", "O2", "-pthread")
    trace = tmp_path / "trace"
    recorded = record([str(binary)], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert _preemptions(trace)
    assert_replay_matches(recorded, replay(trace, timeout=60))


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_replay_runs_on_the_recordings_cpu(build, tmp_path: Path) -> None:
    """threads_cpuid keeps cpuid's answer, which holds the CPU's APIC id, in memory
    before its threads are preempted. Replay started on another CPU still finds every
    preemption point: the answer comes from the trace (CPUID faulting; tests/test_cpuid.py)
    and replay binds itself to the recording's CPU (what rdpid or the vDSO's getcpu say
    still depends on it). With neither, the memory at the preemption points differed and
    replay never found them (HotSpot: one Java recording in two)."""
    binary = build("threads_cpuid", "O2", "-pthread")
    trace = tmp_path / "trace"
    recorded = record([str(binary)], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert _preemptions(trace)
    cpu = recorded_cpu(TraceReader(trace).header)
    assert cpu is not None
    other = next(c for c in sorted(os.sched_getaffinity(0)) if c != cpu)
    result = replay(trace, preexec_fn=lambda: os.sched_setaffinity(0, {other}))
    assert_replay_matches(recorded, result)


@pytest.mark.skipif(shutil.which("java") is None or shutil.which("javac") is None,
                    reason="java is not installed")
def test_java_threads_computing_in_jit_code(tmp_path: Path) -> None:
    """HotSpot: four threads hashing strings in JIT-compiled code are preempted there;
    replay finds every point (it diverged in about one recording in two: cpuid's APIC
    id in memory, compiled code rewritten behind the search's jump)."""
    source = tmp_path / "H.java"
    source.write_text(JAVA_THREADS)
    subprocess.run(["javac", "-d", str(tmp_path), str(source)], check=True)
    trace = tmp_path / "trace"
    recorded = record(["java", "-cp", str(tmp_path), "H"], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert _preemptions(trace)
    assert_replay_matches(recorded, replay(trace))
