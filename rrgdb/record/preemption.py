"""Where the recorder leaves a thread it preempts: a place replay can find again fast.

A preempted thread's moment is recorded by its state, and replay finds it as the first
visit of its pc with that state. Replay does so at the program's speed when the
instructions at pc can be replaced by a jump to a register-comparing stub
(kernel/visit_search.py), which takes whole instructions of at least 5 bytes; several
instructions only if nothing jumps between them. So before recording the moment, the
recorder single-steps the thread a little further, to such a window: one long instruction
at once; several once the steps have gone round a loop (so that its jumps are known) and
no jump seen lands inside them. It steps through the program's code (calls included, but
not into the syscall buffer's library), never over an instruction that must not be
single-stepped, and runs a rep string instruction to its end at once (a single step runs
one iteration, and a moment part-way through one is never visited in replay); if no
window comes within SETTLE_STEPS, the moment is recorded where the thread stands and
replay stops at every visit instead (slow, exact, and enough where the thread is not in
a long loop)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from contextlib import suppress

from rrgdb import native, syscallbuf
from rrgdb.kernel.address_space import PROT_EXEC, read_maps
from rrgdb.kernel.breakpoints import INT3
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.remote_syscalls import SCRATCH_ADDR, resume_keeping_sigtrap
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
    code_at = _program_code(task)
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
        if insn is not None and insn.repeats:
            # Perhaps stopped part-way through it: a moment replay never sees, since a
            # visit is the start of an instruction. It is run to its end first.
            ran = _run_to(task, insn.end)
            if isinstance(ran, Stop):
                return ran
            regs = ran
            continue
        if window is not None and (len(window.instructions) == 1
                                   or (looped and not landed & window.interior)):
            return regs, window.length
        if insn is None or not steppable(insn) or not code_at(pc):
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


def _program_code(task: Task) -> Callable[[int], bool]:
    """Whether an address is in code the steps may run: the program's executable
    mappings, not the syscall buffer's library nor rrgdb's scratch page (a window there
    could be inside a buffered call, where no event can be placed)."""
    library = syscallbuf.preload_library().name
    ranges = [(m.start, m.end) for m in read_maps(task.tid)
              if m.prot & PROT_EXEC and m.start != SCRATCH_ADDR
              and os.path.basename(m.path) != library]
    return lambda pc: any(start <= pc < end for start, end in ranges)


def _run_to(task: Task, address: int) -> Registers | Stop:
    """Runs the task to address (the end of the instruction it stands on) under a
    temporary int3; its registers there, or the stop that came first."""
    original = task.read(address, 1)
    if len(original) != 1:
        return task.regs()  # nothing mapped after it: left as it is
    task.write(address, INT3)
    try:
        stop = resume_keeping_sigtrap(task, native.PTRACE_CONT)
    finally:
        with suppress(OSError):  # (gone: killed meanwhile)
            task.write(address, original)
    if not (stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGTRAP):
        return stop
    regs = task.regs()
    if regs.rip != address + 1:
        return stop
    regs.rip = address
    task.set_regs(regs)
    return regs
