"""Recording when things go wrong: the program is killed, exec fails, memory runs out,
the disk fills up, the recorder is told to stop. Each gives a clear message, no
traceback, a consistent trace, and no process left behind (the autouse leak check, plus
explicit /proc checks on the tracee)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import (
    assert_replay_matches,
    describe,
    record,
    replay,
    rrgdb_lines,
    saved_trace_dir,
)
from test_robustness_support import (
    alive,
    compile_c,
    end_process,
    live_descendants,
    rrgdb_popen,
    wait_until,
)


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("robust-recording")
    return {
        name: compile_c(name, out)
        for name in ("ticker", "buffered_spinner", "stuck_writer", "exec_missing",
                     "out_of_memory", "urandom_reader")
    }


def assert_no_traceback(result: subprocess.CompletedProcess[bytes]) -> None:
    assert b"Traceback" not in result.stderr, describe(result)


def start_recording(program: Path, trace: Path, stdout_path: Path,
                    ready: Callable[[bytes], bool] = lambda out: out.count(b"\n") >= 50,
                    ) -> tuple[subprocess.Popen, int]:
    """Start recording program; return the recorder and the tracee's pid once the
    program's output is ready() (by default: the ticker has printed a few lines)."""
    with stdout_path.open("wb") as stdout:
        recorder = rrgdb_popen(["record", "-o", trace, program], stdout=stdout)
    try:
        wait_until(lambda: ready(stdout_path.read_bytes()), 30,
                   "the recorded program's output")
        tracees = live_descendants(recorder.pid)
        assert len(tracees) == 1, tracees
    except BaseException:
        end_process(recorder, signal.SIGKILL)
        recorder.communicate(timeout=30)
        raise
    return recorder, tracees[0]


def kill_program(recorder: subprocess.Popen, tracee: int,
                 stdout_path: Path) -> subprocess.CompletedProcess[bytes]:
    """SIGKILL to the recorded program; the recording as it ended."""
    try:
        os.kill(tracee, signal.SIGKILL)
        _, stderr = recorder.communicate(timeout=60)
    finally:
        end_process(recorder, signal.SIGKILL)
    return subprocess.CompletedProcess(recorder.args, recorder.returncode,
                                       stdout_path.read_bytes(), stderr)


def test_a_program_killed_by_sigkill_from_outside(programs: dict[str, Path],
                                                  tmp_path: Path) -> None:
    """SIGKILL to the recorded program: record exits 137 like the program, the trace is
    complete and replays to the same death."""
    trace, out = tmp_path / "trace", tmp_path / "out"
    recorded = kill_program(*start_recording(programs["ticker"], trace, out), out)
    assert recorded.returncode == 128 + signal.SIGKILL, describe(recorded)
    assert_no_traceback(recorded)
    assert saved_trace_dir(recorded) == trace
    assert (trace / "complete").exists()
    assert_replay_matches(recorded, replay(trace))


def test_a_program_killed_between_buffered_calls(programs: dict[str, Path],
                                                 tmp_path: Path) -> None:
    """SIGKILL lands after buffered calls that no later event flushed: the trace ends with
    their records, which replay cannot place before the death (nor needs to: the process's
    memory dies with it); the replay must still die the same way."""
    trace, out = tmp_path / "trace", tmp_path / "out"
    recorder, tracee = start_recording(programs["buffered_spinner"], trace, out,
                                       lambda output: b"spinning" in output)
    time.sleep(0.2)
    recorded = kill_program(recorder, tracee, out)
    assert recorded.returncode == 128 + signal.SIGKILL, describe(recorded)
    assert_replay_matches(recorded, replay(trace))


def blocked_in_write(tid: int) -> bool:
    """tid sleeps inside a write syscall (number 1)."""
    try:
        state = Path(f"/proc/{tid}/stat").read_text().rpartition(")")[2].split()[0]
        return state == "S" and Path(f"/proc/{tid}/syscall").read_text().startswith("1 ")
    except OSError:
        return False


def test_a_program_killed_inside_a_write(programs: dict[str, Path], tmp_path: Path) -> None:
    """SIGKILL lands while a traced write to stdout is inside the kernel (blocked on a full
    pipe): the bytes it wrote so far are out, and the program dies without returning from
    the call. Replay writes the same bytes and dies the same way."""
    trace = tmp_path / "trace"
    reader, writer = os.pipe()
    recorder = rrgdb_popen(["record", "-o", trace, programs["stuck_writer"]], stdout=writer)
    os.close(writer)
    try:
        with os.fdopen(reader, "rb") as pipe:
            output = pipe.read(6)
            assert output == b"ready\n"
            tracees = live_descendants(recorder.pid)
            assert len(tracees) == 1, tracees
            wait_until(lambda: blocked_in_write(tracees[0]), 30, "the write to block")
            os.kill(tracees[0], signal.SIGKILL)
            output += pipe.read()
        _, stderr = recorder.communicate(timeout=60)
    finally:
        end_process(recorder, signal.SIGKILL)
    recorded = subprocess.CompletedProcess(recorder.args, recorder.returncode, output, stderr)
    assert recorded.returncode == 128 + signal.SIGKILL, describe(recorded)
    assert len(output) > 6, "the killed write wrote nothing"
    assert_replay_matches(recorded, replay(trace))


