"""Recording a C program and replaying it with ``rrgdb replay -a`` reproduces the recorded
run exactly: the same stdout bytes, the same stderr bytes, the same exit status.

The programs (tests/programs/*.c) each print something a naive re-run would print
differently: clocks, random bytes, the TSC, pids, ASLR'd pointers, the stack canary, inode
numbers, fault addresses. test_a_naive_rerun_would_not_match shows that they do vary, so
a replay that merely re-ran the program could not pass test_replay_reproduces_the_recording.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    ProcessInfo,
    Program,
    assert_replay_matches,
    descendants,
    describe,
    program_stderr,
    record,
    replay,
    rrgdb_command,
    rrgdb_env,
    rrgdb_lines,
    run_native,
    run_rrgdb,
    saved_trace_dir,
)

from rrgdb.replay import session as replay_session

SYS_GETPID = 39
# The syscalls the pids program can make from its first getpid on: the divergence the
# tampered result causes is reported at one of them.
SYSCALLS_AFTER_GETPID = (
    "getpid",
    "getppid",
    "gettid",
    "write",
    "fstat",
    "newfstatat",
    "brk",
    "exit_group",
)
ORIG_RAX_OFFSET = 15 * 8  # in struct user_regs_struct


def aslr_enabled() -> bool:
    return Path("/proc/sys/kernel/randomize_va_space").read_text().strip() != "0"


def record_ok(
    cmd: list[str], trace: Path, expected_status: int = 0, **kw: object
) -> subprocess.CompletedProcess[bytes]:
    """Record ``cmd`` into ``trace``, checking the status and the closing rrgdb line."""
    recorded = record(cmd, trace, **kw)
    assert recorded.returncode == expected_status, describe(recorded)
    assert saved_trace_dir(recorded).resolve() == trace.resolve(), describe(recorded)
    return recorded


# ------------------------------------------------------------------ every program


def test_replay_reproduces_the_recording(program: Program, tmp_path: Path) -> None:
    """record then replay -a: identical stdout, stderr (rrgdb's lines aside) and status."""
    trace = tmp_path / "trace"
    recorded = record_ok(program.command(tmp_path), trace, program.spec.status)

    replayed = replay(trace)

    assert_replay_matches(recorded, replayed)


def test_a_naive_rerun_would_not_match(program: Program, tmp_path: Path) -> None:
    """Two plain runs of the program print different output (so replay must not re-run)."""
    if program.spec.varies == "never":
        pytest.skip("this program prints the same thing on every run")
    if program.spec.varies == "aslr" and not aslr_enabled():
        pytest.skip("its output only varies with ASLR, which is off on this machine")

    first = run_native(program.command(tmp_path))
    second = run_native(program.command(tmp_path))

    native_status = first.returncode if first.returncode >= 0 else 128 - first.returncode
    assert native_status == program.spec.status, describe(first)
    assert first.stdout != second.stdout


# ------------------------------------------------------------------ what replay does not need


def test_replay_does_not_depend_on_cwd_environment_or_stdin(
    built_programs: dict[str, Program], tmp_path: Path
) -> None:
    """A replay from / with a bare environment and no stdin still shows what was recorded."""
    program = built_programs["context-O2"]
    trace = tmp_path / "trace"
    recorded = record_ok(
        [str(program.path)],
        trace,
        cwd=tmp_path,
        env={**os.environ, "RRGDB_TEST_MARK": "recorded", "HOME": "/nowhere"},
        stdin=None,
        input=b"typed at record time\n",
    )
    assert b"stdin typed at record time" in recorded.stdout
    assert f"cwd   {tmp_path}".encode() in recorded.stdout

    replayed = replay(trace, cwd="/", env={"PATH": "/usr/bin:/bin"})

    assert_replay_matches(recorded, replayed)


def test_replay_after_the_executable_is_deleted(
    built_programs: dict[str, Program], tmp_path: Path
) -> None:
    """The trace keeps its own copy of the program: deleting the original does not matter."""
    executable = tmp_path / "bin" / "clocks"
    executable.parent.mkdir()
    shutil.copy2(built_programs["clocks-O2"].path, executable)
    trace = tmp_path / "trace"
    recorded = record_ok([str(executable)], trace)

    executable.unlink()
    replayed = replay(trace)

    assert_replay_matches(recorded, replayed)


@pytest.mark.parametrize("name", ["file_io", "mmap_io"])
def test_replay_after_the_data_files_are_deleted(
    name: str, built_programs: dict[str, Program], tmp_path: Path
) -> None:
    """Files the program read, wrote and mapped are not needed by the replay."""
    program = built_programs[f"{name}-O2"]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    trace = tmp_path / "trace"
    recorded = record_ok([str(program.path), str(data_dir)], trace)

    shutil.rmtree(data_dir)
    replayed = replay(trace)

    assert_replay_matches(recorded, replayed)
    assert not data_dir.exists(), "replay must not redo the program's file system effects"


def test_replay_keeps_the_interleaving_of_stdout_and_stderr(
    built_programs: dict[str, Program], tmp_path: Path
) -> None:
    """With both streams on one pipe, replay writes the same bytes in the same order."""
    program = built_programs["interleave-O2"]
    trace = tmp_path / "trace"
    recorded = record([str(program.path)], trace, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert recorded.returncode == 0, describe(recorded)
    assert b"out 0 at " in recorded.stdout and b" | err 0\n" in recorded.stdout

    replayed = replay(trace, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    assert replayed.returncode == 0, describe(replayed)
    assert program_stderr(replayed.stdout) == program_stderr(recorded.stdout)


def live_processes(cmdline: str) -> list[ProcessInfo]:
    """Our descendants running exactly this command line (zombies excluded)."""
    return [
        info
        for info in descendants(os.getpid()).values()
        if info.cmdline == cmdline and info.state != "Z"
    ]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_the_recorder_and_its_tracees_share_one_cpu(tmp_path: Path) -> None:
    """A ptrace stop costs ~10x less when the tracer and the tracee do not wake each other
    across CPUs; the program sees (and its replay reproduces) the one CPU it ran on."""
    cpus = "import os; print(len(os.sched_getaffinity(0)))"
    native = run_native([sys.executable, "-c", cpus])
    assert int(native.stdout) >= 2, describe(native)
    recorded = record_ok([sys.executable, "-c", cpus], tmp_path / "trace")
    assert recorded.stdout == b"1\n", describe(recorded)
    assert_replay_matches(recorded, replay(tmp_path / "trace"))


def test_the_program_inherits_the_signals_rrgdb_was_started_with_ignored(
        tmp_path: Path) -> None:
    """As a native run would: under nohup (SIGHUP and SIGQUIT ignored here) the program
    ignores them too; the signals rrgdb or Python set for themselves (SIGINT, SIGPIPE)
    are back to their defaults."""
    probe = ("import signal; print([int(signal.getsignal(s)) for s in (signal.SIGHUP, "
             "signal.SIGQUIT, signal.SIGUSR1)], signal.getsignal(signal.SIGINT))")

    def nohup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)

    native = run_native([sys.executable, "-c", probe], preexec_fn=nohup)
    assert native.stdout == b"[1, 1, 0] <built-in function default_int_handler>\n", (
        describe(native))
    for option in ([], ["--no-syscallbuf"]):  # its queries buffered, then traced and
        trace = tmp_path / f"trace{len(option)}"  # answered by the replay's kernel
        recorded = run_rrgdb(["record", *option, "-o", trace, "--", sys.executable, "-c",
                              probe], preexec_fn=nohup)
        assert recorded.stdout == native.stdout, describe(recorded)
        assert_replay_matches(recorded, replay(trace))


def test_replay_keeps_few_trace_file_descriptors_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay maps the trace's copies through descriptors it keeps open in the tracee;
    past TRACE_FDS_KEPT it closes them and starts again (here at every second file of a
    python start-up, which maps a dozen), and the replay still ends as recorded."""
    trace = tmp_path / "trace"
    recorded = record_ok([sys.executable, "-c", "import json, decimal; print(1)"], trace)
    monkeypatch.setattr(replay_session, "TRACE_FDS_KEPT", 2)
    session = replay_session.ReplaySession(trace, echo=None)
    try:
        session.start()
        status = session.run_to_end()
    finally:
        session.close()
    assert os.waitstatus_to_exitcode(status) == recorded.returncode == 0


def test_killing_the_recorder_kills_the_tracee(tmp_path: Path) -> None:
    """If rrgdb record dies (SIGKILL), the program it traces does not live on."""
    args = ["record", "-o", str(tmp_path / "trace"), "--", "/bin/sleep", "60"]
    recorder = subprocess.Popen(
        rrgdb_command(args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=rrgdb_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while not live_processes("/bin/sleep 60"):
            assert time.monotonic() < deadline, "the recorded program never started"
            assert recorder.poll() is None, "rrgdb record exited early"
            time.sleep(0.05)
    finally:
        recorder.kill()
        recorder.wait(timeout=30)

    deadline = time.monotonic() + 5
    while survivors := live_processes("/bin/sleep 60"):
        assert time.monotonic() < deadline, f"the tracee outlived the recorder: {survivors}"
        time.sleep(0.05)


# ------------------------------------------------------------------ trace directory, ps, dump


def test_default_trace_directory_and_latest_trace(
    built_programs: dict[str, Program], tmp_path: Path
) -> None:
    """Without -o, traces go to $RRGDB_TRACE_DIR/<prog>-<n>; latest-trace names the newest;
    replay -a without a directory replays it."""
    program = built_programs["pids-O2"]
    traces = tmp_path / "traces"
    env = {**os.environ, "RRGDB_TRACE_DIR": str(traces)}
    saved: list[Path] = []
    runs: list[subprocess.CompletedProcess[bytes]] = []
    for _ in range(2):
        result = record([str(program.path)], None, env=env)
        assert result.returncode == 0, describe(result)
        saved.append(saved_trace_dir(result))
        runs.append(result)

    first, second = (path.resolve() for path in saved)
    assert first != second
    for path in (first, second):
        assert path.parent == traces.resolve()
        assert re.fullmatch(rf"{re.escape(program.path.name)}-\d+", path.name), path.name
        assert path.is_dir()
    assert (traces / "latest-trace").is_symlink()
    assert (traces / "latest-trace").resolve() == second

    replayed = replay(None, env=env)

    assert_replay_matches(runs[1], replayed)


@pytest.fixture(scope="module")
def pids_trace(
    built_programs: dict[str, Program], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[bytes]]:
    """One recording of the pids program (-O0), shared by the tests that only read it.
    Without the syscall buffer, so that getpid is an event of its own (buffered, it is a
    record in a flush: test_syscallbuf.py tampers with that one)."""
    trace = tmp_path_factory.mktemp("pids") / "trace"
    program = built_programs["pids-O0"]
    recorded = run_rrgdb(["record", "--no-syscallbuf", "-o", trace, program.path])
    assert recorded.returncode == 0, describe(recorded)
    return trace, recorded


def recorded_pid(recorded: subprocess.CompletedProcess[bytes]) -> int:
    match = re.search(rb"^pid  (\d+)$", recorded.stdout, re.M)
    assert match, describe(recorded)
    return int(match.group(1))


def test_ps_lists_the_recorded_process(
    pids_trace: tuple[Path, subprocess.CompletedProcess[bytes]],
) -> None:
    """ps shows the recorded pid, its exit status and its command line."""
    trace, recorded = pids_trace

    result = run_rrgdb(["ps", trace])

    assert result.returncode == 0, describe(result)
    text = result.stdout.decode()
    assert re.search(rf"\b{recorded_pid(recorded)}\b", text), text
    assert "pids-O0" in text, text


def test_dump_lists_one_line_per_event(
    pids_trace: tuple[Path, subprocess.CompletedProcess[bytes]],
) -> None:
    """dump shows the getpid event with the recorded pid as its result, and the write."""
    trace, recorded = pids_trace

    result = run_rrgdb(["dump", trace])

    assert result.returncode == 0, describe(result)
    lines = result.stdout.decode().splitlines()
    getpid_lines = [line for line in lines if re.search(r"\bgetpid\b", line)]
    assert getpid_lines, "\n".join(lines)
    assert re.search(rf"\b{recorded_pid(recorded)}\b", getpid_lines[0]), getpid_lines[0]
    assert any(re.search(r"\bwrite\b", line) for line in lines), "\n".join(lines)


# ------------------------------------------------------------------ divergence detection


def rewrite_trace(
    source: Path, destination: Path, edit: Callable[[list[object]], list[object]]
) -> None:
    """Copy a trace through the public trace API, passing its frames through ``edit``."""
    from rrgdb.trace import TraceReader, TraceWriter

    reader = TraceReader(source)
    frames = edit(list(reader.frames()))
    writer = TraceWriter(destination, reader.header)
    for path in sorted((source / "files").rglob("*")):
        if path.is_file() and path.name != "index":
            writer.add_file(path)
    for frame in frames:
        writer.write(frame)
    writer.close()


def syscall_number(frame: object) -> int | None:
    regs = getattr(frame, "regs", None)
    if not isinstance(regs, bytes) or not hasattr(frame, "result"):
        return None
    return struct.unpack_from("<Q", regs, ORIG_RAX_OFFSET)[0]


def test_a_tampered_syscall_result_is_reported_as_divergence(
    pids_trace: tuple[Path, subprocess.CompletedProcess[bytes]], tmp_path: Path
) -> None:
    """Change getpid's recorded result to a pid with one more digit: the program's output
    write gets longer, so the replay's registers differ from the recording's -> exit 1."""
    trace, recorded = pids_trace
    pid = recorded_pid(recorded)
    tampered_at: list[int] = []

    def tamper(frames: list[object]) -> list[object]:
        for index, frame in enumerate(frames):
            if syscall_number(frame) == SYS_GETPID:
                assert frame.result == pid  # type: ignore[attr-defined]
                frames[index] = dataclasses.replace(frame, result=pid * 10 + 1)  # type: ignore
                tampered_at.append(index)
                return frames
        raise AssertionError("no getpid event in the trace")

    tampered = tmp_path / "tampered"
    rewrite_trace(trace, tampered, tamper)

    replayed = replay(tampered)

    assert replayed.returncode == 1, describe(replayed)
    message = b"\n".join(rrgdb_lines(replayed.stderr)).decode()
    assert "diverge" in message.lower(), describe(replayed)
    assert re.search(r"event\D{0,20}\d+", message, re.I), "must name the event index"
    assert re.search(rf"\b({'|'.join(SYSCALLS_AFTER_GETPID)})\b", message), "must name the syscall"
    assert re.search(r"\b(r[a-d]x|r[sd]i|r[bs]p|rip|r\d\d?|eflags)\b", message), (
        "must name the differing registers"
    )
    assert b"Traceback" not in replayed.stderr, describe(replayed)
