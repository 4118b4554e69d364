"""Where the recorder leaves a thread it preempts: a place replay can find again fast.

A preempted thread's moment is recorded by its state, and replay finds it as the first
visit of its pc with that state. Replay does so at the program's speed when the
instructions at pc can be replaced by a jump to a register-comparing stub
(kernel/visit_search.py), which takes whole instructions of at least 5 bytes; several
instructions only if nothing jumps between them. So before recording the moment, the
recorder single-steps the thread a little further, to such a window: one long instruction
at once; several once the steps have gone round a loop (so that its jumps are known) and
no jump seen lands inside them. A window where the status flags are live (replay's stub
then saves and restores them at every visit) is passed over while a better one is sure
to come (_better_window_ahead). It steps through the program's code (calls included, but
not into the syscall buffer's library), never over an instruction that must not be
single-stepped, and runs a rep string instruction to its end at once (a single step runs
one iteration, and a moment part-way through one is never visited in replay); if no
window comes within SETTLE_STEPS, the moment is recorded where the thread stands and
replay stops at every visit instead (slow, exact, and enough where the thread is not in
a long loop).

A loop that keeps its state in memory comes back to its window with the same registers
at every turn or every few (a Python loop: its counter is an int object on the heap),
and the stack words tell only some turns apart, so replay's stub would trap at many
turns, where only the memory hash tells the moment from the others (one Python loop
with a timer signal did not replay in 5 minutes). So the recorder watches the thread
make more turns (probe): it runs it on to the next visits of the window (a hardware
breakpoint, for this thread only), up to PROBE_VISITS of them, until the registers come
back. Then it hashes the memory's pages at that visit and one period of visits later,
reads the pages that changed, and one more period later records the words of those
pages that changed again, with their values there (the loop's counter): the stub
compares them too (PreemptFrame.watched). Registers that do not come back so soon may
still come back later (an inner loop's count in a register, an outer one's in memory),
so the periods are then PROBE_RUN of running, each ended at the window's next visit. A
thread that does not come back to its window soon (PROBE_TIMEOUT) is stopped where it is
(SIGSTOP) and settled again without a probe."""

from __future__ import annotations

import os
import signal
import struct
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace

from rrgdb import native, syscallbuf
from rrgdb.kernel.address_space import PROT_EXEC, page_hashes, read_maps
from rrgdb.kernel.breakpoints import DR6, DR7, INT3
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.remote_syscalls import (
    SCRATCH_ADDR,
    SIGTRAP_BIT,
    reblock_sigtrap,
)
from rrgdb.kernel.task import Stop, StopKind, Task
from rrgdb.kernel.visit_search import (
    JUMP_BYTES,
    MAX_INSTRUCTION,
    MAX_WATCHED,
    PAGE,
    REGISTER_NAMES,
    Instruction,
    Window,
    decode,
    fixed_code,
    flags_dead,
    steppable,
    window_at,
)

SETTLE_STEPS = 400
PROBE_TIMEOUT = 0.02  # seconds the thread may take to come back to its window
PROBE_VISITS = 8  # the visits after the first in which its registers may come back
PROBE_RUN = 0.001  # else: seconds it runs between the visits whose memory is compared
PROBE_PAGES = 64  # the changed pages whose words are compared, at most
FLAG_FREE_AHEAD = 16  # instructions the steps may go on to a window where flags are dead
_DR7_EXECUTE_DR0 = 1  # DR0 enabled for this thread, as an instruction breakpoint
EFLAGS_RF = 0x10000  # the resume flag
EFLAGS_TF = 0x100  # the trap flag
_POPF = frozenset({"popf", "popfq", "popfd"})


@dataclass(frozen=True, slots=True)
class Settled:
    """Where settle() left the thread: its registers, the length of the window replay
    may patch there (0: none), and the memory words that tell this visit of it from the
    others ((address, value) u64 pairs; PreemptFrame.watched)."""

    regs: Registers
    patch_length: int
    watched: bytes = b""


