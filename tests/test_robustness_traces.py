"""Traces survive a recorder that dies, and the readers survive any damaged trace.

* A recorder killed with SIGKILL mid-run leaves a trace that ``replay -a`` replays up to
  its last complete event, saying (one ``rrgdb:`` line, exit 1) that it is incomplete;
  the tracee dies with its recorder.
* Hypothesis mutates copies of a real trace (bytes flipped, inserted, deleted, files
  truncated, in every file of the trace's own) and runs ``replay -a``, ``dump`` and ``ps``
  on them: never a traceback, never a hang; either the mutation was harmless or the
  command exits 1 or 2 with an ``rrgdb:`` line.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import describe, record, replay, rrgdb_lines, run_rrgdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_robustness_support import (
    alive,
    compile_c,
    end_process,
    live_descendants,
    rrgdb_popen,
    wait_until,
)

FUZZ_EXAMPLES = int(os.environ.get("RRGDB_FUZZ_EXAMPLES", "25"))
COMMAND_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def ticker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_c("ticker", tmp_path_factory.mktemp("ticker"))


def record_then_sigkill(ticker: Path, out: Path, *, after_lines: int) -> tuple[Path, bytes]:
    """Record the ticker, SIGKILL the recorder (by pid) once the program printed
    `after_lines` lines; check the tracee goes too. Returns the trace and the output."""
    trace = out / "trace"
    stdout_path = out / "recorded.out"
    with stdout_path.open("wb") as stdout:
        recorder = rrgdb_popen(["record", "-o", trace, ticker], stdout=stdout)
        try:
            wait_until(lambda: stdout_path.read_bytes().count(b"\n") >= after_lines, 30,
                       f"{after_lines} lines from the recorded program")
            tracees = live_descendants(recorder.pid)
            assert tracees, "the recorded program is not running"
            os.kill(recorder.pid, signal.SIGKILL)
            recorder.wait(timeout=30)
        finally:
            end_process(recorder, signal.SIGKILL)
            recorder.communicate(timeout=30)
    wait_until(lambda: not any(alive(pid) for pid in tracees), 5,
               f"the tracees {tracees} to die with their recorder")
    return trace, stdout_path.read_bytes()


def assert_says_incomplete(result: subprocess.CompletedProcess[bytes]) -> None:
    assert b"Traceback" not in result.stderr, describe(result)
    assert result.returncode == 1, describe(result)
    lines = rrgdb_lines(result.stderr)
    assert len(lines) == 1 and b"incomplete" in lines[0], describe(result)


def test_a_sigkilled_recorder_leaves_a_trace_that_replays_to_its_last_event(
    ticker: Path, tmp_path: Path
) -> None:
    """About a second of recording (thousands of events, several blocks), then SIGKILL."""
    trace, recorded = record_then_sigkill(ticker, tmp_path, after_lines=700)
    replayed = replay(trace)
    assert_says_incomplete(replayed)
    # Everything replayed is what the program printed, and some of it was replayed.
    assert replayed.stdout and recorded.startswith(replayed.stdout), describe(replayed)
    assert replayed.stdout.endswith(b"\n")
    # The count in the message is the number of events dump lists.
    dumped = run_rrgdb(["dump", trace])
    assert dumped.returncode == 0, describe(dumped)
    events = len(dumped.stdout.splitlines())
    assert events > 512, "expected at least one whole block of events"
    assert f" {events} events".encode() in rrgdb_lines(replayed.stderr)[0], describe(replayed)
    assert rrgdb_lines(dumped.stderr) == [
        b"rrgdb: the trace is incomplete (the recorder did not finish)"
    ]


def test_a_recorder_killed_before_its_first_block_leaves_a_trace_that_says_incomplete(
    ticker: Path, tmp_path: Path
) -> None:
    """Killed right after the program started: no block of events was written yet.
    Replay has nothing to replay, and must say the trace is incomplete (not that it is
    corrupt)."""
    trace, _ = record_then_sigkill(ticker, tmp_path, after_lines=1)
    assert (trace / "header").exists()
    assert_says_incomplete(replay(trace))


# ------------------------------------------------------------------ fuzzing the readers


@pytest.fixture(scope="module")
def small_trace(ticker: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A complete trace of a short run, and the program's output."""
    trace = tmp_path_factory.mktemp("small") / "trace"
    recorded = record([str(ticker), "40"], trace)
    assert recorded.returncode == 0, describe(recorded)
    return trace, recorded.stdout


def own_files(trace: Path) -> list[str]:
    """The trace's own files (relative paths): not the copies of the program's files,
    whose contents are not hashed again at replay (a damaged copy of libc could make
    the replayed program do anything, including loop forever)."""
    names = []
    for path in sorted(trace.rglob("*")):
        rel = path.relative_to(trace)
        if path.is_file() and not (rel.parts[0] == "files" and len(rel.name) == 64):
            names.append(str(rel))
    return names


Mutation = tuple[str, float, bytes]
mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "truncate", "overwrite"]),
        st.floats(0, 1, allow_nan=False),
        st.binary(min_size=1, max_size=16),
    ),
    min_size=1,
    max_size=4,
)


def mutate(data: bytes, ops: list[Mutation]) -> bytes:
    buf = bytearray(data)
    for op, where, payload in ops:
        pos = min(int(where * len(buf)), max(len(buf) - 1, 0))
        if op == "flip" and buf:
            for i, b in enumerate(payload):
                if pos + i < len(buf):
                    buf[pos + i] ^= b or 0xFF
        elif op == "insert":
            buf[pos:pos] = payload
        elif op == "delete":
            del buf[pos : pos + len(payload)]
        elif op == "truncate":
            del buf[pos:]
        elif op == "overwrite":
            buf[pos : pos + len(payload)] = payload
    return bytes(buf)


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_traces_never_crash_or_hang_the_readers(
    data: st.DataObject, small_trace: tuple[Path, bytes]
) -> None:
    good, good_stdout = small_trace
    files = own_files(good)
    chosen = data.draw(st.lists(st.sampled_from(files), min_size=1, max_size=2, unique=True))
    with tempfile.TemporaryDirectory(prefix="rrgdb-fuzz-") as scratch:
        trace = Path(scratch) / "trace"
        shutil.copytree(good, trace)
        for name in chosen:
            path = trace / name
            path.chmod(0o644)
            path.write_bytes(mutate(path.read_bytes(), data.draw(mutations, label=name)))
        for args in (["replay", "-a", trace], ["dump", trace], ["ps", trace]):
            start = time.monotonic()
            try:
                result = run_rrgdb(args, timeout=COMMAND_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"rrgdb {args[0]} hung on a trace with {chosen} mutated")
            what = f"{describe(result)}\nmutated: {chosen} ({time.monotonic() - start:.1f} s)"
            assert b"Traceback" not in result.stderr, what
            if result.returncode == 0:
                if args[0] == "replay":
                    assert result.stdout == good_stdout, what
                continue
            assert result.returncode in (1, 2), what
            lines = rrgdb_lines(result.stderr)
            assert lines, what
            assert result.stderr.splitlines()[-1] == lines[-1], what
