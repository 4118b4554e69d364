"""record/preemption.py on a real traced process: where the recorder leaves a thread it
stops between syscalls, when the thread does not come back to its window soon."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import traced_at_label

from rrgdb import native
from rrgdb.kernel.breakpoints import INT3
from rrgdb.kernel.task import StopKind, Task
from rrgdb.record.preemption import EFLAGS_RF, Running, Settled, settle


@pytest.fixture
def at_window(tmp_path: Path) -> Iterator[Task]:
    """tests/programs/distant_visits.c, traced and stopped at its label `window`."""
    with traced_at_label("distant_visits", tmp_path) as task:
        yield task


def _pending(tid: int) -> int:
    for line in Path(f"/proc/{tid}/status").read_text().splitlines():
        if line.startswith("SigPnd:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigPnd line")


def test_a_thread_that_does_not_come_back_is_settled_where_it_stands(at_window: Task) -> None:
    task = at_window
    window = task.regs().rip
    settled = settle(task, task.regs(), Running(native.PTRACE_SYSCALL, lambda stop: False))
    # stopped by rrgdb's SIGSTOP mid-loop (its window was 0.2 s away), and settled there
    assert isinstance(settled, Settled), settled
    assert settled.regs.rip != window and not settled.watched
    assert settled.regs.to_bytes() == task.regs().to_bytes()
    assert not task.regs().eflags & EFLAGS_RF  # the breakpoint's resume flag is not left
    assert not _pending(task.tid) & 1 << (signal.SIGSTOP - 1)  # the SIGSTOP was taken
    assert os.path.exists(f"/proc/{task.tid}")
    # and it runs on as before: to the window again, where it stops for an int3
    task.write(window, INT3)
    task.resume(native.PTRACE_CONT)
    stop = task.wait()
    assert (stop.kind, stop.signo, task.regs().rip) == (StopKind.SIGNAL, signal.SIGTRAP,
                                                        window + 1)


def test_a_thread_is_stepped_on_to_a_window_where_the_flags_are_dead(tmp_path: Path) -> None:
    """tests/programs/flags_read_after_window.c, stopped at a window where the status
    flags are live: there replay's stub must save and restore them at every visit (a
    tight loop ran 5-10x slower than natively behind it); the thread is stepped on to the
    loop's other window, where the stub may set them (2x)."""
    with traced_at_label("flags_read_after_window", tmp_path) as task:
        window = task.regs().rip
        settled = settle(task, task.regs(), Running(native.PTRACE_SYSCALL, lambda stop: False),
                         probe=False)
        assert isinstance(settled, Settled), settled
        assert settled.regs.rip == window - 9 and settled.patch_length == 5
        assert task.read(settled.regs.rip, 5) == bytes.fromhex("488b4c2408")  # the load