@dataclass(frozen=True, slots=True)
class Running:
    """How the recorder lets a thread run: the ptrace request that runs its user code
    while every syscall still stops it (PTRACE_CONT under the syscall buffer's seccomp
    filter, else PTRACE_SYSCALL: a syscall run unseen would be missing from the trace),
    and which signal stops it drops (a standard signal that fires again while the
    recorder holds it parked: the kernel would have kept it pending once); before_stop
    is called before rrgdb's SIGSTOP is sent to it (which discards a pending SIGCONT)."""

    request: int
    drops: Callable[[Stop], bool]
    before_stop: Callable[[], object] = lambda: None

    def next_stop(self, task: Task, request: int, timeout: float | None = None) -> Stop | None:
        """Resumes the task with request: its next stop but the signals dropped (resumed
        past with request again); None if none comes within timeout seconds. A trap's
        SIGTRAP, which the kernel unblocks, is blocked again where the program blocked
        it (remote_syscalls.resume_keeping_sigtrap)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        blocked = native.get_sigmask(task.tid) & SIGTRAP_BIT
        while True:
            task.resume(request)
            stop = (task.wait() if deadline is None
                    else _wait_for(task, deadline - time.monotonic()))
            if stop is None or not self.drops(stop):
                break
        if blocked and stop is not None and stop.kind is StopKind.SIGNAL and (
                stop.signo == signal.SIGTRAP):
            reblock_sigtrap(task)
        return stop


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The stop that came instead of the ones settle() waited for, which the caller
    handles as usual; ours: it is rrgdb's SIGSTOP, or that SIGSTOP is still to come."""

    stop: Stop
    ours: bool = False


def settle(task: Task, regs: Registers, run: Running,
           probe: bool = True) -> Settled | Interrupted:
    """Steps the stopped task to where its moment is best recorded and watches its next
    turns for the words that change (probe); it runs as run says."""
    stepped = _step_to_window(task, regs, run)
    if isinstance(stepped, Interrupted) or not (probe and stepped.patch_length):
        return stepped
    return _probe(task, stepped, run)


def _step_to_window(task: Task, regs: Registers, run: Running) -> Settled | Interrupted:
    """Steps the stopped task to a window: its registers there and the window's length
    (0: none found), or the stop that came instead of a single step's (a fault, a
    signal). The trap flag that single steps after a popf leave set is cleared
    (_clear_stepping_trap_flag)."""
    popped: list[bool] = []  # after each popf stepped: the trap flag it loaded
    result = _steps_to_window(task, regs, run, popped)
    if popped and not popped[-1] and task.alive:
        regs = _clear_stepping_trap_flag(task)
        if isinstance(result, Settled) and regs is not None:
            result = replace(result, regs=regs)
    return result


def _clear_stepping_trap_flag(task: Task) -> Registers | None:
    """Clears the trap flag in a task single-stepped over a popf that loaded it clear;
    its registers then (None: it was clear). The kernel takes the trap flag of a single
    step over popf for the program's own (the instruction sets the flags), and sets it
    again at every later step while the task single-steps, still taken for the program's:
    a resume no longer clears it, and the program died of SIGTRAP after its next
    instruction (node's worker threads: V8 computes a double modulo in an fprem loop that
    moved the FPU status into the flags with push and popf here)."""
    regs = task.regs()
    if not regs.eflags & EFLAGS_TF:
        return None
    regs.eflags &= ~EFLAGS_TF
    task.set_regs(regs)
    return regs


