"""ReplayTimeline: a replay that can move backwards.

It owns one live ReplaySession plus forked checkpoints of it (copy-on-write snapshots
taken between events), and implements forward and reverse continue and single-step on
top of them. Positions are Marks: the number of events applied plus the full registers
and a fingerprint of the stack, which identify a moment without a PMU (DESIGN.md §6).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rrgdb import syscallbuf
from rrgdb.kernel.address_space import MapsEntry, read_maps
from rrgdb.kernel.breakpoints import Watchpoint
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.task import Task
from rrgdb.replay.processes import check_goto_event
from rrgdb.replay.session import (
    Echo,
    Interruption,
    ReplaySession,
    ReplayState,
    Trap,
    write_to_fd,
)
from rrgdb.timeline.predecessors import (
    SWEEP_BYTES,
    call_site,
    function_entry,
    preceding_instructions,
    returned_from,
    returns_in,
    stub_call_site,
    syscall_site,
)
from rrgdb.trace import FlushFrame, SyscallEntryFrame, SyscallFrame

CHECKPOINT_EVERY_SECONDS = 0.25  # of forward replay
CHECKPOINT_EVERY_EVENTS = 2000
MAX_CHECKPOINTS = 24
STACK_FINGERPRINT = (128, 2048)  # bytes below and above rsp
WINDOW_BACK_HITS = 16  # a reverse-stepi window starts this many anchor hits early...
WINDOW_STEP_BUDGET = 512  # ...unless that makes it longer than this many steps
COPY_EVERY_HITS = 1024  # of a window's counting replay: where the stepping run resumes


@dataclass(frozen=True, slots=True)
class Mark:
    """A moment of the replay. `at_end` marks the stop just before the recorded exit,
    `entry` a thread standing at a syscall's entry (a catch syscall stop: mid-event)."""

    applied: int
    identity: bytes
    at_end: bool = False
    tid: int = 0  # the thread the moment belongs to (0: the main thread)
    entry: bool = False

    @property
    def pc(self) -> int:
        return int.from_bytes(self.identity[16 * 8:17 * 8], "little")


