"""record/preemption.py on a real traced process: where the recorder leaves a thread it
stops between syscalls, when the thread does not come back to its window soon."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PROGRAMS_DIR, compile_program
from elftools.elf.elffile import ELFFile

from rrgdb import native
from rrgdb.kernel.breakpoints import INT3
from rrgdb.kernel.task import StopKind, Task
from rrgdb.record.preemption import EFLAGS_RF, Running, Settled, settle


@pytest.fixture
def at_window(tmp_path: Path) -> Iterator[Task]:
    """tests/programs/distant_visits.c (static: no ld.so, whose rdtsc would fault under
    the spawn's PR_TSC_SIGSEGV), traced and stopped at its label `window`."""
    binary = tmp_path / "distant_visits"
    compile_program(PROGRAMS_DIR / "distant_visits.c", binary, "static", ())
    with binary.open("rb") as f:
        symbols = ELFFile(f).get_section_by_name(".symtab")
        window = symbols.get_symbol_by_name("window")[0].entry.st_value
    pid = native.spawn(str(binary), [str(binary).encode()], [], None, None, True, 2)
    task = Task(pid)
    try:
        assert task.wait().signo == signal.SIGSTOP
        native.ptrace(native.PTRACE_SETOPTIONS, pid, 0, native.PTRACE_O_EXITKILL)
        task.resume(native.PTRACE_CONT)
        assert task.wait().signo == signal.SIGTRAP  # its execve
        original = task.read(window, 1)
        task.write(window, INT3)
        task.resume(native.PTRACE_CONT)
        assert task.wait().signo == signal.SIGTRAP
        task.write(window, original)
        regs = task.regs()
        regs.rip = window
        task.set_regs(regs)
        yield task
    finally:
        task.kill()


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
