"""Diversion: a forked copy of the replay at the current moment that runs *live*, so the
debugger can call functions of the program (`print f(3)`) without touching the replay.

It starts when the debugger first writes registers or memory and ends when the debugger
puts the original registers back (as gdb does after an inferior call) or moves the replay;
the copy is then killed and the replay carries on exactly where it was.
"""

from __future__ import annotations

import signal

from rrgdb import native, syscallbuf
from rrgdb.kernel.breakpoints import Breakpoints
from rrgdb.kernel.cpuid import set_cpuid_faulting
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.task import Stop, StopKind, Task


class Diversion:
    """A live copy of the replayed process."""

    def __init__(self, task: Task, breakpoints: set[int]) -> None:
        self.task = task
        self.original_regs = task.regs().to_bytes()
        syscallbuf.disable(task)  # live: its syscalls run for real, not from the buffer
        set_cpuid_faulting(task, False)  # and its cpuid too, instead of faulting
        self.breakpoints = Breakpoints()
        for addr in breakpoints:
            self.breakpoints.insert(task, addr)

    def resume(self, step: bool) -> tuple[str, int]:
        """Runs the copy for real until it stops: ("breakpoint"|"step"|"signal"|"exited",
        signal number or wait status)."""
        task = self.task
        rip = task.regs().rip
        if rip in self.breakpoints.software:
            self.breakpoints.lift_one(task, rip)
            task.resume(native.PTRACE_SINGLESTEP)
            stop = task.wait()
            self.breakpoints.reinsert(task)
            if step or stop.kind is not StopKind.SIGNAL or stop.signo != signal.SIGTRAP:
                return self._describe(stop, step)
        task.resume(native.PTRACE_SINGLESTEP if step else native.PTRACE_CONT)
        return self._describe(task.wait(), step)

    def _describe(self, stop: Stop, step: bool) -> tuple[str, int]:
        if stop.finished:
            return "exited", stop.status
        if stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGTRAP:
            regs = self.task.regs()
            if regs.rip - 1 in self.breakpoints.software:
                regs.rip -= 1
                self.task.set_regs(regs)
                return "breakpoint", 0
            return ("step" if step else "signal"), signal.SIGTRAP
        return "signal", stop.signo

    def restores_original(self, regs: bytes) -> bool:
        """Whether writing regs puts the copy back where the replay is."""
        return not Registers.from_bytes(regs).differences(
            Registers.from_bytes(self.original_regs))

    def end(self) -> None:
        self.task.kill()