@dataclass
class Checkpoint:
    """A stopped, forked copy of the tracee at an event boundary, with its replay state."""

    task: Task
    state: ReplayState
    mark: Mark
    user_id: int = 0  # nonzero for checkpoints the user asked for (monitor checkpoint)
    boundary: bool = True  # taken at an event boundary (user checkpoints may be mid-event)
    replay_to: int = 0  # >0: the copy is from earlier; resuming replays up to this event


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a timeline operation ended."""

    kind: str  # breakpoint | watchpoint | step | end | exited | begin | interrupted | signal
    # | exec | syscall-entry | syscall-return
    watch: Watchpoint | None = None
    status: int = 0  # raw wait status for "exited"; the signal number for "signal"
    tid: int = 0  # the recorded tid of the thread that stopped (0: the main thread)
    in_place: bool = False  # reported where it stood: nothing moved


@dataclass
class _Window:
    """A cached stretch of single steps used by repeated reverse-stepi."""

    checkpoint: Checkpoint
    start_hits: int  # hits of the anchors before the first step (0: from the boundary)
    anchors: frozenset[int]  # where the stepping may start (the last hit before the end)
    states: list[bytes] = field(default_factory=list)  # identities after 0..n steps
    tid: int = 0  # the thread stepped
    boundary: int = 0  # the event boundary the window starts from (after checkpoint)
    owned: bool = True  # the checkpoint is the window's own (not a timeline checkpoint)


class ReplayTimeline:
    """Forward and reverse execution over a replay, with checkpoints."""

    def __init__(self, trace_dir: Path, echo: Echo | None = write_to_fd) -> None:
        self.session = ReplaySession(trace_dir, echo)
        self.checkpoints: list[Checkpoint] = []
        self.user_checkpoints: dict[int, Checkpoint] = {}
        self.user_breakpoints: set[int] = set()
        self._last_checkpoint_time = 0.0
        self._next_user_id = 1
        self._at_end = False
        self._window: _Window | None = None
        self.current_tid = 0  # the thread of the last stop (0: the main thread)
        self._moment_tid = 0  # the thread whose stop the present is (see mark())
        # threads reported standing on a breakpoint without moving, and where (see
        # _waiting_on_breakpoint)
        self._reported_in_place: tuple[Mark | None, set[int]] = (None, set())
        self._stop_order: list[int] = []  # threads by their last reported stop, oldest first
        self.progress: Callable[[str], None] | None = None  # e.g. gdb's console
        self._progress_at = 0.0
        self._op_started = 0.0  # when the running reverse operation began
        # syscall numbers that stop continues both ways (gdb's catch syscall; None: none)
        self._catch_syscalls: Callable[[int], bool] | None = None
        # buffered calls whose stubs trap whatever is caught (see catch_syscalls)
        self._stub_calls: set[int] = set()

    # -- lifecycle --------------------------------------------------------------------
    def start(self, follow: int = 0, at_fork: bool = False) -> None:
        """Starts the replay, following the first process or recorded process `follow`
        (from its fork or its first exec: see ReplaySession.follow)."""
        session = self.session
        if follow:
            session.follow(follow, at_fork)
        session.start()
        if session.task is not None:
            self._add_checkpoint()
            return
        # A later process: its start is reached by replaying from the first one's start,
        # unless a copy can be forked there (the followed process alone).
        origin, state = session.snapshot(), session.state()
        while session.task is None:
            session.advance()
        if session.can_snapshot:
            origin.kill()
            self._add_checkpoint()
        else:
            self.checkpoints.append(Checkpoint(origin, state, self.mark(),
                                               replay_to=session.applied))
            self._last_checkpoint_time = time.monotonic()

    def close(self) -> None:
        self.session.close()
        for cp in self.checkpoints + list(self.user_checkpoints.values()):
            cp.task.kill()
        if self._window is not None and self._window.owned:
            self._window.checkpoint.task.kill()
        self.checkpoints.clear()
        self.user_checkpoints.clear()

    @property
    def interrupt_requested(self) -> threading.Event:
        """Set by interrupt(); operations check it between events."""
        return self.session.interrupt_requested

    def interrupt(self) -> None:
        """Thread-safe: make the running operation (or the next one) stop soon."""
        self.session.interrupt()

    @property
    def task(self) -> Task:
        assert self.session.task is not None
        return self.session.task

    @property
    def finished(self) -> bool:
        return self.session.finished

    @property
    def catch_syscalls(self) -> Callable[[int], bool] | None:
        return self._catch_syscalls

    @catch_syscalls.setter
    def catch_syscalls(self, catch: Callable[[int], bool] | None) -> None:
        """The buffered calls of those numbers stop too, whatever the operation (their
        stops are part of the path single steps and seeks follow). So do, from then on,
        those of the buffered call the present stands in, if it does (stopped at its
        catch, which is being deleted): the searches that find the present again, and
        moments inside the call, need its stops (they are not reported)."""
        self._catch_syscalls = catch
        task = self.session.task
        if task is not None and task.alive and _in_stub(self.mark()):
            self._stub_calls.add(syscallbuf.current_call(self._thread(self._moment_tid))[0])
        kept = frozenset(self._stub_calls)
        self.session.catch_buffered_calls(
            catch if not kept else lambda number: number in kept or (
                catch is not None and catch(number)))

    # -- positions --------------------------------------------------------------------
    def mark(self) -> Mark:
        """The current moment, told by the thread that stopped last by moving (a thread
        reported in place, where it stood, does not tell it: it did not get there in this
        stretch of events)."""
        return Mark(self.session.applied, self._identity(self._moment_tid), self._at_end,
                    self._moment_tid, self._at_syscall_entry(self._moment_tid))

    def _at_syscall_entry(self, tid: int) -> bool:
        """Whether thread tid stands at the entry of a syscall (its next event)."""
        session = self.session
        tid = tid or session.main_tid
        if not session.is_arrived(tid):
            return False
        frames = session.frames
        own = next((f for f in itertools.islice(frames, session.applied, None)
                    if f.tid == tid), None)
        return isinstance(own, SyscallFrame | SyscallEntryFrame)

    def _thread(self, tid: int) -> Task:
        return dict(self.session.followed_tasks()).get(tid, self.task)

    def _identity(self, tid: int = 0) -> bytes:
        """The stopped thread's registers, and a digest of its stack and of the other
        threads' registers."""
        task = self._thread(tid)
        regs = task.regs().comparable()
        below, above = STACK_FINGERPRINT
        stack = task.read(regs.rsp - below, below + above)
        others = b"".join(t.regs().to_bytes() for _, t in self.session.followed_tasks()
                          if t is not task)  # the other threads' positions too
        digest = hashlib.blake2b(stack + others, digest_size=16).digest()
        return regs.to_bytes() + digest

    def _at(self, mark: Mark) -> bool:
        return (self.session.applied == mark.applied
                and self.session.is_arrived(mark.tid) == mark.entry
                and self._identity(mark.tid) == mark.identity)

    # -- breakpoints ------------------------------------------------------------------
    def add_breakpoint(self, addr: int) -> None:
        """Arms a breakpoint; where nothing is mapped now it is pending, written once code
        is mapped there. gdb keeps the breakpoints of a library it has seen loaded (its
        internal ones too: `next` sets one on longjmp), and reverse execution goes back
        to before the library was mapped (libc, at the start of the recording)."""
        self.session.breakpoints.insert(self.task, addr)
        self.user_breakpoints.add(addr)

    def remove_breakpoint(self, addr: int) -> None:
        self.user_breakpoints.discard(addr)
        self.session.breakpoints.remove(self.task, addr)

    @property
    def watchpoints(self) -> list[Watchpoint]:
        return self.session.breakpoints.watches

    def add_watchpoint(self, watch: Watchpoint) -> None:
        self.session.breakpoints.add_watch(self.task, watch)
        self._debug_registers_everywhere()

    def remove_watchpoint(self, watch: Watchpoint) -> None:
        self.session.breakpoints.remove_watch(self.task, watch)
        self._debug_registers_everywhere()

    def _debug_registers_everywhere(self) -> None:
        """Debug registers are per thread: every thread of the process gets them."""
        for _, task in self.session.followed_tasks():
            if task is not self.task:
                self.session.breakpoints.apply_debug_registers(task)

    def _set_internal(self, addrs: set[int], user: bool) -> None:
        """Arms exactly `addrs` (plus the user's breakpoints if `user`) as int3s."""
        bps = self.session.breakpoints
        wanted = set(addrs) | (self.user_breakpoints if user else set())
        # none inside the syscall buffer's stubs, which catches rewrite: a moment there is
        # reached from a stop (_in_stub)
        wanted -= syscallbuf.STUB_INSIDES
        for addr in [*bps.software, *bps.pending]:
            if addr not in wanted:
                bps.remove(self.task, addr)
        for addr in wanted:
            bps.insert(self.task, addr)

    def _restore_user_breakpoints(self) -> None:
        self._set_internal(set(), user=True)

    # -- checkpoints ------------------------------------------------------------------
    def _add_checkpoint(self) -> Checkpoint:
        session = self.session
        cp = Checkpoint(session.snapshot(), session.state(), self.mark())
        self.checkpoints.append(cp)
        self.checkpoints.sort(key=lambda c: c.mark.applied)
        self._last_checkpoint_time = time.monotonic()
        if len(self.checkpoints) > MAX_CHECKPOINTS:
            # thin the older half: keep the start, drop every other one
            older = self.checkpoints[1: len(self.checkpoints) // 2]
            for victim in older[::2]:
                victim.task.kill()
                self.checkpoints.remove(victim)
        return cp

    def _maybe_checkpoint(self) -> None:
        if not self.session.can_snapshot:
            return
        newest = self.checkpoints[-1].mark.applied if self.checkpoints else -1
        if self.session.applied <= newest:
            return
        if (time.monotonic() - self._last_checkpoint_time > CHECKPOINT_EVERY_SECONDS
                or self.session.applied - newest >= CHECKPOINT_EVERY_EVENTS):
            self._add_checkpoint()

    def user_checkpoint(self) -> int:
        """`monitor checkpoint`: a checkpoint at the current moment; returns its id."""
        if not self.session.can_snapshot:
            raise ValueError("cannot checkpoint here (mid-event, or several processes live)")
        cp = Checkpoint(self.session.snapshot(), self.session.state(), self.mark(),
                        self._next_user_id, boundary=False)
        self.user_checkpoints[cp.user_id] = cp
        self._next_user_id += 1
        return cp.user_id

    def delete_user_checkpoint(self, user_id: int) -> bool:
        cp = self.user_checkpoints.pop(user_id, None)
        if cp is None:
            return False
        cp.task.kill()
        return True

    def restart_at(self, user_id: int | None) -> None:
        """Goes to a user checkpoint, or to the start of the replay."""
        cp = self.user_checkpoints[user_id] if user_id else self.checkpoints[0]
        self._resume_from(cp)

    def goto_event(self, event: int) -> Outcome:
        """Goes to event `event` (rr's `run N`, `replay -g N`): the moment `when` tells
        it, with the events before it applied; a syscall of the debugged process stops
        its thread on the syscall instruction, about to make it. Ends at the exit if the
        process ends first. Raises ValueError for an event the debugger cannot reach."""
        session = self.session
        check_goto_event(event, self.checkpoints[0].mark.applied, len(session.frames))
        if session.finished or self._at_end or session.applied >= event:
            self._resume_from(self._checkpoint_before(Mark(event, b"")) or self.checkpoints[0])
        self._drop_window()
        self._set_internal(set(), user=False)
        outcome = self._advance_to(event)
        self._restore_user_breakpoints()
        return self._note_thread(outcome)

    def _advance_to(self, event: int) -> Outcome:
        """From before `event`, with no breakpoints armed: see goto_event."""
        session = self.session
        session.stop_at_end = True
        while session.applied < event:
            session.stop_at_exec = True
            try:
                result = session.advance()
            finally:
                session.stop_at_exec = False
            if result is not None and result.trap is Trap.EXEC:
                self._begin_new_program()
            elif result is not None and result.trap is Trap.END:
                self._at_end = True
                return _outcome(result)
            self._maybe_checkpoint()
        session.stop_at_end = False
        frame = session.frames[event]
        task = dict(session.followed_tasks()).get(frame.tid)
        if task is None:
            return Outcome("step")  # another process's event: the debugged one waits
        site = None
        if isinstance(frame, SyscallFrame) and not session.is_arrived(frame.tid):
            site = syscall_site(task, Registers.from_bytes(frame.regs).rip)
        if site is not None:
            self._set_internal({site}, user=False)
            while True:
                result = session.advance()
                if result is not None and result.trap is Trap.BREAKPOINT \
                        and result.tid == frame.tid:
                    break
                if session.applied != event:
                    raise RuntimeError(f"lost position at event {event}: its thread "
                                       f"passed its syscall instruction at {site:#x}")
            self._set_internal(set(), user=False)
        return Outcome("step", tid=frame.tid)

    def _resume_from(self, cp: Checkpoint) -> None:
        self.session.resume_from(cp.task, cp.state)
        while self.session.applied < cp.replay_to:
            self.session.advance()  # no stops: nothing is followed before replay_to
        self._at_end = False
        self._restore_user_breakpoints()
        self.session.breakpoints.apply_debug_registers(self.task)

    def _checkpoint_before(self, mark: Mark) -> Checkpoint | None:
        """The latest checkpoint strictly before mark."""
        best = None
        for cp in self.checkpoints + list(self.user_checkpoints.values()):
            # a checkpoint sits at its event's boundary, which precedes the rest of it
            before = cp.mark.applied < mark.applied or (
                cp.boundary and cp.mark.applied == mark.applied
                and cp.mark.identity != mark.identity)
            if before and (best is None or cp.mark.applied > best.mark.applied):
                best = cp
        return best

    # -- forward ----------------------------------------------------------------------
    def forward(self, step: bool = False) -> Outcome:
        """Continue (or step one instruction) forwards."""
        with self._catching(None if step else self.catch_syscalls):
            return self._note_thread(self._forward(step))

    @contextlib.contextmanager
    def _catching(self, catch: Callable[[int], bool] | None) -> Iterator[None]:
        """Makes the syscalls `catch` accepts stops (entry and return) for a while: only
        continues stop there, so the searches of steps and seeks never see them."""
        saved = self.session.stop_at_syscalls
        self.session.stop_at_syscalls = catch
        try:
            yield
        finally:
            self.session.stop_at_syscalls = saved

    def _note_thread(self, outcome: Outcome) -> Outcome:
        if outcome.tid:
            self.current_tid = outcome.tid
            if outcome.tid in self._stop_order:
                self._stop_order.remove(outcome.tid)
            self._stop_order.append(outcome.tid)
            if not outcome.in_place:
                self._moment_tid = outcome.tid
        return outcome

    def _forward(self, step: bool) -> Outcome:
        self._drop_window()
        session = self.session
        if session.finished:
            return Outcome("exited", status=session.exit_status or 0)
        if self._at_end:
            self._at_end = False
            session.stop_at_end = False
            session.advance()
            return Outcome("exited", status=session.exit_status or 0)
        session.stop_at_end = True
        applied = session.applied
        while True:
            if self.interrupt_requested.is_set():
                self.interrupt_requested.clear()
                return Outcome("interrupted")
            session.interruptible = session.stop_at_exec = True
            try:
                result = session.advance(step)
            finally:
                session.interruptible = session.stop_at_exec = False
            if result is not None and result.trap is Trap.EXEC:
                self._begin_new_program()
                return _outcome(result)
            if result is None or session.applied != applied:
                self._maybe_checkpoint()  # only at event boundaries
            applied = session.applied
            if result is not None:
                if result.trap is Trap.END:
                    self._at_end = True
                return _outcome(result)

    def _begin_new_program(self) -> None:
        """After the followed process's exec, the debugger's history starts here: the
        breakpoints, watchpoints and checkpoints it had belong to the old program."""
        session = self.session
        for watch in self.watchpoints:
            self.remove_watchpoint(watch)
        self.user_breakpoints.clear()
        origin = self.checkpoints[0]
        for cp in self.checkpoints[1:] + list(self.user_checkpoints.values()):
            cp.task.kill()
        self.user_checkpoints.clear()
        self._drop_window()
        self.checkpoints = []
        if session.can_snapshot:
            origin.task.kill()
            self._add_checkpoint()
        else:  # reached by replaying from the old origin
            self.checkpoints.append(Checkpoint(origin.task, origin.state, self.mark(),
                                               replay_to=session.applied))

    # -- reverse ----------------------------------------------------------------------
    def _run_to(self, mark: Mark, anchors: frozenset[int] | None = None,
                copies: list[tuple[int, Checkpoint]] | None = None) -> int:
        """From the live position (before mark), runs forward with only internal
        breakpoints at anchors (default: mark.pc, which they must include to find mark),
        until mark. Returns how many times they were hit before the matching hit. With
        `copies`, keeps there (hits, copy) of the process at two of the latest hits whose
        number is a multiple of COPY_EVERY_HITS."""
        session = self.session
        session.stop_at_end = mark.at_end
        self._set_internal(set(), user=False)
        while session.applied < mark.applied:
            session.advance()
        if mark.at_end:
            while (r := session.advance()) is None or r.trap is not Trap.END:
                pass
            self._at_end = True
            return 0
        if mark.entry:  # its thread's next event is the syscall: arrive there only
            if not self._at(mark):
                with self._catching(every_syscall):
                    session.advance()
            if not self._at(mark):
                raise RuntimeError(f"lost position at event {mark.applied}: not at the "
                                   f"syscall entry at pc {mark.pc:#x}")
            return 0
        self._set_internal(set(anchors or {mark.pc}), user=False)
        hits = 0
        at = self._at(mark)
        with self._catching(every_syscall if _in_stub(mark) else session.stop_at_syscalls):
            while not at:  # mark is met at a stop (or where the run starts)
                result = self._advance_toward(mark)
                if result is None or session.applied > mark.applied:
                    raise RuntimeError(f"lost position at event {mark.applied} "
                                       f"(pc {mark.pc:#x})")
                at = self._at(mark)
                if result.trap is Trap.BREAKPOINT and not at:
                    hits += 1
                    if (copies is not None and hits % COPY_EVERY_HITS == 0
                            and session.can_snapshot):
                        copies.append((hits, self._snapshot_here()))
                        if len(copies) > 2:
                            copies.pop(0)[1].task.kill()
        self._set_internal(set(), user=False)
        return hits

    def _run_to_hit(self, anchors: frozenset[int], count: int) -> None:
        """From an event boundary, runs forward with only internal breakpoints at anchors
        to their count-th hit, which a counting run found before the next event."""
        session = self.session
        session.stop_at_end = False
        applied = session.applied
        self._set_internal(set(anchors), user=False)
        hits = 0
        while hits < count:
            result = session.advance()
            if result is None or session.applied != applied:
                raise RuntimeError(f"lost position at event {applied}: an event came after "
                                   f"{hits} of {count} breakpoint hits")
            if result.trap is Trap.BREAKPOINT:
                hits += 1
        self._set_internal(set(), user=False)

    def seek(self, mark: Mark) -> None:
        """Moves the live replay to mark (from the nearest earlier checkpoint)."""
        if self._at(mark) and not mark.at_end:
            return
        cp = self._checkpoint_before(mark) or self.checkpoints[0]
        self._resume_from(cp)
        if not self._at(mark):
            self._run_to(mark)
        self._restore_user_breakpoints()

    def reverse_continue(self) -> Outcome:
        """Goes back to the latest breakpoint or watchpoint stop before now."""
        self._op_started = time.monotonic()
        with self._signals_silenced():
            return self._note_thread(self._reverse_continue())

    def _reverse_continue(self) -> Outcome:
        self._drop_window()
        waiting = self._waiting_on_breakpoint()
        if waiting:
            return Outcome("breakpoint", tid=waiting, in_place=True)
        origin = end = self.mark()
        while True:
            cp = self._checkpoint_before(end)
            if cp is None:
                self._resume_from(self.checkpoints[0])
                return Outcome("begin")
            # a syscall entry is reached as a stop there (so is a moment in a buffered call's
            # stub): then every syscall stops the scan
            catch = every_syscall if end.entry or _in_stub(end) else self.catch_syscalls
            with self._catching(catch):
                found = self._scan(cp, end)
            if found == "interrupted":
                self.seek(origin)
                return Outcome("interrupted")
            if found is not None:
                hits, result = found
                with self._catching(catch):
                    self._replay_scan_to(cp, end, hits)
                if result.trap is Trap.WATCHPOINT:
                    self._note_thread(_outcome(result))  # step back in the writing thread
                    if result.call_site:
                        self._back_to_call(result.call_site)
                    else:
                        self._reverse_stepi(keep_window=False)
                    return Outcome("watchpoint", watch=result.watch, tid=result.tid)
                return _outcome(result)
            if not cp.mark.at_end and cp.mark.pc in self.user_breakpoints:
                # the scan started on this breakpoint and stepped over it, and a scan that
                # ends here stops short of it: a hit where the checkpoint stands (one made
                # at a breakpoint stop) is the latest before [cp, end)
                self._resume_from(cp)
                self._restore_user_breakpoints()
                return Outcome("breakpoint", tid=cp.mark.tid)
            end = cp.mark

    def _back_to_call(self, site: int) -> None:
        """From a watchpoint stop where a buffered call returned, back to the moment its
        caller entered it at site (no event comes in between): the last visit of site
        before now, as the stop for a traced syscall's write goes back to the syscall
        instruction."""
        end = self.mark()
        cp = self._checkpoint_before(end) or self.checkpoints[0]
        anchors = frozenset({site, end.pc})
        self._to_boundary(cp, end.applied)
        hits = self._run_to(end, anchors=anchors)
        self._to_boundary(cp, end.applied)
        self._run_to_hit(anchors, hits)
        self._restore_user_breakpoints()

    def _waiting_on_breakpoint(self) -> int:
        """A thread, other than the current one, that stands on a breakpoint at this
        moment and was not reported there: it is reported first, in place. gdb relies
        on it: after stepping one thread over a breakpoint (which moves every thread to
        that moment), it puts a breakpoint where the thread it was stepping now stands
        and expects that thread to report at once."""
        where, reported = self._reported_in_place
        if where is None or not self._at(where):
            reported = set()
        main = self.session.main_tid
        skipped = {self.current_tid or main, self._moment_tid or main} | reported
        # threads on the same code stand at the same pc: the one gdb was stepping stopped
        # most recently
        recency = {tid: n for n, tid in enumerate(self._stop_order)}
        threads = sorted(self.session.followed_tasks(), key=lambda tt: -recency.get(tt[0], -1))
        for tid, task in threads:
            if tid not in skipped and task.regs().rip in self.user_breakpoints:
                reported.add(tid)
                self._reported_in_place = (self.mark(), reported)
                return tid
        return 0

    def _report(self, what: str) -> None:
        """Tells the user, at most once a second, how a search that runs long is doing."""
        now = time.monotonic()
        if (self.progress is None or now - self._op_started < 1.0
                or now - self._progress_at < 1.0):
            return
        self._progress_at = now
        self.progress(f"rrgdb: {what}\n")

    def _scan(self, cp: Checkpoint, end: Mark) -> tuple[int, Interruption] | str | None:
        """Replays [cp, end) with the user's breakpoints and watchpoints plus an internal
        breakpoint at end's pc; returns (stop number, result) of the last user stop."""
        session = self.session
        self._resume_from(cp)
        internal = set() if end.at_end else {end.pc}
        self._set_internal(internal, user=True)
        session.stop_at_end = end.at_end
        last = None
        stops = 0
        while not self._at(end):
            self._report(f"searching backwards: replaying event {session.applied} "
                         f"of {end.applied} (from the checkpoint at event {cp.mark.applied})")
            if self.interrupt_requested.is_set():
                self.interrupt_requested.clear()
                return "interrupted"
            result = self._advance_toward(end)
            if result is None:
                if session.finished:
                    break
                continue
            if result.trap is Trap.END:
                break
            stops += 1
            if self._at(end):
                # a watchpoint that fires here (end follows its store: a forward watchpoint
                # stop, or a stepi over the store) is the first the way back meets; a
                # breakpoint at end is where we are, not a stop before it
                if result.trap is Trap.WATCHPOINT:
                    last = (stops, result)
                break
            if result.trap is Trap.WATCHPOINT or self._caught(result) or (
                    result.trap is Trap.BREAKPOINT
                    and self._thread(result.tid).regs().rip in self.user_breakpoints):
                last = (stops, result)
        self._at_end = False
        return last

    def _advance_toward(self, end: Mark) -> Interruption | None:
        """session.advance() on the way to end; to a moment in the syscall buffer's stubs
        (which no breakpoint can mark: _set_internal) by single steps once its thread is
        in them, from the stop of the buffered call there (catches make those stops)."""
        step = _in_stub(end) and self._thread(end.tid).regs().rip in syscallbuf.STUB_INSIDES
        return self.session.advance(step)

    def _caught(self, result: Interruption) -> bool:
        """Whether result is a stop at a syscall the user catches."""
        catch = self.catch_syscalls
        return (result.trap in (Trap.SYSCALL_ENTRY, Trap.SYSCALL_RETURN) and catch is not None
                and catch(self._thread(result.tid).regs().syscallno))

    def _replay_scan_to(self, cp: Checkpoint, end: Mark, stops: int) -> None:
        """Goes back to the stops-th stop of a _scan(cp, end)."""
        session = self.session
        self._resume_from(cp)
        self._set_internal(set() if end.at_end else {end.pc}, user=True)
        session.stop_at_end = end.at_end
        count = 0
        while count < stops:
            result = self._advance_toward(end)
            if result is not None:
                count += 1
        self._restore_user_breakpoints()

    def reverse_stepi(self, keep_window: bool = True) -> Outcome:
        """Goes back one instruction. Reports a watchpoint the reversed instruction hit."""
        self._op_started = time.monotonic()
        with self._signals_silenced():
            return self._note_thread(self._reverse_stepi(keep_window))

    @contextlib.contextmanager
    def _signals_silenced(self) -> Iterator[None]:
        """Reverse searches replay stretches many times; signals are not stops there."""
        saved = self.session.stop_at_signals
        self.session.stop_at_signals = False
        try:
            yield
        finally:
            self.session.stop_at_signals = saved

    def _reverse_stepi(self, keep_window: bool) -> Outcome:
        end = self.mark()
        main = self.session.main_tid
        stepped = self.current_tid if (self.current_tid or main) != (end.tid or main) else end.tid
        window = self._window if keep_window and stepped == end.tid else None
        if window is not None and end.identity in window.states[1:]:
            n = window.states.index(end.identity)
        else:
            window = self._build_window(end, stepped)
            if window is None:
                self._resume_from(self.checkpoints[0])
                return Outcome("begin")
            n = len(window.states) - 1
        watch = self._goto_window(window, n - 1)
        self._window = window
        if watch is not None:
            return Outcome("watchpoint", watch=watch, tid=window.tid)
        return Outcome("step", tid=window.tid)

    def _build_window(self, end: Mark, tid: int) -> _Window | None:
        """Finds the states leading to end by single-stepping thread tid from a nearby
        start. A thread other than end's has not moved since its previous event."""
        session = self.session
        own = tid == end.tid
        end_identity = end.identity if own else self._identity(tid)
        # what the stack tells is read now; the code is the same all through the interval
        task = self._thread(tid)
        regs = task.regs()
        maps = read_maps(task.tid)
        entered_by = call_site(task, regs.rip, regs.rsp) or stub_call_site(task, regs)
        callee = returned_from(task, regs.rip, regs.rsp)
        inside = function_entry(task, regs.rip, regs.rsp, regs.rbp, maps)
        after_syscall = syscall_site(task, regs.rip)
        cp = self._checkpoint_before(end)
        if cp is None:
            return None
        self._resume_from(cp)
        self._set_internal(set(), user=False)
        target_event = end.applied
        boundary_is_end = False
        while session.applied < target_event:
            session.advance()
        if not own or self._at(end) or end.entry:
            boundary_is_end = True
            # the instruction before is the one that made the thread's previous event (at
            # a syscall's entry: that syscall): step through that interval
            previous = (end.applied if own and end.entry
                        else self._previous_event(tid or session.main_tid, target_event))
            if previous is None:
                return None
            prev = self._checkpoint_before(Mark(previous, b"", False))
            if prev is None:
                return None
            self._resume_from(prev)
            self._set_internal(set(), user=False)
            while session.applied < previous:
                session.advance()
        boundary = session.applied
        owned = session.can_snapshot  # with threads live, restart from the checkpoint
        start_cp = self._temporary_checkpoint() if owned else (prev if boundary_is_end else cp)
        anchors: frozenset[int] = frozenset()
        total = 0
        copies: list[tuple[int, Checkpoint]] = []  # made during the counting replay
        if boundary_is_end:
            # start from the last visit of the syscall instruction before the syscall
            if after_syscall is not None and isinstance(
                    session.frames[boundary], SyscallFrame | SyscallEntryFrame):
                anchors = frozenset({after_syscall})
                total = self._hits_before_event(anchors)
        elif not end.at_end:
            # start from the last visit before end of end's pc, of the call that
            # entered the function end is the entry of, of the entry of the function end
            # is inside, of the entry or a ret of the function that returned to end, or
            # of an instruction that can precede end's pc, whichever came last
            anchors = frozenset({end.pc, *self._code_anchors(tid, end.pc, callee, maps)}
                                | {a for a in (entered_by, inside, callee) if a}
                                | _stub_start(end))
            total = self._run_to(end, anchors=anchors, copies=copies)
        window = None
        if total > WINDOW_BACK_HITS:
            # a window from some hits earlier serves the next reverse-stepis too (a loop's
            # earlier iterations), unless stepping from there takes too long
            start = total - WINDOW_BACK_HITS
            window = self._step_window(start_cp, boundary, anchors, start,
                                       self._back_to_hit(start_cp, boundary, copies, start),
                                       end, end_identity, tid, boundary_is_end, owned,
                                       WINDOW_STEP_BUDGET)
        if window is None:
            window = self._step_window(start_cp, boundary, anchors, total,
                                       self._back_to_hit(start_cp, boundary, copies, total),
                                       end, end_identity, tid, boundary_is_end, owned, None)
            assert window is not None
        for _, copy in copies:
            copy.task.kill()
        if owned and window.checkpoint is not start_cp:
            start_cp.task.kill()
        return window

    def _back_to_hit(self, start_cp: Checkpoint, boundary: int,
                     copies: list[tuple[int, Checkpoint]], hits: int) -> int:
        """Goes back to the latest of `copies` made at most `hits` anchor hits in (else to
        the boundary); returns how many hits it stands at."""
        made = [(n, copy) for n, copy in copies if n <= hits]
        if not made:
            self._to_boundary(start_cp, boundary)
            return 0
        n, copy = made[-1]
        self.session.resume_from(copy.task, copy.state)
        return n

    def _step_window(self, start_cp: Checkpoint, boundary: int, anchors: frozenset[int],
                     hits: int, already: int, end: Mark, end_identity: bytes, tid: int,
                     boundary_is_end: bool, owned: bool, budget: int | None) -> _Window | None:
        """From the already-th hit of the anchors after the boundary, runs to the hits-th
        and single-steps thread tid from there to end, remembering each state; None if
        that takes more than `budget` steps. An owned window starts from a copy made at
        its first state, so going to a state of it costs only the steps from there."""
        session = self.session
        if hits > already:
            self._run_to_hit(anchors, hits - already)
        self._set_internal(set(), user=False)
        if owned and hits and session.can_snapshot:
            window = _Window(self._snapshot_here(), 0, anchors, [self._identity(tid)], tid,
                             session.applied, True)
        else:
            window = _Window(start_cp, hits, anchors, [self._identity(tid)], tid, boundary,
                             owned)
        session.stop_at_end = end.at_end  # stepping must not run into the exit itself
        while True:
            if budget is not None and len(window.states) > budget:
                if window.checkpoint is not start_cp:
                    window.checkpoint.task.kill()
                return None
            before_applied = session.applied
            result = session.advance(step=True)
            if session.applied != before_applied and boundary_is_end:
                window.states.append(end_identity)
                break
            if end.at_end and result is not None and result.trap is Trap.END:
                window.states.append(end_identity)
                break
            window.states.append(self._identity(tid))
            if self._at(end):
                break
            if session.applied > end.applied:
                raise RuntimeError(f"lost position at event {end.applied} (pc {end.pc:#x})")
        return window

    def _snapshot_here(self) -> Checkpoint:
        """A copy of the live replay at this moment (between events or not)."""
        session = self.session
        return Checkpoint(session.snapshot(), session.state(), self.mark(), boundary=False)

    def _code_anchors(self, tid: int, pc: int, callee: int | None,
                      maps: list[MapsEntry]) -> set[int]:
        """Anchors found by disassembling: the instructions that can precede pc in its
        function, and the ret instructions of the function that returned to pc."""
        task = self._thread(tid)

        def read_code(addr: int, length: int) -> bytes:
            return self.session.breakpoints.shadow(addr, task.read(addr, length))

        found = preceding_instructions(pc, read_code, maps)
        if callee is not None:
            found.update(returns_in(read_code(callee, SWEEP_BYTES), callee))
        return found

    def _hits_before_event(self, anchors: frozenset[int]) -> int:
        """From an event boundary, runs with internal breakpoints at anchors until the
        next event is applied; returns how many times they were hit before it."""
        session = self.session
        self._set_internal(set(anchors), user=False)
        applied = session.applied
        hits = 0
        while session.applied == applied:
            result = session.advance()
            if result is None and session.applied == applied:
                break  # an arrival that is not the event yet; nothing more to count
            if result is not None and result.trap is Trap.BREAKPOINT:
                hits += 1
        self._set_internal(set(), user=False)
        return hits

    def _previous_event(self, tid: int, before: int) -> int | None:
        """The index of the thread's last event before `before` that its own instructions
        led to: a syscall (its entry, if the entry was an event of its own), a signal,
        an rdtsc, a cpuid. Other threads' events and the thread's flushes move it nowhere."""
        frames = self.session.frames
        own = list(itertools.islice(
            (i for i in range(before - 1, 0, -1)
             if frames[i].tid == tid and not isinstance(frames[i], FlushFrame)), 2))
        if not own:
            return None
        if (len(own) == 2 and isinstance(frames[own[0]], SyscallFrame)
                and isinstance(frames[own[1]], SyscallEntryFrame)):
            return own[1]
        return own[0]

    def _to_boundary(self, cp: Checkpoint, boundary: int) -> None:
        """From cp, replays whole events (no breakpoints) up to event boundary."""
        self._resume_from(cp)
        self._set_internal(set(), user=False)
        while self.session.applied < boundary:
            self.session.advance()

    def _drop_window(self) -> None:
        """Forgets the reverse-stepi window (and ends its own checkpoint)."""
        if self._window is not None and self._window.owned:
            self._window.checkpoint.task.kill()
        self._window = None

    def _temporary_checkpoint(self) -> Checkpoint:
        self._drop_window()
        return Checkpoint(self.session.snapshot(), self.session.state(), self.mark())

    def _goto_window(self, window: _Window, n: int) -> Watchpoint | None:
        """Moves to the state after n steps of the window; returns a watchpoint hit by the
        step that follows it (the reversed instruction)."""
        session = self.session
        self._to_boundary(window.checkpoint, window.boundary)
        if window.start_hits:
            self._run_to_hit(window.anchors, window.start_hits)
        for _ in range(n):
            session.advance(step=True)
        watch = None
        if self.watchpoints and session.can_snapshot:
            probe = Checkpoint(session.snapshot(), session.state(), self.mark())
            result = session.advance(step=True)
            if result is not None and result.trap is Trap.WATCHPOINT:
                watch = result.watch
            self.session.resume_from(probe.task, probe.state)
            probe.task.kill()
        self._restore_user_breakpoints()
        return watch


def every_syscall(_: int) -> bool:
    """A catch of every syscall (gdb's `catch syscall` with no argument)."""
    return True


def _in_stub(mark: Mark) -> bool:
    """Whether mark is inside one of the syscall buffer's stubs (a caught buffered call's
    entry or return, or a step from there), where no breakpoint can mark it: it is found
    from the stop of the call (every syscall caught), and by single steps from there."""
    return mark.pc in syscallbuf.STUB_INSIDES


def _stub_start(mark: Mark) -> set[int]:
    """The start of the syscall buffer's stub mark is inside (nothing if none), which
    leads to it by single steps."""
    if not _in_stub(mark):
        return set()
    return {syscallbuf.UNTRACED_STUB if mark.pc < syscallbuf.RETURN_STUB
            else syscallbuf.RETURN_STUB}


def _outcome(result: Interruption) -> Outcome:
    return Outcome(result.trap.value, watch=result.watch, status=result.signo, tid=result.tid)