def terminate_recorder(recorder: subprocess.Popen, tracee: int, trace: Path) -> None:
    """SIGTERM to the recorder: exit 143, one line saying the trace is incomplete, no
    traceback, and the tracee ends with it."""
    try:
        os.kill(recorder.pid, signal.SIGTERM)
        _, stderr = recorder.communicate(timeout=60)
    finally:
        end_process(recorder, signal.SIGKILL)
    result = subprocess.CompletedProcess(recorder.args, recorder.returncode, b"", stderr)
    assert result.returncode == 128 + signal.SIGTERM, describe(result)
    assert_no_traceback(result)
    assert rrgdb_lines(stderr) == [f"rrgdb: terminated; incomplete trace saved to {trace}"
                                   .encode()], describe(result)
    wait_until(lambda: not alive(tracee), 5, "the tracee to end with the recorder")


def test_sigterm_to_the_recorder(programs: dict[str, Path], tmp_path: Path) -> None:
    """SIGTERM to `rrgdb record` (by pid): it ends the program, says the trace is
    incomplete, exits 143; the trace replays to its last event."""
    trace, out = tmp_path / "trace", tmp_path / "out"
    recorder, tracee = start_recording(programs["ticker"], trace, out)
    terminate_recorder(recorder, tracee, trace)
    replayed = replay(trace)
    assert replayed.returncode == 1, describe(replayed)
    assert b"incomplete" in b"".join(rrgdb_lines(replayed.stderr)), describe(replayed)
    assert out.read_bytes().startswith(replayed.stdout)


def test_ctrl_c_to_the_recorder_and_its_program(programs: dict[str, Path],
                                                tmp_path: Path) -> None:
    """^C in a terminal signals the whole foreground group: the recorder ignores it and
    the program decides (the ticker dies of it). SIGINT is sent to both pids, as the
    terminal would; record exits 130 with a complete trace that replays the death."""
    trace, out = tmp_path / "trace", tmp_path / "out"
    recorder, tracee = start_recording(programs["ticker"], trace, out)
    try:
        os.kill(recorder.pid, signal.SIGINT)
        os.kill(tracee, signal.SIGINT)
        _, stderr = recorder.communicate(timeout=60)
    finally:
        end_process(recorder, signal.SIGKILL)
    recorded = subprocess.CompletedProcess(recorder.args, recorder.returncode,
                                           out.read_bytes(), stderr)
    assert recorded.returncode == 128 + signal.SIGINT, describe(recorded)
    assert_no_traceback(recorded)
    assert saved_trace_dir(recorded) == trace
    assert_replay_matches(recorded, replay(trace))


def test_exec_of_a_missing_file(programs: dict[str, Path], tmp_path: Path) -> None:
    """execve fails with ENOENT; the program reports it and exits 5, in the recording
    and in the replay."""
    recorded = record([programs["exec_missing"]], tmp_path / "trace")
    assert recorded.returncode == 5, describe(recorded)
    assert b"errno 2 (No such file or directory)" in recorded.stdout
    assert_no_traceback(recorded)
    assert_replay_matches(recorded, replay(saved_trace_dir(recorded)))


def test_running_out_of_memory(programs: dict[str, Path], tmp_path: Path) -> None:
    """RLIMIT_AS of 64 MiB, then malloc until it fails: recorded and replayed alike."""
    recorded = record([programs["out_of_memory"]], tmp_path / "trace")
    assert recorded.returncode == 0, describe(recorded)
    assert b"malloc failed after" in recorded.stdout and b"1 GiB malloc: NULL" in recorded.stdout
    assert_no_traceback(recorded)
    assert_replay_matches(recorded, replay(saved_trace_dir(recorded)))


# ------------------------------------------------------------------ a full disk


@pytest.fixture
def small_disk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A tmpfs of the size given by the test's parameter, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    size = request.param
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                             str(mount_point)], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a {size} tmpfs here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True, timeout=30)


@pytest.mark.parametrize(
    ("small_disk", "program_name"),
    [
        pytest.param("1M", "ticker", id="copies-of-mapped-files-do-not-fit"),
        pytest.param("8M", "urandom_reader", id="events-do-not-fit"),
    ],
    indirect=["small_disk"],
)
def test_a_full_disk(small_disk: Path, program_name: str, programs: dict[str, Path]) -> None:
    """The trace directory's disk fills up while recording: a clear message naming the
    problem, a nonzero status, no traceback, the program ended; what was written is a
    consistent (incomplete) trace that replay reads without a traceback."""
    trace = small_disk / "trace"
    recorded = record([programs[program_name], "100000"], trace)
    assert_no_traceback(recorded)
    assert recorded.returncode not in (0, 128 + signal.SIGKILL), describe(recorded)
    lines = rrgdb_lines(recorded.stderr)
    assert lines and any(b"No space left on device" in line for line in lines), describe(
        recorded)
    assert not (trace / "complete").exists()
    replayed = replay(trace)
    assert_no_traceback(replayed)
    assert replayed.returncode in (1, 2), describe(replayed)
    assert len(rrgdb_lines(replayed.stderr)) == 1, describe(replayed)


def test_sigterm_to_the_recorder_while_the_program_sleeps(tmp_path: Path) -> None:
    """SIGTERM reaches `rrgdb record` while it waits for a program asleep (a buffered
    sleep: nothing stops the program for minutes): it ends at once, as above."""
    trace = tmp_path / "trace"
    recorder = rrgdb_popen(["record", "-o", trace, "/bin/sleep", "600"])
    try:
        wait_until(lambda: len(live_descendants(recorder.pid)) == 1, 30, "the sleeper")
    except BaseException:
        end_process(recorder, signal.SIGKILL)
        raise
    time.sleep(0.5)  # well into its sleep
    terminate_recorder(recorder, live_descendants(recorder.pid)[0], trace)
