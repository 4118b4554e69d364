"""Programs nobody here wrote record and replay exactly: same bytes, same exit status.

They come from the distribution (coreutils, dash, the system Python, Node.js), so they
exercise what the C test programs do not: locale files, large directory listings, statx,
/proc, a language runtime's start-up with hundreds of syscalls and threads.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import assert_replay_matches, describe, record, replay, run_native

PYTHON3 = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
NODE = shutil.which("node", path="/usr/bin:/bin:/usr/local/bin") or "/usr/bin/node"


@dataclass(frozen=True)
class SystemCommand:
    """A command line, the status it exits with, and whether two runs print differently."""

    argv: tuple[str, ...]
    status: int = 0
    varies: bool = True


COMMANDS = {
    "ls": SystemCommand(("/bin/ls", "-la", "/usr/include"), varies=False),
    "date": SystemCommand(("/bin/date", "+%s%N")),
    "python3": SystemCommand(
        (PYTHON3, "-c", "import os,random;print(os.urandom(8).hex(),random.random())")
    ),
    "od": SystemCommand(("/usr/bin/od", "-An", "-N16", "-tx1", "/dev/urandom")),
    "cat": SystemCommand(("/bin/cat", "/proc/self/status")),
    # V8 and libuv: a dozen threads (alive at exit_group), protection keys (refused),
    # timers, the clock and the kernel's randomness
    "node": SystemCommand(
        (NODE, "-e", "const c = require('crypto'); "
         "setTimeout(() => console.log(c.randomBytes(8).toString('hex'), Date.now()), 5)")
    ),
    # procps: get_mempolicy and set_mempolicy (NUMA policy: emulated)
    "ps": SystemCommand(("/usr/bin/ps", "-e", "-o", "pid=,comm=")),
    # coreutils' timeout: a POSIX timer (timer_create, timer_settime; only the recording
    # has it, replay delivers its SIGALRM), then kills the command and exits 124
    "timeout": SystemCommand(
        ("/bin/sh", "-c", "/usr/bin/timeout 0.2 /bin/sleep 5; echo status $?"), varies=False
    ),
    "sh": SystemCommand(
        ("/bin/sh", "-c", "echo hi; echo to stderr >&2; exit 7"), status=7, varies=False
    ),
}


def command(name: str) -> SystemCommand:
    spec = COMMANDS[name]
    if not Path(spec.argv[0]).exists():
        pytest.skip(f"{spec.argv[0]} is not installed")
    return spec


@pytest.mark.parametrize("name", COMMANDS)
def test_system_program_replays_exactly(name: str, tmp_path: Path) -> None:
    """record then replay -a: identical stdout, stderr (rrgdb's lines aside) and status."""
    spec = command(name)
    trace = tmp_path / "trace"
    recorded = record(spec.argv, trace)
    assert recorded.returncode == spec.status, describe(recorded)
    assert recorded.stdout, describe(recorded)

    replayed = replay(trace)

    assert_replay_matches(recorded, replayed)


@pytest.mark.parametrize("name", [name for name, spec in COMMANDS.items() if spec.varies])
def test_a_naive_rerun_would_not_match(name: str) -> None:
    """Two plain runs print different output, so replay cannot just re-run the program."""
    spec = command(name)

    first, second = run_native(spec.argv), run_native(spec.argv)

    assert first.returncode == second.returncode == spec.status, describe(first)
    assert first.stdout != second.stdout