def _steps_to_window(task: Task, regs: Registers, run: Running,
                     popped: list[bool]) -> Settled | Interrupted:
    code_at = _program_code(task)
    fixed = fixed_code(task)

    def program_code(pc: int) -> bytes | None:
        return fixed(pc) if code_at(pc) else None

    decoded: dict[int, tuple[Window | None, Instruction | None]] = {}  # a loop comes back
    landed: set[int] = set()  # reached other than by falling through, or a seen jump's target
    looped = False
    for step in range(SETTLE_STEPS):
        pc = regs.rip
        revisit = pc in decoded
        if not revisit:
            code = task.read(pc, JUMP_BYTES + MAX_INSTRUCTION)
            decoded[pc] = (window_at(code, pc), decode(code, pc))
        window, insn = decoded[pc]
        if insn is not None and insn.repeats:
            # Perhaps stopped part-way through it: a moment replay never sees, since a
            # visit is the start of an instruction. It is run to its end first.
            ran = _run_to(task, insn.end, run)
            if isinstance(ran, Stop):
                return Interrupted(ran)
            regs = ran
            continue
        if window is not None and (len(window.instructions) == 1
                                   or (looped and not landed & window.interior)) and (
                looped or revisit or step >= SETTLE_STEPS // 2
                or flags_dead(program_code, pc)
                or not _better_window_ahead(program_code, window.instructions[0])):
            return Settled(regs, window.length)
        if insn is None or not steppable(insn) or not code_at(pc):
            break
        if insn.target is not None:
            landed.add(insn.target)
        looped |= revisit
        stop = run.next_stop(task, native.PTRACE_SINGLESTEP)
        assert stop is not None
        if not (stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGTRAP):
            return Interrupted(stop)
        regs = task.regs()
        if insn.mnemonic in _POPF:
            popped.append(bool(regs.eflags & EFLAGS_TF))
        if regs.rip != insn.end:
            landed.add(regs.rip)
    return Settled(regs, 0)


def _better_window_ahead(code_at: Callable[[int], bytes | None],
                         first: Instruction) -> bool:
    """Whether the steps may go on from first (the first instruction of a window where
    the status flags are live: replay's stub must save and restore them at every visit,
    2-3x slower in a tight loop) to look for a window where they are dead: some path on
    from it comes to one within FLAG_FREE_AHEAD instructions, and every path comes to a
    window (the steps take it, if they find nothing better on from there) before an
    instruction the steps may not run or the analysis does not follow (a call, a return,
    an indirect jump)."""
    paths = [(pc, False) for pc in _successors(first)]  # (pc, a window passed on the way)
    seen: set[int] = set()
    dead: set[int] = set()  # the windows found where the flags are dead
    while paths:
        pc, passed = paths.pop()
        if pc in dead:
            continue  # (two paths join there)
        code = code_at(pc) if pc not in seen and len(seen) < FLAG_FREE_AHEAD else None
        insn = decode(code, pc) if code is not None else None
        if code is not None:
            seen.add(pc)
            window = window_at(code, pc)
            if window is not None and len(window.instructions) == 1:
                if flags_dead(code_at, pc):
                    dead.add(pc)
                    continue
                passed = True
        following = _successors(insn) if insn is not None and steppable(insn) and not (
            insn.repeats or insn.mnemonic == "call") else []
        if not following and not passed:
            return False
        if not passed or not dead:  # (once one is found, passing windows is enough)
            paths += [(next_pc, passed) for next_pc in following]
    return bool(dead)


def _successors(insn: Instruction) -> list[int]:
    """Where insn may go on to (none known: a return, an indirect jump)."""
    if not insn.jumps:
        return [insn.end]
    if insn.target is None:
        return []
    return [insn.target] if insn.mnemonic == "jmp" else [insn.target, insn.end]


def _probe(task: Task, settled: Settled, run: Running) -> Settled | Interrupted:
    """Runs the task over its next visits of the window it settled at: the visit it
    stops at two periods on, with the memory words that changed during the last period
    (the module's docstring). The resume flag the visits leave set is cleared: it is not
    the program's (a signal frame would keep it in its saved flags, and replay, where no
    breakpoint set it, would not have it)."""
    probed = _watch_turns(task, settled, run)
    if task.alive:
        regs = task.regs()
        if regs.eflags & EFLAGS_RF:
            regs.eflags &= ~EFLAGS_RF
            task.set_regs(regs)
            if isinstance(probed, Settled):
                probed = replace(probed, regs=regs)
    return probed


