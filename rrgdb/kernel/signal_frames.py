"""Signal frames: what the kernel writes on the stack when it runs a handler, and the parts
of it record and replay make identical.

An asynchronous signal's frame carries fields that describe the thread's last hardware
trap (trap number, error code, fault address). For such a signal they are leftovers
that differ between recording (where the last trap was, say, an rdtsc fault) and replay
(where rrgdb single-steps); they would make the memory of the two runs differ. So both
enter a caught asynchronous signal's handler with one single step and zero those fields.
"""

from __future__ import annotations

import signal

from rrgdb import native
from rrgdb.kernel.task import Stop, StopKind, Task

# At a handler's first instruction rsp points at the frame's return address, followed by
# the ucontext: uc_flags, uc_link, uc_stack (40 bytes), then the sigcontext.
SIGCONTEXT = 8 + 40
_ERR, _TRAPNO, _CR2 = SIGCONTEXT + 152, SIGCONTEXT + 160, SIGCONTEXT + 176
SIGMASK = SIGCONTEXT + 256  # uc_sigmask, after the 256-byte sigcontext


def enter_handler(task: Task, signo: int) -> Stop | None:
    """Delivers signo (which has a handler) and stops at the handler's first instruction
    with the frame's trap fields cleared. Returns None, or the unexpected stop that came
    instead (the process was killed meanwhile)."""
    task.resume(native.PTRACE_SINGLESTEP, signo)
    stop = task.wait()
    if stop.kind is not StopKind.SIGNAL or stop.signo != signal.SIGTRAP:
        return stop
    frame = task.regs().rsp
    for field in (_ERR, _TRAPNO, _CR2):
        task.write(frame + field, bytes(8))
    return None


def set_frame_sigmask(task: Task, mask: bytes) -> None:
    """At a handler's first instruction: the signal mask its return restores."""
    task.write(task.regs().rsp + SIGMASK, mask)
