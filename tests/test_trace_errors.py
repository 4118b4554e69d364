"""Bad input at the command line gets one clear line from rrgdb, never a traceback.

A missing, empty, truncated or corrupted trace makes ``replay -a`` (and ``ps``/``dump``)
print exactly one line on stderr, starting with "rrgdb:", and exit with status 2.
The corruptions only assume that a trace is a directory of files: they truncate or
overwrite bytes, whatever the files hold.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Program, describe, record, run_rrgdb

COMMANDS = {"replay": ["replay", "-a"], "ps": ["ps"], "dump": ["dump"]}


def assert_one_line_error(result: subprocess.CompletedProcess[bytes], status: int = 2) -> None:
    """Exit ``status`` with exactly one line on stderr, rrgdb's own, and no traceback."""
    assert result.returncode == status, describe(result)
    assert b"Traceback" not in result.stderr, describe(result)
    lines = result.stderr.decode(errors="replace").splitlines()
    assert len(lines) == 1, describe(result)
    assert lines[0].startswith("rrgdb:"), describe(result)


@pytest.fixture(scope="module")
def good_trace(
    built_programs: dict[str, Program], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A valid trace of a program that writes nothing on stderr."""
    trace = tmp_path_factory.mktemp("good") / "trace"
    recorded = record([str(built_programs["clocks-O2"].path)], trace)
    assert recorded.returncode == 0, describe(recorded)
    return trace


def trace_files(trace: Path) -> list[Path]:
    """Every regular file of a trace, largest first, made writable for the corruptions
    (a trace may keep its copies read-only)."""
    files = [path for path in trace.rglob("*") if path.is_file() and not path.is_symlink()]
    for path in files:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return sorted(files, key=lambda path: (-path.stat().st_size, str(path)))


def stream_files(trace: Path) -> list[Path]:
    """The trace's own files, largest first: not the copies of the program's mapped files
    (kept in a files/ subdirectory), which a trace may legitimately hash lazily."""
    return [path for path in trace_files(trace) if "files" not in path.relative_to(trace).parts]


def truncate_largest_to_half(trace: Path) -> None:
    largest = stream_files(trace)[0]
    with largest.open("r+b") as f:
        f.truncate(largest.stat().st_size // 2)


def truncate_every_file_to_half(trace: Path) -> None:
    for path in trace_files(trace):
        with path.open("r+b") as f:
            f.truncate(path.stat().st_size // 2)


def flip_bytes_in_the_middle(trace: Path) -> None:
    largest = stream_files(trace)[0]
    data = bytearray(largest.read_bytes())
    middle = len(data) // 2
    for i in range(max(0, middle - 16), min(len(data), middle + 16)):
        data[i] ^= 0xFF
    largest.write_bytes(bytes(data))


def overwrite_the_version(trace: Path) -> None:
    """Overwrite the start of the file that says which format this is (a file named like
    version/header; else every top-level file), as a future rrgdb version might write it."""
    top = [path for path in stream_files(trace) if path.parent == trace]
    named = [path for path in top if path.name.lower() in ("version", "header")]
    for path in named or top:
        data = bytearray(path.read_bytes())
        stamp = b"RRGDB-FORMAT-999"
        data[: len(stamp)] = stamp
        path.write_bytes(bytes(data))


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "largest-file-truncated": truncate_largest_to_half,
    "every-file-truncated": truncate_every_file_to_half,
    "bytes-flipped": flip_bytes_in_the_middle,
    "version-overwritten": overwrite_the_version,
}


# ------------------------------------------------------------------ no trace at all


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_trace_directory(command: str, tmp_path: Path) -> None:
    result = run_rrgdb([*COMMANDS[command], tmp_path / "no-such-trace"])

    assert_one_line_error(result)


@pytest.mark.parametrize("command", COMMANDS)
def test_an_empty_directory(command: str, tmp_path: Path) -> None:
    result = run_rrgdb([*COMMANDS[command], tmp_path])

    assert_one_line_error(result)


def test_a_regular_file_instead_of_a_trace(tmp_path: Path) -> None:
    not_a_trace = tmp_path / "trace"
    not_a_trace.write_bytes(b"this is not a trace\n")

    result = run_rrgdb(["replay", "-a", not_a_trace])

    assert_one_line_error(result)


def test_replay_without_a_directory_and_no_latest_trace(tmp_path: Path) -> None:
    result = run_rrgdb(
        ["replay", "-a"],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "RRGDB_TRACE_DIR": str(tmp_path / "traces"),
        },
    )

    assert_one_line_error(result)


# ------------------------------------------------------------------ damaged traces


def test_the_unmodified_copy_replays(good_trace: Path, tmp_path: Path) -> None:
    """Control for the corruptions below: a plain copy of the trace replays fine."""
    copy = tmp_path / "trace"
    shutil.copytree(good_trace, copy, symlinks=True)

    result = run_rrgdb(["replay", "-a", copy])

    assert result.returncode == 0, describe(result)


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_damaged_trace_is_refused(corruption: str, good_trace: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "trace"
    shutil.copytree(good_trace, damaged, symlinks=True)
    CORRUPTIONS[corruption](damaged)

    result = run_rrgdb(["replay", "-a", damaged])

    assert_one_line_error(result)


# ------------------------------------------------------------------ bad programs to record


def test_recording_a_program_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-program"

    result = record([str(missing)], tmp_path / "trace")

    assert result.returncode != 0, describe(result)
    assert b"Traceback" not in result.stderr, describe(result)
    assert result.stderr.startswith(b"rrgdb:"), describe(result)
    assert b"no-such-program" in result.stderr, describe(result)


def test_recording_a_file_that_is_not_executable(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a program\n")

    result = record([str(text)], tmp_path / "trace")

    assert result.returncode != 0, describe(result)
    assert b"Traceback" not in result.stderr, describe(result)
    assert result.stderr.startswith(b"rrgdb:"), describe(result)
    assert b"notes.txt" in result.stderr, describe(result)