def _watch_turns(task: Task, settled: Settled, run: Running) -> Settled | Interrupted:
    regs = settled.regs
    seen = [_stub_registers(regs)]
    period = 0  # visits after which the registers came back; 0: not within PROBE_VISITS
    for _ in range(PROBE_VISITS):
        visit = _next_visit(task, regs, run)
        if not isinstance(visit, Registers):
            return visit
        regs = visit
        if _stub_registers(regs) in seen:
            period = len(seen) - seen.index(_stub_registers(regs))
            break
        seen.append(_stub_registers(regs))

    def later(regs: Registers) -> Registers | Settled | Interrupted:
        """A visit at which the loop is a period on (a turn of an outer loop, whose
        count may be in memory while an inner one's is in the registers, is taken to
        last less than PROBE_RUN)."""
        if period:
            return _next_visit(task, regs, run, period)
        return _visit_after_a_while(task, regs, run)

    before = page_hashes(task)
    visit = later(regs)
    if not isinstance(visit, Registers):  # settled elsewhere, or interrupted
        return visit
    after = page_hashes(task)
    changed = sorted(a for a, h in after.items() if before.get(a) != h)[:PROBE_PAGES]
    pages = {a: task.read(a, PAGE) for a in changed}
    visit = later(visit)
    if not isinstance(visit, Registers):  # settled elsewhere, or interrupted
        return visit
    return Settled(visit, settled.patch_length,
                   _changed_words(task, visit, settled.patch_length, pages))


def _stub_registers(regs: Registers) -> tuple[int, ...]:
    """The registers replay's stub compares first."""
    return tuple(getattr(regs, name) for name in REGISTER_NAMES)


def _changed_words(task: Task, regs: Registers, patch_length: int,
                   pages: dict[int, bytes]) -> bytes:
    """(address, value now) of the words of pages that differ from their contents
    there, but those of the window at regs.rip (code that rewrites itself: replay's
    jump is there meanwhile); at most MAX_WATCHED. Stack words among them are compared
    again with the others, but first (a counter in a local variable: the stub compared
    every register and then every stack word below it at each turn, 30x native)."""
    window = range(regs.rip - 7, regs.rip + patch_length)
    watched = bytearray()
    for address, then in pages.items():
        now = task.read(address, PAGE)
        if len(now) != PAGE or len(then) != PAGE:
            continue
        for offset in range(0, PAGE, 64):  # 64-byte pieces first: most are equal
            if now[offset:offset + 64] == then[offset:offset + 64]:
                continue
            for word in range(offset, offset + 64, 8):
                value = now[word:word + 8]
                if value != then[word:word + 8] and address + word not in window:
                    watched += struct.pack("<Q", address + word) + value
                    if len(watched) == 16 * MAX_WATCHED:
                        return bytes(watched)
    return bytes(watched)


def _next_visit(task: Task, regs: Registers, run: Running,
                count: int = 1) -> Registers | Settled | Interrupted:
    """Runs the task, which stands at a visit of pc with regs, to its count-th visit of
    pc from here; its registers there (or what _run_to_visit gave instead)."""
    for _ in range(count):
        visit = _run_to_visit(task, regs.rip, regs, run)
        if not isinstance(visit, Registers):
            return visit
        regs = visit
    return regs


def _visit_after_a_while(task: Task, regs: Registers,
                         run: Running) -> Registers | Settled | Interrupted:
    """Lets the task, which stands at a visit of pc (regs.rip), run for PROBE_RUN, stops
    it (SIGSTOP) and runs it to its next visit of pc; its registers there."""
    stopped = run.next_stop(task, run.request, PROBE_RUN)
    if stopped is not None:
        return Interrupted(stopped)
    stop = _stop_now(task, run)
    if not (stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGSTOP) or (
            syscallbuf.in_call(task)):
        return Interrupted(stop, ours=True)  # (in a call: the caller's case for it)
    return _run_to_visit(task, regs.rip, task.regs(), run)


