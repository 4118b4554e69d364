"""Where the recorder leaves a thread it preempts: a place replay can find again fast.

A preempted thread's moment is recorded by its state, and replay finds it as the first
visit of its pc with that state. Replay does so at the program's speed when the
instructions at pc can be replaced by a jump to a register-comparing stub
(kernel/visit_search.py), which takes whole instructions of at least 5 bytes; several
instructions only if nothing jumps between them. So before recording the moment, the
recorder single-steps the thread a little further, to such a window: one long instruction
at once; several once the steps have gone round a loop (so that its jumps are known) and
no jump seen lands inside them. It steps only within the code mapping it started in
(calls included), and never over an instruction that must not be single-stepped; if no
window comes within SETTLE_STEPS, the moment is recorded where the thread stands and
replay stops at every visit instead (slow, exact, and enough where the thread is not in
a long loop)."""

from __future__ import annotations

import signal

from rrgdb import native
from rrgdb.kernel.address_space import read_maps
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.remote_syscalls import resume_keeping_sigtrap
from rrgdb.kernel.task import Stop, StopKind, Task
from rrgdb.kernel.visit_search import (
    JUMP_BYTES,
    MAX_INSTRUCTION,
    Instruction,
    Window,
    decode,
    steppable,
    window_at,
)

SETTLE_STEPS = 400


def settle(task: Task, regs: Registers) -> tuple[Registers, int] | Stop:
    """Steps the stopped task to where its moment is best recorded: returns its registers
    there and the length of the window replay may patch (0: none), or the stop that came
    instead of a single step's (a fault, a signal), which the caller handles as usual."""
    mapping = next((m for m in read_maps(task.tid) if m.start <= regs.rip < m.end), None)
    decoded: dict[int, tuple[Window | None, Instruction | None]] = {}  # a loop comes back
    landed: set[int] = set()  # reached other than by falling through, or a seen jump's target
    looped = False
    for _ in range(SETTLE_STEPS):
        pc = regs.rip
        revisit = pc in decoded
        if not revisit:
            code = task.read(pc, JUMP_BYTES + MAX_INSTRUCTION)
            decoded[pc] = (window_at(code, pc), decode(code, pc))
        window, insn = decoded[pc]
        if window is not None and (len(window.instructions) == 1
                                   or (looped and not landed & window.interior)):
            return regs, window.length
        if (insn is None or not steppable(insn) or mapping is None
                or not mapping.start <= pc < mapping.end):
            break
        if insn.target is not None:
            landed.add(insn.target)
        looped |= revisit
        stop = resume_keeping_sigtrap(task, native.PTRACE_SINGLESTEP)
        if not (stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGTRAP):
            return stop
        regs = task.regs()
        if regs.rip != insn.end:
            landed.add(regs.rip)
    return regs, 0
