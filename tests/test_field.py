"""Regressions found by recording real programs (docs/testing.md, "Field tests"): each
case is the smallest program that failed, recorded and replayed exactly."""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

import pytest
from conftest import assert_replay_matches, describe, record, replay, run_native, run_rrgdb
from elftools.elf.elffile import ELFFile

from rrgdb.kernel.registers import Registers
from rrgdb.kernel.visit_search import MAX_INSTRUCTION, STACK_BELOW, flags_dead
from rrgdb.trace import PreemptFrame, TraceReader


def test_pseudo_terminal_session(build, tmp_path: Path) -> None:
    """openpty's TIOCGPTPEER and a controlling terminal's TIOCSCTTY / TIOCNOTTY (script(1),
    Python's pty.fork) were refused as unknown ioctls; the SIGHUP the kernel sends on
    TIOCNOTTY kills the child as it did in the recording."""
    trace = tmp_path / "trace"
    recorded = record([str(build("pty_session", "O2"))], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert b"child on a 80x24 tty, discipline 0" in recorded.stdout, describe(recorded)
    assert b"child status 0x1\n" in recorded.stdout, describe(recorded)

    assert_replay_matches(recorded, replay(trace))


def test_offsets_datagrams_and_io_uring(build, tmp_path: Path) -> None:
    """copy_file_range, sendfile and splice write the advanced offsets back through their
    pointers (replay diverged when the program printed them); recvmmsg was refused; an
    io_uring ring (memory the kernel fills while the program runs) is refused with ENOSYS,
    which programs handle as a kernel without io_uring."""
    data = tmp_path / "data"
    data.mkdir()
    trace = tmp_path / "trace"
    recorded = record([str(build("offset_transfers", "O2")), str(data)], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert (b"copy_file_range 24: in 32 out 24; sendfile 16: from 56; splice 32: from 112"
            in recorded.stdout), describe(recorded)
    assert b'datagram 0: 5 bytes "first"' in recorded.stdout, describe(recorded)
    assert b"io_uring_setup: Function not implemented" in recorded.stdout, describe(recorded)

    assert_replay_matches(recorded, replay(trace))


def test_execve_kills_the_other_threads(build, tmp_path: Path) -> None:
    """The main thread execs while others block in epoll_wait and pause or compute: each
    dies with status 0 wherever it was (recorded before the exec). Replay took that for
    the thread's own exit and ran it on to its next syscall (divergence: expected exit,
    got clock_gettime); it ends each with an exit(0) where it stands."""
    trace = tmp_path / "trace"
    recorded = record([str(build("exec_threads", "O2"))], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert b"after execve: time" in recorded.stdout, describe(recorded)

    assert_replay_matches(recorded, replay(trace))


def test_execve_from_a_thread(build, tmp_path: Path) -> None:
    """A non-leader thread execs (Go's syscall.Exec may run on any thread) while the leader
    pauses: the kernel kills the leader and the others and renumbers the exec'ing thread
    as the leader. The recorder wrote the leader's exit, then lost the exec'ing thread
    (waitpid: ECHILD); replay had no task for the exec's tid. The exec is recorded under
    the leader's tid, after an exit of every thread it killed; replay ends those and the
    exec'ing thread takes the leader's place."""
    trace = tmp_path / "trace"
    recorded = record([str(build("exec_threads", "O2")), "from-thread"], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert b"after execve: time" in recorded.stdout, describe(recorded)

    assert_replay_matches(recorded, replay(trace))


@pytest.mark.parametrize("leader", ["join", "compute", "exited"])
def test_execve_from_a_thread_while_the_leader(build, tmp_path: Path, leader: str) -> None:
    """The same, with the leader blocked in pthread_join of the exec'ing thread, computing
    (it held the turn when killed in a ptrace stop: no exit stop, no death report, and the
    other thread's exit stop, held back behind it, hung the recording), or gone with
    pthread_exit before. The new program keeps the pid."""
    trace = tmp_path / "trace"
    recorded = record([str(build("exec_from_thread", "O2")), leader], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert b"after execve: pid kept" in recorded.stdout, describe(recorded)

    assert_replay_matches(recorded, replay(trace))


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_valgrind(build, tmp_path: Path) -> None:
    """valgrind loads the preload library into the program it runs on its synthetic CPU,
    where rrgdb's scratch page does not exist: the first buffered call jumped there and
    the program died of SIGSEGV (and valgrind warned about each trampoline's unwind rule,
    written with DWARF operations its unwinder lacks). The library now stays idle under
    valgrind, which reports the program's two errors as it does natively."""
    trace = tmp_path / "trace"
    program = build("memory_errors", "O0")
    recorded = record(["valgrind", "-q", "--error-exitcode=9", str(program)], trace)
    assert recorded.returncode == 9, describe(recorded)
    assert recorded.stderr.count(b"Conditional jump or move depends on uninitialised") == 1, (
        describe(recorded))
    assert b"Invalid read of size 4" in recorded.stderr, describe(recorded)
    assert b"SIGSEGV" not in recorded.stderr, describe(recorded)
    assert b"Warning" not in recorded.stderr, describe(recorded)

    assert_replay_matches(recorded, replay(trace))


@pytest.fixture
def address_errors(build) -> Path:
    try:
        return build("address_errors", "O0", "-fsanitize=address")
    except RuntimeError as e:
        if "asan" not in str(e):
            raise
        pytest.skip("no AddressSanitizer runtime for gcc here")


def test_address_sanitizer_reports_an_overflow(address_errors: Path, tmp_path: Path) -> None:
    """AddressSanitizer's runtime refused to start ('ASan runtime does not come first in
    initial library list': the preload library comes first); its report of a heap
    overflow is recorded and replayed."""
    trace = tmp_path / "trace"
    recorded = record([str(address_errors), "overflow"], trace)
    assert recorded.returncode == 1, describe(recorded)
    assert b"ERROR: AddressSanitizer: heap-buffer-overflow" in recorded.stderr, (
        describe(recorded))
    assert_replay_matches(recorded, replay(trace))


def test_address_sanitizer_starts_when_a_parent_sets_asan_options(
        address_errors: Path, tmp_path: Path) -> None:
    """A program run with ASAN_OPTIONS of its parent's (`env`, a shell, make) lost the
    verify_asan_link_order=0 that the recorder puts there, and its runtime refused to start
    ('ASan runtime does not come first'); the preload library's default options say it."""
    trace = tmp_path / "trace"
    recorded = record(["env", "ASAN_OPTIONS=detect_leaks=0", str(address_errors), "overflow"],
                      trace)
    assert recorded.returncode == 1, describe(recorded)
    assert b"ERROR: AddressSanitizer: heap-buffer-overflow" in recorded.stderr, (
        describe(recorded))
    assert_replay_matches(recorded, replay(trace))


def test_leak_sanitizer_and_strace_cannot_trace_as_under_gdb(
        address_errors: Path, tmp_path: Path) -> None:
    """LeakSanitizer's helper, cloned with CLONE_UNTRACED, ran untraced (under the buffer's
    seccomp filter every syscall of it failed, and it spun forever); it is traced now, and
    its ptrace fails with EPERM, as under gdb, which LeakSanitizer reports. strace's
    ptrace fails the same way; recording the call used to end the recording."""
    trace = tmp_path / "trace"
    recorded = record([str(address_errors)], trace, timeout=60)
    assert recorded.returncode == 1, describe(recorded)
    assert b"LeakSanitizer does not work under ptrace" in recorded.stderr, describe(recorded)
    assert_replay_matches(recorded, replay(trace))

    if shutil.which("strace"):
        trace = tmp_path / "strace"
        recorded = record(["strace", "-o", "/dev/null", "/bin/true"], trace)
        assert recorded.returncode == 1 and b"Operation not permitted" in recorded.stderr, (
            describe(recorded))
        assert_replay_matches(recorded, replay(trace))


def test_timer_signal_into_its_own_handler(build, tmp_path: Path) -> None:
    """An interval timer fires into a loop without syscalls and into its own handler,
    where SIGALRM is blocked. The recorder forced a parked SIGALRM at a preemption point
    inside the handler, where the kernel only queues it (replay diverged: expected signal
    14, got a syscall stop; Python with signal.setitimer died of SIGSEGV when recorded),
    and it parked one SIGALRM per firing where the kernel keeps one pending. A blocked
    parked signal goes back to the kernel, its siginfo kept for the delivery. Six ticks:
    the loop spins while the recorder holds a signal back, and replay runs every turn of
    it behind the preemption search's stub, several times slower than natively (twelve
    ticks took 18-32 s to replay, and once over 2 minutes in CI)."""
    trace = tmp_path / "trace"
    recorded = record([str(build("timer_in_handler", "O2"))], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert b"6 ticks, si_code 128, spun yes\n" == recorded.stdout, describe(recorded)

    assert_replay_matches(recorded, replay(trace))


def test_absent_kernel_features(build, tmp_path: Path) -> None:
    """perf_event_open (which benchmark libraries probe), memfd_secret and userfaultfd
    stopped the recording as unsupported syscalls; they fail with ENOSYS, as on a kernel
    built without them, and the program goes on."""
    trace = tmp_path / "trace"
    recorded = record([str(build("absent_features", "O2"))], trace)
    assert recorded.returncode == 0, describe(recorded)
    assert recorded.stdout.count(b": Function not implemented\n") == 3, describe(recorded)

    assert_replay_matches(recorded, replay(trace))


def test_job_control_stops(build, tmp_path: Path) -> None:
    """SIGSTOP and SIGTSTP were taken for ignored signals and dropped: a parent waiting
    with WUNTRACED for the child it stopped waited forever (the recording hung). The stop
    is delivered and the child left stopped until a SIGCONT is pending for it; replay
    delivers neither (the stop changes nothing in the process).

    Recorded in a session of its own, where rrgdb's process group is orphaned (as when
    the suite runs on after the shell that started it is gone, where this test once
    failed): the child that stops itself does so from a group of its own, which is not."""
    trace = tmp_path / "trace"
    recorded = record([str(build("job_control_stops", "O2"))], trace, timeout=60,
                      start_new_session=True)
    assert recorded.returncode == 0, describe(recorded)
    assert recorded.stdout == (b"stopped by 19\ncontinued 1\nkilled while stopped by 9\n"
                               b"stopped itself by 20\nthen exited 4\n"), describe(recorded)

    assert_replay_matches(recorded, replay(trace))


def test_job_control_stop_in_an_orphaned_process_group(build, tmp_path: Path) -> None:
    """In an orphaned process group the kernel discards SIGTSTP: the child runs on to
    _exit(4) and its parent's waitpid(WUNTRACED) sees the exit, not a stop. rrgdb records
    what happens natively, and the recording replays."""
    program = [str(build("job_control_stops", "O2")), "same-group"]
    native = run_native(program, start_new_session=True)
    expected = (b"stopped by 19\ncontinued 1\nkilled while stopped by 9\n"
                b"stopped itself by -1\nthen exited 4\n")
    assert native.returncode == 0 and native.stdout == expected, describe(native)
    trace = tmp_path / "trace"
    recorded = record(program, trace, timeout=60, start_new_session=True)
    assert recorded.returncode == 0 and recorded.stdout == expected, describe(recorded)

    assert_replay_matches(recorded, replay(trace))


def test_a_stopped_process_gives_up_its_turn(tmp_path: Path) -> None:
    """bash stops a background job it forked (its processes share memory, so they take
    one turn between them): the stopped child kept that turn, and the shell waited for
    it forever."""
    trace = tmp_path / "trace"
    script = "sleep 0.3 & p=$!; kill -STOP $p; sleep 0.1; kill -CONT $p; wait $p; echo rc=$?"
    recorded = record(["bash", "-c", script], trace, timeout=60)
    assert recorded.returncode == 0 and recorded.stdout == b"rc=0\n", describe(recorded)

    assert_replay_matches(recorded, replay(trace))


def test_a_computing_child_stopped_and_continued(build, tmp_path: Path) -> None:
    """A parent stops and continues a child 100 times while it computes. Its SIGSTOP,
    arriving in user code, waited 0.5 s each time for a preemption point (50 s to
    record, 45-75 s to replay); a job-control stop is now delivered at once, at a
    preemption point made for it, and the recording's own SIGSTOPs are told from the
    parent's by their sender (1.7 s to record, 1.5 s to replay)."""
    trace = tmp_path / "trace"
    recorded = record([str(build("stop_computing_child", "O2"))], trace, timeout=30)
    assert recorded.returncode == 0, describe(recorded)
    assert recorded.stdout == b"stopped 100 times, then killed by 9\n", describe(recorded)

    assert_replay_matches(recorded, replay(trace, timeout=30))


@pytest.mark.parametrize("ending", ["term", "kill"])
@pytest.mark.parametrize("options", [[], ["--no-syscallbuf"]], ids=["syscallbuf", "nobuf"])
def test_a_multithreaded_computing_child_stopped_and_continued(
        options: list[str], ending: str, build, tmp_path: Path) -> None:
    """A parent stops and continues, five times, a child whose three threads compute,
    then ends it (SIGTERM to a handler that ends the threads, or SIGKILL). The recording
    hung (3 of 3, both modes): the SIGCONT ended the job-control stop of the whole
    process, but the thread that took it was resumed and the others were left in
    their group-stop, waiting for a SIGCONT no longer pending; at the next SIGSTOP
    the kernel waited for them to join the new group stop, so the parent's
    waitpid(WUNTRACED) never returned. Now all of them are resumed (when their turn
    comes). Records and replays in under a second."""
    trace = tmp_path / "trace"
    program = build("stop_threaded_child", "O2", "-pthread")
    recorded = run_rrgdb(["record", *options, "-o", trace, "--", program, ending],
                         timeout=30)
    assert recorded.returncode == 0, describe(recorded)
    end = b"exited 3" if ending == "term" else b"killed by 9"
    assert recorded.stdout == b"stopped 5, continued 5, then " + end + b"\n", describe(recorded)

    assert_replay_matches(recorded, replay(trace, timeout=30))


@pytest.mark.parametrize("options", [[], ["--no-syscallbuf"]], ids=["syscallbuf", "nobuf"])
def test_a_multithreaded_computing_child_continued_right_after_its_stop(
        options: list[str], build, tmp_path: Path) -> None:
    """A parent sends a child whose three threads compute 100 SIGSTOPs, each followed
    within 0.7 ms by a SIGCONT, without waiting for the stops, then SIGTERM. The
    recording hung in about half the runs, the child stopped for good: rrgdb's own
    SIGSTOP, sent to make the preemption point where the parent's SIGSTOP was to be
    delivered, made the kernel discard the pending SIGCONT, so the recorder never
    learnt of it and delivered the SIGSTOP after it. Also, the parent's signals
    interrupted most of the main thread's probes, and replay of its counting loop,
    recorded without the words that tell its turns apart, took minutes. Two
    recordings, each replayed, about 2 s each."""
    program = build("stop_continue_unwaited", "O2", "-pthread")
    for run in range(2):
        trace = tmp_path / f"trace{run}"
        recorded = run_rrgdb(["record", *options, "-o", trace, "--", program], timeout=30)
        assert recorded.returncode == 0, describe(recorded)
        assert recorded.stdout == b"100 pairs sent, then exited 3\n", describe(recorded)

        assert_replay_matches(recorded, replay(trace, timeout=60))


def test_a_python_loop_ended_by_a_timer(tmp_path: Path) -> None:
    """Python's `while True: n += 1` ended by an exception raised from a SIGALRM handler
    (as a timeout decorator does): at the turn the signal was delivered, the
    interpreter's registers and stack were those of many other turns; only the heap
    (the int object n) told them apart, and replay, which stopped at each such turn to
    hash the memory, did not finish in 5 minutes. It takes about a second now."""
    script = ("import signal\n"
              "class Timeout(Exception): pass\n"
              "def expire(signo, frame): raise Timeout()\n"
              "signal.signal(signal.SIGALRM, expire)\n"
              "signal.setitimer(signal.ITIMER_REAL, 0.2)\n"
              "n = 0\n"
              "try:\n"
              "    while True:\n"
              "        n += 1\n"
              "except Timeout:\n"
              "    print('timed out after', 'many' if n > 1000 else 'few', 'turns')\n")
    trace = tmp_path / "trace"
    recorded = record([sys.executable, "-c", script], trace, timeout=60)
    assert recorded.stdout == b"timed out after many turns\n", describe(recorded)

    assert_replay_matches(recorded, replay(trace, timeout=60))


@pytest.mark.parametrize("options", [[], ["--no-syscallbuf"]], ids=["syscallbuf", "nobuf"])
def test_a_profiling_timer_in_computing_threads(options: list[str], build,
                                                tmp_path: Path) -> None:
    """ITIMER_PROF every 1 ms into four computing threads. Without the syscall buffer the
    recorder's probe of a preempted loop ran the thread with PTRACE_CONT, so the syscalls
    it made meanwhile (rt_sigreturn, the thread's exit) went unrecorded and replay
    diverged (3 of 3); it runs them under PTRACE_SYSCALL there now."""
    trace = tmp_path / "trace"
    program = build("profiler_threads", "O2", "-pthread")
    recorded = run_rrgdb(["record", *options, "-o", trace, "--", program], timeout=60)
    assert recorded.returncode == 0, describe(recorded)
    assert recorded.stdout.endswith(b", sampled: yes\n"), describe(recorded)

    assert_replay_matches(recorded, replay(trace, timeout=60))


def _code_of(binary: Path) -> dict[int, bytes]:
    """The loaded segments of a non-PIE executable, by address."""
    with binary.open("rb") as f:
        return {segment["p_vaddr"]: segment.data() for segment in ELFFile(f).iter_segments()
                if segment["p_type"] == "PT_LOAD"}


@pytest.mark.parametrize("options", [[], ["--no-syscallbuf"]], ids=["syscallbuf", "nobuf"])
def test_a_computing_child_interrupted_by_its_parent(options: list[str], build,
                                                     tmp_path: Path) -> None:
    """As `timeout -s INT` does: a parent sends SIGINT and SIGCONT to a child counting in a
    stack word (gcc -O2 of a volatile local's n++) until its handler sets a flag. The
    child, preempted for the parked SIGINT after ~0.7 s of counting, was found again behind
    the search's stub at ~10x its native time (8.6 s to replay a 0.95 s recording): the
    count was watched, but the stub saved and restored rax and the flags at every turn.
    Where the flags are dead it now compares the count's low half with one cmp first, and
    the recorder steps on to such a window (~2 s)."""
    trace = tmp_path / "trace"
    program = build("signal_computing_child", "O2", "-no-pie")
    recorded = run_rrgdb(["record", *options, "-o", trace, "--", program], timeout=60)
    assert recorded.returncode == 0, describe(recorded)
    assert recorded.stdout == b"interrupted after many turns\nchild status 3\n", (
        describe(recorded))
    segments = _code_of(program)

    def code_at(pc: int) -> bytes | None:
        return next((data[pc - start:pc - start + MAX_INSTRUCTION]
                     for start, data in segments.items() if start <= pc < start + len(data)),
                    None)

    preempted = [f for f in TraceReader(trace).frames() if isinstance(f, PreemptFrame)]
    assert preempted, "the child's SIGINT was delivered at no preemption point"
    for frame in preempted:
        regs = Registers.from_bytes(frame.regs)
        counter = [address for address, _ in struct.iter_unpack("<QQ", frame.watched)
                   if 0 <= address - (regs.rsp - STACK_BELOW) < len(frame.stack)]
        assert counter, f"the count is not among the watched words at {regs.rip:#x}"
        assert frame.patch_length and flags_dead(code_at, regs.rip), f"{regs.rip:#x}"

    assert_replay_matches(recorded, replay(trace, timeout=60))


@pytest.mark.parametrize("options", [[], ["--no-syscallbuf"]], ids=["syscallbuf", "nobuf"])
@pytest.mark.parametrize("direct", [True, False], ids=["direct", "sh"])
def test_an_execd_program_has_no_alternate_stack(options: list[str], direct: bool, build,
                                                 tmp_path: Path) -> None:
    """Signal frames show the alternate-stack flags (uc_stack.ss_flags). Linux keeps them
    across exec, so a program that `sh -c` ran (dash vforks, then execs it) saw its
    shell's, 0, when recorded, and SS_DISABLE (2) when replayed, where vfork is a clone
    without CLONE_VFORK, which resets them: replay diverged (`node --cpu-prof` run that way
    at its first preemption point, whose memory hash covered such a frame below the stack
    pointer). Both now turn the alternate stack off at exec, as POSIX says exec does."""
    program = str(build("altstack_flags", "O2"))
    trace = tmp_path / "trace"
    recorded = run_rrgdb(["record", *options, "-o", trace, "--",
                          *([program] if direct else ["sh", "-c", program])])
    assert recorded.returncode == 0, describe(recorded)
    assert recorded.stdout == b"uc_stack.ss_flags in a handler: 2\n", describe(recorded)
    assert_replay_matches(recorded, replay(trace))