def _run_to_visit(task: Task, pc: int, regs: Registers,
                  run: Running) -> Registers | Settled | Interrupted:
    """Runs the task, which stands at regs.rip, to its next visit of pc (a hardware
    instruction breakpoint, which the resume flag makes the first instruction pass);
    its registers there. If it takes more than PROBE_TIMEOUT it is stopped (SIGSTOP) and
    settled again, without a probe, from where it is; another stop that comes first is
    returned."""
    if not regs.eflags & EFLAGS_RF:  # (after a breakpoint's trap the kernel set it)
        regs.eflags |= EFLAGS_RF
        task.set_regs(regs)
    task.set_debugreg(DR6, 0)
    task.set_debugreg(0, pc)
    task.set_debugreg(DR7, _DR7_EXECUTE_DR0)
    try:
        stopped = run.next_stop(task, run.request, PROBE_TIMEOUT)
        stop = stopped if stopped is not None else _stop_now(task, run)
    finally:
        if task.alive:
            task.set_debugreg(DR7, 0)
    hit = (stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGTRAP
           and task.get_debugreg(DR6) & 1)
    if hit:
        task.set_debugreg(DR6, 0)
    if stopped is None:  # rrgdb's SIGSTOP is on its way, or was the stop
        return _after_sigstop(task, stop, hit, run)
    if not hit:
        return Interrupted(stop)
    return task.regs()


def _wait_for(task: Task, timeout: float) -> Stop | None:
    """The task's next stop, None if it does not come within timeout seconds."""
    deadline = time.monotonic() + timeout
    pause = 0.00002
    while True:
        pid, status = native.waitpid(task.tid, native.WALL | native.WNOHANG)
        if pid:
            stop = Stop.decode(status)
            if stop.finished:
                task.alive = False
            return stop
        if time.monotonic() > deadline:
            return None
        time.sleep(pause)
        pause = min(2 * pause, 0.001)


def _stop_now(task: Task, run: Running) -> Stop:
    """Sends the running task rrgdb's SIGSTOP; its next stop but the signals dropped
    (that one, or another that came first)."""
    run.before_stop()
    native.tgkill(task.tgid, task.tid, signal.SIGSTOP)
    stop = task.wait()
    if run.drops(stop):
        stop = run.next_stop(task, run.request)  # (which drops any later ones)
        assert stop is not None
    return stop


def _after_sigstop(task: Task, stop: Stop, hit: bool, run: Running) -> Settled | Interrupted:
    """The task was sent rrgdb's SIGSTOP (the probe took too long) and stopped: for that
    SIGSTOP, it is settled again from where it stands, without a probe; at the window
    (the SIGSTOP is still pending), it is let take the SIGSTOP first; any other stop goes
    to the caller, the SIGSTOP to come being rrgdb's."""
    if hit:
        stop = run.next_stop(task, run.request)  # the pending SIGSTOP stops it before it runs
        assert stop is not None
    if not (stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGSTOP):
        return Interrupted(stop, ours=True)
    if syscallbuf.in_call(task):
        return Interrupted(stop, ours=True)  # the caller's case for a stop in a call
    return _step_to_window(task, task.regs(), run)


def _program_code(task: Task) -> Callable[[int], bool]:
    """Whether an address is in code the steps may run: the program's executable
    mappings, not the syscall buffer's library nor rrgdb's scratch page (a window there
    could be inside a buffered call, where no event can be placed)."""
    library = syscallbuf.preload_library().name
    ranges = [(m.start, m.end) for m in read_maps(task.tid)
              if m.prot & PROT_EXEC and m.start != SCRATCH_ADDR
              and os.path.basename(m.path) != library]
    return lambda pc: any(start <= pc < end for start, end in ranges)


def _run_to(task: Task, address: int, run: Running) -> Registers | Stop:
    """Runs the task to address (the end of the instruction it stands on) under a
    temporary int3; its registers there, or the stop that came first."""
    original = task.read(address, 1)
    if len(original) != 1:
        return task.regs()  # nothing mapped after it: left as it is
    task.write(address, INT3)
    try:
        stop = run.next_stop(task, run.request)
        assert stop is not None
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
