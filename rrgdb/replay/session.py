"""ReplaySession: re-executes a recorded program from its trace, deterministically.

Each recorded event (frame) is replayed in two halves: *arrival* — the tracee runs until it
reaches the point where the event happened (a syscall entry under PTRACE_SYSEMU, the rdtsc
or cpuid fault, the faulting instruction) — and *application* — the recorded outcome is
imposed (result and memory writes, a signal, a counter value, cpuid's answer).
Breakpoints, watchpoints and single steps can interrupt an arrival; the debugger then sees
the tracee mid-interval.

Syscalls are emulated except those that shape the address space or signal state, which
are executed for real. Registers are compared with the recording at every arrival: a
mismatch raises DivergenceError, never goes unnoticed.
"""

from __future__ import annotations

import enum
import errno
import io
import os
import shutil
import signal
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rrgdb import native, syscallbuf
from rrgdb.kernel.address_space import MAP_PRIVATE, memory_hash, read_maps
from rrgdb.kernel.breakpoints import DR7, INT3, Breakpoints, WatchKind, Watchpoint
from rrgdb.kernel.cpuid import CPUID, complete_cpuid, set_cpuid_faulting
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.remote_syscalls import (
    SCRATCH_DATA,
    SYSCALL_SITE,
    disable_alternate_stack,
    fork_task,
    inject,
    map_scratch_page,
    open_in_tracee,
    resume_keeping_sigtrap,
    run_forking_syscall,
    run_syscall,
)
from rrgdb.kernel.signal_frames import enter_handler, set_frame_sigmask
from rrgdb.kernel.task import Stop, StopKind, Task
from rrgdb.kernel.visit_search import (
    REGISTER_NAMES,
    STACK_ABOVE,
    STACK_BELOW,
    VisitSearch,
    open_search,
    read_window,
    writable_code,
)
from rrgdb.record.outputs import written_bytes
from rrgdb.record.session import (
    CLONE_CHILD_SETTID,
    CLONE_PARENT_SETTID,
    CLONE_THREAD,
    CLONE_UNTRACED,
    CLONE_VFORK,
    RDTSCP,
    STOP_SIGNALS,
    VFORK_BUFFER_AT_CHILD_EXEC,
    VFORK_BUFFER_AT_PARENT_SYSCALL,
    apply_rdtsc,
    blocked_signals,
    clone_disables_buffer,
    clone_flags,
    ignored_signals_at_start,
    recorded_cpu,
    recorded_cpuid_faulting,
    recorded_vfork_buffer_return,
    signal_disposition,
    vfork_returns_buffer,
)
from rrgdb.replay.processes import recorded_processes
from rrgdb.syscall_numbers import NUMBERS
from rrgdb.syscalls import SPECS, Replay, signal_name, syscall_name
from rrgdb.trace import (
    ALTSTACK_OFF_SINCE,
    OUTPUT_CRC_SINCE,
    XSAVE_GAPS_ZEROED_SINCE,
    CpuidFrame,
    ExecFrame,
    ExitFrame,
    FlushFrame,
    Frame,
    InstructionTrapFrame,
    PreemptFrame,
    SignalFrame,
    SyscallEntryFrame,
    SyscallFrame,
    TraceReader,
)

REPLAY_OPTIONS = (native.PTRACE_O_TRACESYSGOOD | native.PTRACE_O_TRACEEXEC
                  | native.PTRACE_O_TRACEEXIT | native.PTRACE_O_TRACEFORK
                  | native.PTRACE_O_TRACEVFORK | native.PTRACE_O_TRACECLONE
                  | native.PTRACE_O_EXITKILL)
PREEMPTION_SEARCH_LIMIT = 200_000  # visits of the recorded pc tried before giving up
TRACE_FDS_KEPT = 256  # descriptors of trace files a replayed process keeps open at most
MMAP = NUMBERS["mmap"]
BRK = NUMBERS["brk"]
MAP_SHARED, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x10, 0x20
PROT_READ, PROT_WRITE, SHM_RDONLY = 1, 2, 0o10000
EXECVE = {NUMBERS["execve"], NUMBERS["execveat"]}
EXITS = {NUMBERS["exit"], NUMBERS["exit_group"]}
MAPPING_CHANGES = {NUMBERS[n] for n in ("mmap", "munmap", "mremap", "mprotect", "pkey_mprotect",
                                         "brk")}
PATCHING = {NUMBERS["prctl"], NUMBERS["mprotect"]}  # the preload library's set-up calls
TEMPORARY_MASK_ARG = {NUMBERS[name]: arg for name, arg in (
    ("rt_sigsuspend", 0), ("ppoll", 3), ("pselect6", 5), ("epoll_pwait", 4),
    ("epoll_pwait2", 4))}  # syscalls that run with a signal mask of their own
SIG_SETMASK, ERESTARTNOHAND, EINTR = 2, 514, 4
RLIMIT_STACK, PR_SET_NAME = 3, 15

Echo = Callable[[int, bytes], None]


class DivergenceError(Exception):
    """The replay does not follow the recording (a bug in rrgdb or a changed environment)."""


class IncompleteTrace(Exception):
    """The recording stopped before the program ended (the recorder died); everything
    recorded has been replayed."""


class Trap(enum.Enum):
    """Why an arrival was interrupted."""

    BREAKPOINT = "breakpoint"
    WATCHPOINT = "watchpoint"
    STEP = "step"
    END = "end"  # arrived at the exit: the last stop before the process is gone
    SIGNAL = "signal"  # a recorded signal is about to be delivered (debugger sees it)
    INTERRUPT = "interrupted"  # the debugger asked to stop (interrupt())
    EXEC = "exec"  # the followed process has just exec'd a new program
    SYSCALL_ENTRY = "syscall-entry"  # a caught syscall's thread stands at its entry
    SYSCALL_RETURN = "syscall-return"  # a caught syscall has just been applied


@dataclass(frozen=True, slots=True)
class Interruption:
    """A stop between events, for the debugger."""

    trap: Trap
    watch: Watchpoint | None = None
    signo: int = 0
    tid: int = 0  # the recorded tid of the thread that stopped
    #: a watchpoint stop where a buffered call returned (see _out_of_buffered_call): where
    #: the program's code entered that call, 0 otherwise
    call_site: int = 0
    #: the thread stands on an armed int3 it has not run: the next advance reports that
    #: breakpoint's hit (the watchpoint stop came first, as the CPU's would)
    before_breakpoint: bool = False


@dataclass(frozen=True, slots=True)
class ReplayState:
    """The Python-side state that goes with a forked snapshot of the tracee."""

    applied: int
    pending_signal: int
    exit_status: int | None
    buffered: int  # bytes of flushed records the main thread has still to use up (-1: none)
    tid: int  # the recorded tid of the one task snapshot
    seen: bool  # its position was a stop reported to the caller (see ReplaySession._seen)
    buffer_returning: bool  # its buffer comes back at its next syscall event


def write_to_fd(stream: int, data: bytes) -> None:
    """Echoes recorded program output to our own stdout/stderr."""
    view = memoryview(data)
    while view:
        view = view[os.write(stream, view):]


class ReplaySession:
    """Replays one trace, one event at a time, with breakpoints and single steps."""

    def __init__(self, trace_dir: Path, echo: Echo | None = write_to_fd) -> None:
        self.reader = TraceReader(trace_dir.resolve())
        self.frames: list[Frame] = []
        self.echo = echo
        self.task: Task | None = None  # the followed process's main thread, once it exists
        self.breakpoints = Breakpoints()
        self.applied = 0  # frames applied so far; frames[applied] is the next event
        self.tasks: dict[int, Task] = {}  # recorded tid -> live tracee
        self.main_tid = 0  # the process the debugger follows (default: the first one)
        self.follow_at = 1  # the event index from which it is followed
        self.program = ""  # the program it runs then (as recorded)
        self._arrived: set[int] = set()  # tids standing at the arrival point of their event
        self._signals: dict[int, int] = {}  # signal to deliver at a tid's next resume
        self._group_exits: set[int] = set()  # processes whose threads are being killed
        self._buffered: dict[int, int] = {}  # tid -> bytes of records it must use up
        # recorded tid -> a leader that exited before its threads: reaped with the last
        # of them, or gone in a thread's execve (_take_over_leader)
        self._lingering: dict[int, Task] = {}
        # live tgid -> {path: fd}: the files a process has open for its mmaps (the trace's
        # copies, and the memfds of shared mappings)
        self._trace_fds: dict[int, dict[str, int]] = {}
        self._working_copies: dict[str, str] = {}  # file_id -> its memfd's path
        self._segments: dict[int, str] = {}  # System V shm id -> its memfd's path
        self.exit_status: int | None = None
        self.stop_at_end = False  # report Trap.END before applying the exit
        self.stop_at_signals = False  # report Trap.SIGNAL before delivering a signal
        self.stop_at_exec = False  # report Trap.EXEC after the followed process's exec
        # which syscall numbers of the followed process report Trap.SYSCALL_ENTRY at their
        # entry and Trap.SYSCALL_RETURN once applied (gdb's catch syscall; None: none)
        self.stop_at_syscalls: Callable[[int], bool] | None = None
        # the syscall numbers whose buffered calls the followed process's scratch stubs
        # stop at (gdb's catch syscall, whatever the operation; see catch_buffered_calls)
        self._buffered_catch: Callable[[int], bool] | None = None
        self._stubs_trap = False  # those stubs are in their trapping form now
        self._signal_reported = -1  # frame index whose signal was reported already
        # the thread whose position is the last stop advance() reported (0: none since it
        # or an event moved on): resuming from there steps over a breakpoint at its pc;
        # anywhere else a breakpoint at the pc is a hit before the thread runs
        self._seen = 0
        self.interrupt_requested = threading.Event()
        self._running: Task | None = None  # the task resumed right now, if any
        self.interruptible = False  # whether interrupt() may stop a running tracee
        self.echoed = 0  # output of frames below this index has been echoed already
        # tid -> the values of `applied` while the preload library sets itself up in that
        # thread and patches the code (see _patching_windows)
        self._patching: dict[int, list[range]] = {}
        # cpuid faults in every tracee, as it did when recorded (CpuidFrames hold its values)
        self._cpuid_faulting = recorded_cpuid_faulting(self.reader.header)
        # when vfork parents get their buffer back, as recorded (None: never)
        self._vfork_buffer_return = recorded_vfork_buffer_return(self.reader.header)
        # recorded tid of a vfork child -> its parent's, whose buffer it returns
        self._buffer_returns: dict[int, int] = {}
        # vfork parents whose buffer comes back at their next syscall event
        self._buffer_returning: set[int] = set()
        # clones arrived at, not yet applied, that stopped buffering: whether the child
        # gives the buffer back (vfork_returns_buffer)
        self._clone_returns: dict[int, bool] = {}

    # -- lifecycle --------------------------------------------------------------------
    def load(self) -> None:
        """Reads every frame of the trace (TraceError on a damaged trace)."""
        self.frames = list(self.reader.frames())
        if not self.frames and not self.reader.complete:
            raise IncompleteTrace("the trace is incomplete: the recorder stopped before it "
                                  "recorded any event")
        if not self.frames or not isinstance(self.frames[0], ExecFrame):
            raise DivergenceError("the trace does not start with an exec event")
        self._patching = _patching_windows(self.frames)

    def catch_buffered_calls(self, catch: Callable[[int], bool] | None) -> None:
        """Makes the buffered calls whose numbers catch accepts stop at their entry and
        return in the followed process (None: no stops, replay at full speed). Those stops
        are reported as Trap.SYSCALL_ENTRY and Trap.SYSCALL_RETURN when stop_at_syscalls
        accepts them too, and end a single step that reaches them; otherwise replay goes
        on from them. The stubs trap only while records of such calls wait to be used."""
        self._buffered_catch = catch
        self._trap_buffered_calls()

    def _trap_buffered_calls(self) -> None:
        """Gives the followed process's stubs the form the pending records need: trapping
        while one of them is a call _buffered_catch accepts (and the library reports
        returns), else making no syscall. Left as they are while a thread stands in them."""
        task, catch = self.task, self._buffered_catch
        if task is None or not task.alive or (catch is None and not self._stubs_trap):
            return
        trap = catch is not None and any(
            catch(number)
            for tid in self._buffered if tid in self.tasks and self._followed(self.tasks[tid])
            for number in syscallbuf.answered_calls(self._pending_flush(tid).data))
        if trap == self._stubs_trap or (trap and not syscallbuf.reports_returns(task)):
            return
        if any(t.regs().rip in syscallbuf.STUBS for _, t in self.followed_tasks()):
            return
        self.breakpoints.lift(task)  # (one at a stub's start, where both forms begin)
        syscallbuf.trap_calls(task, trap)
        self.breakpoints.reinsert(task)
        self._stubs_trap = trap

    def _pending_flush(self, tid: int) -> FlushFrame:
        """The FlushFrame whose records thread tid is using (its latest event)."""
        frame = next(self.frames[i] for i in range(self.applied - 1, -1, -1)
                     if self.frames[i].tid == tid)
        assert isinstance(frame, FlushFrame)
        return frame

    def follow(self, pid: int, at_fork: bool = False) -> None:
        """Makes the debugger follow recorded process pid instead of the first one: from
        right after its fork (at_fork) or its first exec (ValueError: no such process)."""
        if not self.frames:
            self.load()
        process = recorded_processes(self.frames).get(pid)
        if process is None:
            raise ValueError(f"no process {pid} in this recording")
        self.main_tid, self.follow_at = pid, process.start_of_debugging(at_fork)
        self.program = process.program_before(self.follow_at)

    def start(self) -> None:
        """Spawns the tracee and replays the initial exec (event 0)."""
        if not self.frames:
            self.load()
        first = self.frames[0]
        assert isinstance(first, ExecFrame)
        exe = str(self.reader.file_path(first.exe_file_id))
        header = self.reader.header
        if self._cpuid_faulting and not native.cpuid_faulting_available():
            raise DivergenceError("the trace was recorded with CPUID faulting, which this "
                                  "machine does not have: its cpuid values cannot be replayed")
        native.bind_to_one_cpu(recorded_cpu(header))
        pid = native.spawn(exe, first.argv, first.envp, "/", header.rlimit_stack, True, -1,
                           ignored_signals_at_start(header))
        task = Task(pid)
        self.main_tid = self.main_tid or first.tid
        self.program = self.program or first.exe_path
        self.tasks = {first.tid: task}
        stop = task.wait()
        if stop.kind is not StopKind.SIGNAL or stop.signo != signal.SIGSTOP:
            raise DivergenceError(f"replay tracee did not start: {stop}")
        native.ptrace(native.PTRACE_SETOPTIONS, pid, 0, REPLAY_OPTIONS)
        task.resume(native.PTRACE_CONT)
        stop = task.wait()
        if stop.kind is not StopKind.EVENT or stop.event != native.PTRACE_EVENT_EXEC:
            raise DivergenceError(f"replay tracee could not exec {exe}: {stop}")
        self._apply_exec(task, first)
        self.applied = 1
        self.echoed = max(self.echoed, 1)
        self._maybe_begin_following()

    def _maybe_begin_following(self) -> None:
        """At the event the followed process's debugging starts from: it becomes the
        task breakpoints and watchpoints apply to."""
        if self.applied != self.follow_at:
            return
        task = self.tasks[self.main_tid]
        if task.tgid != task.tid:
            raise ValueError(f"{self.main_tid} is a thread of process {task.tgid}, "
                             "not a process")
        self.task = task
        self.breakpoints.reinsert(task)
        self.breakpoints.apply_debug_registers(task)
        self._trap_buffered_calls()

    def close(self) -> None:
        """Ends every tracee (by pid)."""
        tasks = [*self.tasks.values(), *self._lingering.values()]
        # a process's leader is reaped only after its threads: kill all, reap leaders last
        for task in sorted(tasks, key=lambda t: t.tid == t.tgid):
            task.kill()
        self._lingering.clear()
        self._trace_fds.clear()
        if self.task is not None:
            self.task.kill()

    def followed_tasks(self) -> list[tuple[int, Task]]:
        """(recorded tid, task) of the live threads of the debugged process."""
        return [(tid, t) for tid, t in self.tasks.items() if self._followed(t)]

    def _followed(self, task: Task) -> bool:
        """Whether task is a thread of the debugged process (once it is followed)."""
        return self.task is not None and task.tgid == self.task.tgid

    def is_arrived(self, tid: int) -> bool:
        """Whether thread tid (0: the main thread) stands in the middle of an event."""
        return (tid or self.main_tid) in self._arrived

    @property
    def arrived(self) -> bool:
        """Whether some tracee stands in the middle of an event (not a checkpoint moment)."""
        return bool(self._arrived)

    @property
    def finished(self) -> bool:
        return self.exit_status is not None

    def run_to_end(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Replays every remaining event; returns the recorded raw wait status.
        progress(applied, total) is called about every 1000 events."""
        while self.applied < len(self.frames) or self.exit_status is None:
            self.advance()
            if progress is not None and self.applied % 1000 == 0:
                progress(self.applied, len(self.frames))
        assert self.exit_status is not None
        return self.exit_status

    # -- checkpoints ------------------------------------------------------------------
    def state(self) -> ReplayState:
        """The state that goes with snapshot() (one task live)."""
        tid = next(iter(self.tasks))
        return ReplayState(self.applied, self._signals.get(tid, 0), self.exit_status,
                           self._buffered.get(tid, -1), tid, self._seen == tid,
                           tid in self._buffer_returning)

    @property
    def can_snapshot(self) -> bool:
        """Snapshots copy one process: only possible while it is the only one."""
        return len(self.tasks) == 1 and not self.arrived and self.exit_status is None

    def snapshot(self) -> Task:
        """A forked, stopped copy of the tracee (between events only)."""
        assert self.can_snapshot
        task = next(iter(self.tasks.values()))
        followed = task is self.task
        if followed:
            self.breakpoints.lift(task)
        try:
            return fork_task(task)
        finally:
            if followed:
                self.breakpoints.reinsert(task)

    def resume_from(self, snapshot: Task, state: ReplayState) -> None:
        """Makes a fresh fork of snapshot the live tracee, at the snapshot's position."""
        self.close()
        task = fork_task(snapshot)
        self.tasks = {state.tid: task}
        followed = state.tid == self.main_tid and state.applied >= self.follow_at
        self.task = task if followed else None
        self.applied, self.exit_status = state.applied, state.exit_status
        self._signals = {state.tid: state.pending_signal}
        self._arrived.clear()
        self._group_exits.clear()
        self._buffered = {state.tid: state.buffered} if state.buffered >= 0 else {}
        self._buffer_returns.clear()
        self._buffer_returning = {state.tid} if state.buffer_returning else set()
        self._clone_returns.clear()
        self._signal_reported = -1
        self._seen = state.tid if state.seen else 0
        self.breakpoints.forget_written()  # the fork has none of the int3s (see snapshot)
        self.breakpoints.suspended = self._patching_now()
        if followed:
            self.breakpoints.reinsert(task)
            self.breakpoints.apply_debug_registers(task)
        # (its stubs trap if they did in the snapshot: a thread may stand in them)
        self._stubs_trap = followed and syscallbuf.calls_trap(task)
        self._trap_buffered_calls()

    # -- running ----------------------------------------------------------------------
    def advance(self, step: bool = False) -> Interruption | None:
        """Replays the next event, unless a breakpoint, watchpoint or (with step) the end
        of one instruction interrupts the arrival. A completed single step that ends
        with an event (a syscall instruction) also returns Trap.STEP."""
        result = self._advance(step)
        self._seen = result.tid if result is not None and not result.before_breakpoint else 0
        self._suspend_breakpoints_while_patching()
        return result

    def _suspend_breakpoints_while_patching(self) -> None:
        """No int3 of the debugger is in the code while the preload library finds and
        patches its syscall sites: it would not patch a site it cannot recognize, and
        the replay would part from the recording."""
        patching = self._patching_now()
        bps = self.breakpoints
        if patching == bps.suspended:
            return
        if self.task is None:
            bps.suspended = patching
        elif patching:
            bps.suspend(self.task)
        else:
            bps.resume(self.task)

    def _patching_now(self) -> bool:
        return any(self.applied in window for window in self._patching.get(self.main_tid, ()))

    def _advance(self, step: bool) -> Interruption | None:
        frame = self.frames[self.applied] if self.applied < len(self.frames) else None
        if frame is None:
            if not self.reader.complete:
                raise IncompleteTrace(f"the trace is incomplete: the recording stopped after "
                                      f"{self.applied} events, before the program exited; "
                                      "all of them were replayed")
            raise DivergenceError(f"the trace ended at event {self.applied} before the "
                                  "program exited")
        tid = frame.tid
        task = self.tasks.get(tid)
        if task is None and isinstance(frame, ExecFrame):
            task = self._take_over_leader(frame)
        if task is None:
            raise self._diverged(frame, f"no live task for recorded tid {tid}")
        followed = self._followed(task)
        step = step and followed
        preempt = isinstance(frame, PreemptFrame)
        entered = tid in self._arrived  # its syscall entry was a stop or an event already
        while tid not in self._arrived:
            if preempt and self._at_preemption(task, frame):
                self._arrived.add(tid)
                break
            if not self._needs_running(frame):
                self._arrived.add(tid)
                break
            if followed and self._stubs_trap:
                self._leave_stub(task)
            rip = task.regs().rip if followed else 0
            over_breakpoint = followed and rip in self.breakpoints.software
            if over_breakpoint and self._seen != tid:
                # here without executing the int3: an event put the thread here (a
                # handler's entry, a sigreturn, the instruction after a syscall) or it was
                # stopped here by something else; the CPU would hit the breakpoint next
                return Interruption(Trap.BREAKPOINT, tid=tid)
            if over_breakpoint:
                self.breakpoints.lift_one(task, rip)
            if preempt and not (step or over_breakpoint):
                found = self._search_preemption(task, frame)
                if found is None:
                    self._arrived.add(tid)
                    break
                stop = found
            else:
                stop = self._run(tid, task, step or over_breakpoint)
            self._seen = 0  # it moved
            if over_breakpoint:
                self.breakpoints.reinsert(task)
            if followed and self._stubs_trap and stop.kind is StopKind.SYSCALL:
                regs = task.regs()
                if regs.rip in syscallbuf.CATCH_STOPS:
                    trap = self._at_buffered_call(task, regs, tid, step)
                    if trap is not None:
                        return trap
                    continue
            trap = self._classify(task, stop, frame, step)
            if trap is not None and trap.trap is Trap.WATCHPOINT and not step:
                out = self._out_of_buffered_call(task, frame)
                if out is not None:
                    trap = Interruption(Trap.WATCHPOINT, trap.watch, tid=tid, call_site=out[0],
                                        before_breakpoint=out[1])
            if (preempt and trap is not None and trap.trap is Trap.STEP
                    and self._at_preemption(task, frame)):
                self._arrived.add(tid)  # the step ended at the moment: it is applied
                break
            if trap is not None:
                return trap
        if tid in self._buffered and not isinstance(frame, FlushFrame):
            if isinstance(frame, ExitFrame) and not self._needs_running(frame):
                # killed after buffered calls, at a point replay cannot place: they go
                # unreplayed, and nothing of them outlives the process
                self._buffered.pop(tid)
            else:
                self._check_buffer_consumed(task, frame)
        if not entered and isinstance(frame, SyscallFrame | SyscallEntryFrame):
            self._switch_buffer_at_syscall(task, frame)
        if not entered and followed and self._catches(frame):
            return Interruption(Trap.SYSCALL_ENTRY, tid=tid)
        if isinstance(frame, SyscallEntryFrame):
            self._check_regs(task, frame)  # it stays arrived: its SyscallFrame comes later
            self.applied += 1
            return Interruption(Trap.STEP, tid=tid) if step else None
        if (isinstance(frame, ExitFrame) and self.stop_at_end and followed
                and self._ends_process(task, frame)):
            self.stop_at_end = False
            return Interruption(Trap.END, tid=tid)
        if (isinstance(frame, SignalFrame) and self.stop_at_signals and followed
                and self._signal_reported != self.applied):
            self._signal_reported = self.applied
            return Interruption(Trap.SIGNAL, signo=frame.signo, tid=tid)
        self._arrived.discard(tid)  # (an application may leave it at the next arrival)
        self._apply(task, frame)
        self.applied += 1
        if isinstance(frame, FlushFrame):
            self._trap_buffered_calls()
        self._maybe_begin_following()
        if isinstance(frame, ExecFrame) and followed and self.stop_at_exec:
            return Interruption(Trap.EXEC, tid=tid)
        watch = self._watch_written_by(frame) if followed else None
        if watch is not None:
            return Interruption(Trap.WATCHPOINT, watch, tid=tid)
        if followed and isinstance(frame, SyscallFrame) and self._catches(frame):
            return Interruption(Trap.SYSCALL_RETURN, tid=tid)
        return Interruption(Trap.STEP, tid=tid) if step else None

    def _out_of_buffered_call(self, task: Task, frame: Frame) -> tuple[int, bool] | None:
        """After a watchpoint fired in a buffered call (the preload library copying the
        recorded output into the program's memory, where without the buffer the kernel
        writes and _watch_written_by reports the stop after the syscall): runs the thread
        on, with the watchpoints off, to where the call returns to the code that made it,
        so that gdb sees the stop there in both kinds of recording, or to an armed
        breakpoint on the way (a mark or a step of the debugger's may be inside the call),
        before its int3. Returns where that code entered the call (syscallbuf.call_site: a
        reverse search stops there, as at the syscall instruction without the buffer) and
        whether the thread stands on an armed breakpoint; None, leaving the thread where
        it is, outside a buffered call."""
        regs = task.regs()
        if not syscallbuf.in_call(task):
            return None
        bps = self.breakpoints
        found = syscallbuf.buffered_call(task, regs.rip, regs.rsp,
                                         lambda addr, n: bps.shadow(addr, task.read(addr, n)))
        if found is None:
            return None
        site, resume = found
        temporary = resume not in bps.software
        original = task.read(resume, 1)
        task.set_debugreg(DR7, 0)
        if temporary:
            task.write(resume, INT3)
        try:
            while True:
                stop = resume_keeping_sigtrap(task, native.PTRACE_SYSEMU)
                if stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGCHLD:
                    continue  # a replayed child really exited
                if stop.kind is StopKind.SYSCALL and task.regs().rip in syscallbuf.CATCH_STOPS:
                    self._leave_stub(task)  # the return stub, trapping for a catch: the
                    continue  # watchpoint is the stop (without the buffer too)
                regs = task.regs()
                if not (stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGTRAP
                        and regs.rip - 1 in (resume, *bps.software)):
                    raise self._diverged(frame, "a buffered call did not return to its "
                                         f"caller at {resume:#x}: {_describe(stop)}")
                regs.rip -= 1
                task.set_regs(regs)
                break
        finally:
            if temporary:
                task.write(resume, original)
        bps.apply_debug_registers(task)
        return site, regs.rip in bps.software

    @staticmethod
    def _leave_stub(task: Task) -> None:
        """Before a thread that stands at a trapping stub's syscall stop runs on: rax as
        the stub leaves it when it makes no syscall (the number the library passed), so
        that what follows is the same whether the stubs trapped or not."""
        regs = task.regs()
        if regs.rip in syscallbuf.CATCH_STOPS and regs.rax != regs.orig_rax:
            regs.rax = regs.orig_rax
            task.set_regs(regs)

    def _at_buffered_call(self, task: Task, regs: Registers, tid: int, step: bool
                          ) -> Interruption | None:
        """A thread stopped at a trapping stub: the entry of a buffered call (rax -ENOSYS,
        orig_rax its number, its outputs not written yet) or its return (rax set to the
        recorded result now, its outputs written). Reported when stop_at_syscalls catches
        the call (one the recorder abandoned, made again traced, is caught there), as a
        step's end when stepping; None: replay goes on."""
        returning = syscallbuf.CATCH_STOPS[regs.rip]
        number, result = syscallbuf.current_call(task)
        if returning:
            regs.rax = result
            task.set_regs(regs)
        catch = self.stop_at_syscalls
        if catch is not None and result != syscallbuf.ABANDONED and catch(number):
            return Interruption(Trap.SYSCALL_RETURN if returning else Trap.SYSCALL_ENTRY,
                                tid=tid)
        return Interruption(Trap.STEP, tid=tid) if step else None

    def _catches(self, frame: Frame) -> bool:
        """Whether frame is a syscall (or its entry) that stop_at_syscalls catches."""
        return (self.stop_at_syscalls is not None
                and isinstance(frame, SyscallFrame | SyscallEntryFrame)
                and self.stop_at_syscalls(Registers.from_bytes(frame.regs).syscallno))

    def _watch_written_by(self, frame: Frame) -> Watchpoint | None:
        """The first write (or access) watchpoint on memory the syscall just replayed
        wrote: the debug registers see only the CPU's stores, not the kernel's (nor
        replay's), so a read() into a watched buffer is reported here, as rr does."""
        if not isinstance(frame, SyscallFrame):
            return None
        for watch in self.breakpoints.watches:
            if watch.kind in (WatchKind.WRITE, WatchKind.ACCESS) and any(
                    w.addr < watch.addr + watch.length and watch.addr < w.addr + len(w.data)
                    for w in frame.writes):
                return watch
        return None

    def _check_buffer_consumed(self, task: Task, frame: Frame) -> None:
        """At the stop after a flush, the library must have used exactly the recorded
        records (then, as the recorder did, the buffer is emptied), and the signal mask
        its rt_sigprocmask calls left is set (they made no syscall here)."""
        expected = self._buffered.pop(frame.tid)
        used, mask = syscallbuf.take_replayed(task)
        if used != expected:
            raise self._diverged(frame, f"the buffered syscalls used {used} bytes of "
                                 f"records, not the {expected} recorded")
        if mask is not None:
            native.set_sigmask(task.tid, mask)
        self._trap_buffered_calls()  # before the event: a fork's child copies the stubs

    def _at_preemption(self, task: Task, frame: PreemptFrame) -> bool:
        """Whether the task is at the moment frame recorded (registers, then memory)."""
        regs, target = task.regs(), Registers.from_bytes(frame.regs)
        return regs.rip == target.rip and _matches(task, regs, target, frame)

    def _search_preemption(self, task: Task, frame: PreemptFrame) -> Stop | None:
        """Runs a thread to the first visit of the recorded pc whose registers and memory
        hash match the recording (the moment the recorder stopped it): None when there,
        else the stop that came first (a breakpoint, an interrupt, a divergence), after
        which the search can go on from wherever the thread is."""
        target = Registers.from_bytes(frame.regs)
        length = frame.patch_length
        debugger_int3s = self.breakpoints.software if self._followed(task) else {}
        if len(frame.stack) > STACK_BELOW + STACK_ABOVE or len(frame.stack) % 8:
            raise self._diverged(frame, f"the recorded stack ({len(frame.stack)} bytes) is not "
                                 "what a recorder writes: a damaged trace?")
        if length and not any(target.rip <= bp < target.rip + length for bp in debugger_int3s):
            window = read_window(task, target.rip)
            if ((window is None or window.length != length)
                    and not writable_code(task, target.rip, length)):
                # (writable code may be written before the moment: VisitSearch waits)
                raise self._diverged(frame, f"the code at {target.rip:#x} is not the "
                                     f"{length} bytes of instructions recorded")
            now = task.regs()
            while target.rip < now.rip < target.rip + length:
                # stopped inside the window (its last preemption): out of it first, or it
                # would resume in the middle of the jump
                stop = self._step_unseen(task)
                if stop is not None:
                    return stop
                now = task.regs()
            changing = [name for name in REGISTER_NAMES
                        if getattr(now, name) != getattr(target, name)]
            search = open_search(task, target.rip, length, target, changing, frame.stack,
                                 frame.watched)
            if search is not None:
                return self._search_with_stub(task, frame, target, search)
        return self._search_with_int3(task, frame, target, target.rip in debugger_int3s)

    @staticmethod
    def _step_unseen(task: Task) -> Stop | None:
        """Single-steps task for the replay's own purposes: None once done, else the stop
        that came instead (a watchpoint that fired during the step included, for
        _classify). Without Breakpoints.forget_step the debugger's next breakpoint hit
        went unreported and the thread ran on from the middle of the instruction."""
        stop = resume_keeping_sigtrap(task, native.PTRACE_SYSEMU_SINGLESTEP)
        if not (stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGTRAP):
            return stop
        return None if Breakpoints.forget_step(task) else stop

    def _search_with_stub(self, task: Task, frame: PreemptFrame, target: Registers,
                          search: VisitSearch) -> Stop | None:
        """The search at the program's speed: the window jumps to a stub that traps when
        the general registers match (kernel/visit_search.py)."""
        try:
            search.install()
            while True:
                stop = self._run(frame.tid, task, False)
                if stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGCHLD:
                    continue
                if (stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGSEGV
                        and search.the_program_writes(task.siginfo())):
                    search.remove()  # the store goes to the code, as recorded
                    stop = self._step_unseen(task)
                    while stop is None and search.occupied(task.regs().rip):
                        stop = self._step_unseen(task)  # out of the code refresh() rewrites
                    if stop is not None:
                        return stop
                    search.refresh()
                    search.install()
                    continue
                if stop.kind is not StopKind.SIGNAL or stop.signo != signal.SIGTRAP:
                    return stop
                regs = task.regs()
                if not search.trapped(regs):
                    return stop
                regs = search.program_registers(regs, target)
                search.remove()
                if _matches(task, regs, target, frame):
                    task.set_regs(regs)
                    return None
                search.install()
                regs.rip = search.resume_address
                task.set_regs(regs)
        finally:
            search.close()

    def _search_with_int3(self, task: Task, frame: PreemptFrame, target: Registers,
                          debugger_int3: bool) -> Stop | None:
        """The search with an int3 at the pc (the debugger's, if it has one there): a
        stop at every visit."""
        pc = target.rip
        original = task.read(pc, 1)
        patched = False
        try:
            for _ in range(PREEMPTION_SEARCH_LIMIT):
                if not debugger_int3:
                    task.write(pc, INT3)
                    patched = True
                stop = self._run(frame.tid, task, False)
                if stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGCHLD:
                    continue
                if not (stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGTRAP
                        and task.regs().rip == pc + 1):
                    return stop
                regs = task.regs()
                regs.rip = pc
                if patched:
                    task.write(pc, original)
                    patched = False
                if _matches(task, regs, target, frame):
                    task.set_regs(regs)
                    return None
                if debugger_int3:
                    return stop  # the debugger's breakpoint, hit before the moment
                task.set_regs(regs)
                stop = self._step_unseen(task)
                if stop is not None:
                    return stop
            raise self._diverged(frame, f"no visit of {pc:#x} in {PREEMPTION_SEARCH_LIMIT} "
                                 "matches the recorded state (a loop that changes state at "
                                 "every turn cannot be placed without a PMU)")
        finally:
            if patched:
                task.write(pc, original)

    def _needs_running(self, frame: Frame) -> bool:
        if isinstance(frame, FlushFrame):
            return False
        if isinstance(frame, SignalFrame):
            return frame.deterministic
        if isinstance(frame, ExitFrame):
            task = self.tasks[frame.tid]
            return (not self._signals.get(frame.tid) and task.tgid not in self._group_exits
                    and not _killed(frame.status) and not self._killed_by_exec(task, frame))
        return True

    def _killed_by_exec(self, task: Task, frame: ExitFrame) -> bool:
        """Whether task's exit (status 0) is the kill of a sibling's execve, whose entry
        the sibling stands at: the exec kills task wherever it is; replay ends it there
        with an exit(0), as its memory goes with the exec."""
        return frame.status == 0 and any(
            t.tgid == task.tgid and t is not task and tid in self._arrived
            and t.regs().syscallno in EXECVE for tid, t in self.tasks.items())

    def _take_over_leader(self, frame: ExecFrame) -> Task | None:
        """An exec recorded under the tid of a leader that has exited: a thread of its
        process made the execve, which gives it the leader's tid. Its other threads have
        been ended (their exits come before the exec), so that thread is the one left;
        it goes on under the leader's recorded tid. None: no such leader."""
        leader = self._lingering.pop(frame.tid, None)
        if leader is None:
            return None
        left = [tid for tid, t in self.tasks.items() if t.tgid == leader.tgid]
        if len(left) != 1:
            raise self._diverged(frame, f"{len(left)} threads left in the process at its "
                                 "exec, not the one that makes it")
        former = left[0]
        task = self.tasks.pop(former)
        self.tasks[frame.tid] = task
        for table in (self._signals, self._buffered):
            if former in table:
                table[frame.tid] = table.pop(former)
        if former in self._arrived:
            self._arrived.discard(former)
            self._arrived.add(frame.tid)
        if self.task is leader:
            self.task = task
        if frame.tid == self.main_tid:
            self.exit_status = None  # the leader's own exit did not end the process
        return task

    def _run(self, tid: int, task: Task, step: bool) -> Stop:
        self._running = task
        try:
            return resume_keeping_sigtrap(
                task, native.PTRACE_SYSEMU_SINGLESTEP if step else native.PTRACE_SYSEMU,
                self._signals.pop(tid, 0))
        finally:
            self._running = None

    def interrupt(self) -> None:
        """Asks a running advance() to stop soon (thread-safe): the tracee gets a SIGSTOP
        that the replay swallows and reports as Trap.INTERRUPT."""
        self.interrupt_requested.set()
        task = self._running
        if task is not None and self.interruptible:
            try:
                native.tgkill(task.tgid, task.tid, signal.SIGSTOP)
            except OSError:
                pass

    def _classify(self, task: Task, stop: Stop, frame: Frame, step: bool
                  ) -> Interruption | None:
        """Turns a stop into an arrival (marks the task arrived) or an interruption."""
        if stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGSTOP:
            if self.interrupt_requested.is_set():
                self.interrupt_requested.clear()
                return Interruption(Trap.INTERRUPT, tid=frame.tid)
            return None  # a late interrupt signal: swallowed
        if stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGTRAP and self._followed(task):
            watch, stepped = self.breakpoints.triggered(task)
            if watch is not None:
                return Interruption(Trap.WATCHPOINT, watch, tid=frame.tid)
            regs = task.regs()
            if not stepped and regs.rip - 1 in self.breakpoints.software:
                regs.rip -= 1
                task.set_regs(regs)
                return Interruption(Trap.BREAKPOINT, tid=frame.tid)
            if stepped:
                if step:
                    return Interruption(Trap.STEP, tid=frame.tid)
                if regs.rip in self.breakpoints.software:
                    # stepping off one breakpoint landed on the next: that is a hit
                    return Interruption(Trap.BREAKPOINT, tid=frame.tid)
                return None
        expected = self._arrival_kind(frame)
        if (stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGCHLD
                and expected[1] != signal.SIGCHLD):
            return None  # a replayed child really exited; the recording says what follows
        if isinstance(frame, PreemptFrame):  # arrival there is _at_preemption's to say
            raise self._diverged(frame, f"did not reach the preemption point: {_describe(stop)}")
        if stop.kind is not expected[0] or (expected[1] and stop.signo != expected[1]):
            raise self._diverged(frame, f"expected {expected[2]}, got {_describe(stop)}"
                                 + _signal_details(task, stop))
        self._arrived.add(frame.tid)
        return None

    @staticmethod
    def _arrival_kind(frame: Frame) -> tuple[StopKind, int, str]:
        if isinstance(frame, InstructionTrapFrame):
            return StopKind.SIGNAL, signal.SIGSEGV, "the rdtsc fault"
        if isinstance(frame, CpuidFrame):
            return StopKind.SIGNAL, signal.SIGSEGV, "the cpuid fault"
        if isinstance(frame, SignalFrame):
            return StopKind.SIGNAL, frame.signo, f"signal {frame.signo}"
        return StopKind.SYSCALL, 0, "a syscall"

    # -- helpers ----------------------------------------------------------------------
    def _diverged(self, frame: Frame, detail: str) -> DivergenceError:
        index = self.applied
        previous = (f"; the previous event, {index - 1}, was {event_name(self.frames[index - 1])}"
                    if index > 0 else "")
        return DivergenceError(f"replay diverged at event {index} ({event_name(frame)}, tid "
                               f"{frame.tid}): {detail}{previous}")

    def _check_regs(self, task: Task, frame: Frame) -> Registers:
        now = task.regs()
        diffs = now.differences(Registers.from_bytes(frame.regs))  # type: ignore[union-attr]
        if diffs:
            raise self._diverged(frame, "registers differ (replay != recording): "
                                 + ", ".join(diffs))
        return now

    # -- applying events ----------------------------------------------------------------
    def _apply(self, task: Task, frame: Frame) -> None:
        if isinstance(frame, SyscallFrame):
            self._apply_syscall(task, frame)
        elif isinstance(frame, ExecFrame):
            self._replay_exec(task, frame)
        elif isinstance(frame, SignalFrame):
            self._apply_signal(task, frame)
        elif isinstance(frame, InstructionTrapFrame):
            regs = self._check_regs(task, frame)
            apply_rdtsc(task, regs, frame.value, frame.aux, self._code(task, regs.rip, 3) == RDTSCP)
        elif isinstance(frame, CpuidFrame):
            regs = self._check_regs(task, frame)
            if self._code(task, regs.rip, len(CPUID)) != CPUID:
                raise self._diverged(frame, f"no cpuid instruction at {regs.rip:#x}")
            complete_cpuid(task, regs, frame.values)
        elif isinstance(frame, ExitFrame):
            self._apply_exit(task, frame)
        elif isinstance(frame, PreemptFrame):
            self._check_regs(task, frame)
        elif isinstance(frame, FlushFrame):
            syscallbuf.put_records(task, frame.data)
            self._buffered[frame.tid] = len(frame.data) - syscallbuf.PREFIX
        if isinstance(frame, (ExecFrame, ExitFrame)) and frame.tid in self._buffer_returns:
            self._return_buffer(self._buffer_returns.pop(frame.tid))

    def _switch_buffer_at_syscall(self, task: Task, frame: SyscallFrame | SyscallEntryFrame
                                  ) -> None:
        """At a syscall's arrival, the buffer goes on or off where the recorder switched it,
        at the syscall's entry: on for a vfork parent whose child has given it back
        (_release_vfork_parent), off for a clone whose child will share the memory
        (_stop_buffering_for_clone), whose decision to give it back waits for the clone's
        application."""
        if (not self.reader.header.syscallbuf
                or self._vfork_buffer_return != VFORK_BUFFER_AT_PARENT_SYSCALL):
            return  # (older traces: see _replay_clone)
        if frame.tid in self._buffer_returning:
            self._buffer_returning.discard(frame.tid)
            syscallbuf.enable(task)
        regs = Registers.from_bytes(frame.regs)
        spec = SPECS.get(regs.syscallno)
        if spec is None or spec.special != "clone":
            return
        flags = clone_flags(task, regs)
        if clone_disables_buffer(flags):
            returning = {t for t in self._buffer_returning if self._in_process(t, task.tgid)}
            self._buffer_returning -= returning  # (this child gives it back instead)
            taken_over = bool(returning) or any(self._buffer_sharers(task.tgid))
            self._clone_returns[frame.tid] = vfork_returns_buffer(flags, task, taken_over)
            syscallbuf.disable(task)

    def _buffer_sharers(self, tgid: int) -> list[bool]:
        """Whether each of what shares process tgid's memory and buffer gives the buffer
        back, as the recorder saw them (RecordSession._buffer_sharers): its vfork children
        that return it, not yet exec'd or exited, and its clones arrived at, not applied."""
        return ([True for p in self._buffer_returns.values() if self._in_process(p, tgid)]
                + [returns for t, returns in self._clone_returns.items()
                   if self._in_process(t, tgid)])

    def _in_process(self, tid: int, tgid: int) -> bool:
        """Whether recorded thread tid is alive in process tgid."""
        task = self.tasks.get(tid)
        return task is not None and task.tgid == tgid

    def _return_buffer(self, parent_tid: int) -> None:
        """A vfork child that returns its parent's buffer has exec'd or exited: as the
        recorder did, the last one to share the memory gives it back, at the parent's next
        syscall event (or, in traces from before that, at once)."""
        parent = self.tasks.get(parent_tid)
        if parent is None or self._buffer_sharers(parent.tgid):
            return  # another vfork child, or a clone under way, shares the memory still
        if self._vfork_buffer_return == VFORK_BUFFER_AT_CHILD_EXEC:
            syscallbuf.enable(parent)
        else:
            self._buffer_returning.add(parent_tid)

    def _code(self, task: Task, addr: int, length: int) -> bytes:
        """The program's code at addr: the debugger's int3s there are hidden (a step off a
        breakpoint puts its int3 back before the event is applied)."""
        code = task.read(addr, length)
        return self.breakpoints.shadow(addr, code) if self._followed(task) else code

    def _apply_syscall(self, task: Task, frame: SyscallFrame) -> None:
        regs = self._check_regs(task, frame)
        regs.r11 = Registers.from_bytes(frame.regs).r11  # no trap flag from a single step
        nr = regs.syscallno
        spec = SPECS.get(nr)
        mode = spec.replay if spec is not None else Replay.EMULATE
        if nr in EXITS or nr in EXECVE:
            mode = Replay.EMULATE  # a failed exec; a successful one is an ExecFrame
        if _runs_for_real(regs):
            mode = Replay.REAL_KEEP_RESULT
        if (mode is not Replay.EMULATE and spec.special not in ("clone", "sigreturn")
                and _failed(regs, frame.result)):
            mode = Replay.EMULATE  # it changed nothing when recorded (e.g. ENOMEM)
        if mode is Replay.EMULATE:
            for w in frame.writes:
                task.write(w.addr, w.data)
            regs.rax = frame.result
            task.set_regs(regs)
        elif spec is not None and spec.special == "clone":
            self._replay_clone(task, regs, frame)
        elif spec is not None and spec.special in ("shmat", "shmdt"):
            self._replay_shm(task, regs, frame)
        elif spec is not None and spec.special == "sigreturn":
            call = regs.copy()
            call.rip, call.rax = SYSCALL_SITE, nr
            task.set_regs(run_syscall(task, call, returns=False))
        else:
            result = self._execute(task, regs, frame)
            if mode is Replay.REAL and result != frame.result:
                raise self._diverged(frame, f"result {result} != recorded {frame.result}")
            for w in frame.writes:
                task.write(w.addr, w.data)
            regs.rax = frame.result
            task.set_regs(regs)
            if nr in MAPPING_CHANGES and self._followed(task) and (
                    self.breakpoints.software or self.breakpoints.pending):
                self.breakpoints.reinsert(task)
        if frame.stream:
            output = written_bytes(task, regs, frame.result)
            if (self.reader.version >= OUTPUT_CRC_SINCE
                    and zlib.crc32(output) != frame.output_crc):
                stream = "stdout" if frame.stream == 1 else "stderr"
                raise self._diverged(frame, f"the program wrote other bytes to {stream} "
                                            f"than recorded: {output[:60]!r}")
            if self.echo is not None and self.applied >= self.echoed:
                self.echo(frame.stream, output)
        self.echoed = max(self.echoed, self.applied + 1)

    def _replay_shm(self, task: Task, regs: Registers, frame: SyscallFrame) -> None:
        """shmat and shmdt of System V shared memory. The segments of the recording do not
        exist in replay: each is a memfd of rrgdb's (by its recorded id, filled with its
        recorded contents at its first attach), mapped MAP_SHARED at the recorded address,
        so the processes that attached it share it again; shmdt unmaps it."""
        if regs.syscallno == NUMBERS["shmat"]:
            start, contents = frame.result, b"".join(w.data for w in frame.writes)
            if regs.arg(0) not in self._segments:
                self._segments[regs.arg(0)] = _memfd("rrgdb-shm", io.BytesIO(contents))
            fd = self._tracee_fd(task, self._segments[regs.arg(0)], writable=True)
            prot = PROT_READ if regs.arg(2) & SHM_RDONLY else PROT_READ | PROT_WRITE
            addr = inject(task, "mmap", start, len(contents), prot, MAP_SHARED | MAP_FIXED,
                          fd, 0)
            if addr != start:
                raise self._diverged(frame, f"cannot attach the segment at {start:#x}")
        else:
            mapping = next((m for m in read_maps(task.tid) if m.start == regs.arg(0)), None)
            if mapping is not None:
                inject(task, "munmap", mapping.start, mapping.end - mapping.start)
        regs.rax = frame.result
        task.set_regs(regs)

    def _replay_clone(self, task: Task, regs: Registers, frame: SyscallFrame) -> None:
        """fork/vfork/clone/clone3 for real, as a plain process copy that does not suspend
        the parent (replay order already puts the parent after its vfork child's exec)."""
        if frame.result <= 0:  # it failed when recorded
            if self._clone_returns.pop(frame.tid, False):
                self._return_buffer(frame.tid)  # no child is to give it back
            regs.rax = frame.result
            task.set_regs(regs)
            return
        nr = regs.syscallno
        flags = clone_flags(task, regs)
        call = regs.copy()
        call.rip = SYSCALL_SITE
        if nr == NUMBERS["clone3"]:
            args = bytearray(task.read_exact(regs.arg(0), min(regs.arg(1), 88)))
            args[0:8] = (flags & ~CLONE_VFORK).to_bytes(8, "little")
            task.write(SCRATCH_DATA, bytes(args))
            call.set_arg(0, SCRATCH_DATA)
            call.rax = nr
            ptid, ctid = (int.from_bytes(args[24:32], "little"),
                          int.from_bytes(args[16:24], "little"))
        else:
            call.rax = NUMBERS["clone"]
            call.set_arg(0, flags & ~(CLONE_VFORK | CLONE_UNTRACED))  # as recorded
            if nr != NUMBERS["clone"]:
                call.set_arg(1, 0)
            ptid, ctid = call.arg(2), call.arg(3)
        lifted = task is self.task and bool(self.breakpoints.software)
        if lifted:
            self.breakpoints.lift(task)
        try:
            _, child = run_forking_syscall(task, call)
        finally:
            if lifted:
                self.breakpoints.reinsert(task)
        if self._clone_returns.pop(frame.tid, False):
            self._buffer_returns[frame.result] = frame.tid
        elif self._vfork_buffer_return != VFORK_BUFFER_AT_PARENT_SYSCALL and (
                clone_disables_buffer(flags)):  # older traces: stopped at the clone's event
            threads = sum(1 for t in self.tasks.values() if t.tgid == task.tgid)
            if (self._vfork_buffer_return == VFORK_BUFFER_AT_CHILD_EXEC and threads == 1
                    and vfork_returns_buffer(flags, task, False)):
                self._buffer_returns[frame.result] = frame.tid
            syscallbuf.disable(task)
        child_regs = regs.copy()
        kernel_view = child.regs()
        child_regs.rax = 0
        child_regs.rsp, child_regs.fs_base = kernel_view.rsp, kernel_view.fs_base
        child.set_regs(child_regs)
        tid_bytes = frame.result.to_bytes(4, "little")
        if flags & CLONE_PARENT_SETTID and ptid:
            task.write(ptid, tid_bytes)
        if flags & CLONE_CHILD_SETTID and ctid:
            child.write(ctid, tid_bytes)
        if flags & CLONE_THREAD:
            child.tgid = task.tgid
            if self._followed(task):
                self.breakpoints.apply_debug_registers(child)  # not inherited by threads
        else:
            self._trace_fds.pop(child.tgid, None)  # a reused pid: not the dead one's fds
        self.tasks[frame.result] = child
        regs.rax = frame.result
        task.set_regs(regs)

    def _execute(self, task: Task, regs: Registers, frame: SyscallFrame) -> int:
        """Runs the syscall for real (mmap of a file maps the trace's copy)."""
        call = regs.copy()
        call.rip = SYSCALL_SITE
        call.rax = regs.syscallno
        if regs.syscallno == MMAP and frame.result >= 0:
            flags = regs.arg(3)
            call.set_arg(0, frame.result)
            if frame.file_id:
                if flags & MAP_SHARED:
                    call.set_arg(4, self._tracee_fd(task, self._working_copy(frame), True))
                else:
                    call.set_arg(4, self._tracee_fd(task, self._trace_copy(frame.copy_id)))
            elif not flags & MAP_ANONYMOUS:  # a device such as /dev/zero
                flags |= MAP_ANONYMOUS
                call.set_arg(4, 2**64 - 1)
            call.set_arg(3, flags | MAP_FIXED)
        after = run_syscall(task, call)
        regs.fs_base, regs.gs_base = after.fs_base, after.gs_base  # arch_prctl's effect
        if regs.syscallno == MMAP and after.result == syscallbuf.BUFFER_ADDR:
            syscallbuf.mark_replay(task)  # the preload library's buffer: replay mode
        task.set_regs(regs)
        return after.result

    def _tracee_fd(self, task: Task, path: str, writable: bool = False) -> int:
        """A descriptor of path in task's process, opened at its first mapping and kept
        (O_CLOEXEC) for the next ones: one injected syscall per mmap instead of three.
        The replayed program cannot see or close it: its own fd syscalls are emulated. A
        process starts with none (its exec closed them; a fork or a resumed checkpoint is
        a new pid, whose inherited ones are simply unused)."""
        fds = self._trace_fds.setdefault(task.tgid, {})
        if path not in fds:
            if len(fds) >= TRACE_FDS_KEPT:  # far below any RLIMIT_NOFILE
                for fd in fds.values():
                    inject(task, "close", fd)
                fds.clear()
            fds[path] = open_in_tracee(task, path, writable)
        return fds[path]

    def _trace_copy(self, file_id: str) -> str:
        return str(self.reader.file_path(file_id))

    def _working_copy(self, frame: SyscallFrame) -> str:
        """The file a MAP_SHARED mapping maps in replay: one copy of the trace's per
        recorded file (frame.file_id names both) for the whole replay, so that the
        processes that mapped the file share it again, and the trace is never written."""
        if frame.file_id not in self._working_copies:
            with open(self.reader.file_path(frame.copy_id), "rb") as original:
                self._working_copies[frame.file_id] = _memfd("rrgdb-file", original)
        return self._working_copies[frame.file_id]

    def _replay_exec(self, task: Task, frame: ExecFrame) -> None:
        regs = task.regs()
        if regs.syscallno not in EXECVE:
            raise self._diverged(frame, f"expected execve, got {syscall_name(regs.syscallno)}")
        path = str(self.reader.file_path(frame.exe_file_id)).encode() + b"\0"
        task.write(SCRATCH_DATA, path)
        call = regs.copy()
        call.rip, call.rax = SYSCALL_SITE, NUMBERS["execve"]
        if regs.syscallno == NUMBERS["execveat"]:
            call.set_arg(1, regs.arg(2))
            call.set_arg(2, regs.arg(3))
        call.set_arg(0, SCRATCH_DATA)
        task.set_regs(call)
        task.resume(native.PTRACE_CONT)
        task.tid = task.tgid  # a thread that execs takes over the leader's tid
        stop = task.wait()
        if stop.kind is not StopKind.EVENT or stop.event != native.PTRACE_EVENT_EXEC:
            raise self._diverged(frame, f"exec of the trace's copy failed: {_describe(stop)}")
        self._apply_exec(task, frame)
        if task is self.task:
            self.breakpoints.software.clear()  # a new program: old addresses mean nothing

    def _apply_exec(self, task: Task, frame: ExecFrame) -> None:
        """At PTRACE_EVENT_EXEC: rebuild the recorded initial state of the new program."""
        task.reopen_memory()
        task.resume(native.PTRACE_SYSCALL)
        stop = task.wait()
        if stop.kind is not StopKind.SYSCALL:
            raise self._diverged(frame, f"expected the execve exit, got {_describe(stop)}")
        map_scratch_page(task, replay=True)
        if task is self.task:
            self._stubs_trap = False
        if self.reader.version >= ALTSTACK_OFF_SINCE:
            disable_alternate_stack(task)  # as the recorder did
        if self._cpuid_faulting:
            set_cpuid_faulting(task, True)
        self._trace_fds.pop(task.tgid, None)
        for m in frame.mappings:
            if m.file_id and m.path != frame.exe_path and m.file_id != frame.exe_file_id:
                fd = self._tracee_fd(task, self._trace_copy(m.file_id))
                addr = inject(task, "mmap", m.start, m.end - m.start, m.prot,
                              MAP_PRIVATE | MAP_FIXED, fd, m.offset)
                if addr != m.start:
                    raise self._diverged(frame, f"cannot map {m.path} at {m.start:#x}")
        layout = [(e.start, e.end, e.prot) for e in read_maps(task.tid) if e.path != "[stack]"]
        recorded = [(m.start, m.end, m.prot) for m in frame.mappings if m.path != "[stack]"]
        if layout != recorded:
            raise self._diverged(frame, "the address space after exec differs from the "
                                 f"recording: {_layout_diff(layout, recorded)}")
        for w in frame.memory:
            task.write(w.addr, w.data)
        # the kernel names a process after its program: the recorded one, not the copy
        task.write(SCRATCH_DATA, os.path.basename(frame.exe_path).encode()[:15] + b"\0")
        inject(task, "prctl", PR_SET_NAME, SCRATCH_DATA)
        task.set_regs(Registers.from_bytes(frame.regs))

    def _apply_signal(self, task: Task, frame: SignalFrame) -> None:
        if not frame.deterministic:
            self._check_regs(task, frame)
            original_mask = self._apply_temporary_mask(task, frame)
            native.tgkill(task.tgid, task.tid, frame.signo)
            stop = self._run(frame.tid, task, False)
            while stop.kind is StopKind.SIGNAL and stop.signo != frame.signo \
                    and stop.signo == signal.SIGCHLD:
                stop = self._run(frame.tid, task, False)  # a real child's exit: not recorded
            if stop.kind is not StopKind.SIGNAL or stop.signo != frame.signo:
                raise self._diverged(frame, f"expected signal {frame.signo}, got "
                                     f"{_describe(stop)}")
            task.set_siginfo(frame.siginfo)
            self._check_regs(task, frame)
            if signal_disposition(task.tid, frame.signo) == "caught":
                if self._enter_handler(task, frame) and original_mask is not None:
                    set_frame_sigmask(task, original_mask)
                return
            if frame.signo in STOP_SIGNALS:
                # a job-control stop changes nothing in the process; the recording
                # resumed it when its SIGCONT came, before its next event
                return
        self._check_regs(task, frame)
        # (before version 9 the recorder delivered a fault with the resume, the handler's
        # frame as the kernel left it, and so does replay)
        if (self.reader.version >= XSAVE_GAPS_ZEROED_SINCE
                and signal_disposition(task.tid, frame.signo) == "caught"):
            self._enter_handler(task, frame)
            return
        self._signals[frame.tid] = frame.signo

    def _enter_handler(self, task: Task, frame: SignalFrame) -> bool:
        """As the recorder did: into the handler now, the frame made the same. False: the
        kernel found no room for the frame, and the thread stands at its SIGSEGV, the
        next event."""
        other = enter_handler(task, frame.signo, fault=frame.deterministic,
                              clear_unwritten=self.reader.version >= XSAVE_GAPS_ZEROED_SINCE)
        if other is None:
            return True
        if not self._frame_refused(task, frame, other):
            raise self._diverged(frame, f"the handler was not entered: {_describe(other)}")
        self._arrived.add(frame.tid)  # where the SIGSEGV's event arrives
        return False

    def _frame_refused(self, task: Task, frame: SignalFrame, stop: Stop) -> bool:
        """Whether stop is the SIGSEGV the kernel forces when it cannot push the frame of
        frame's signal (no room left on the stack: nested handlers, say), as the
        thread's next event in the recording, a synchronous SIGSEGV with the same signal
        number, errno and code (SI_KERNEL), says it did."""
        following = next((f for f in self.frames[self.applied + 1:] if f.tid == frame.tid),
                         None)
        return (stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGSEGV
                and isinstance(following, SignalFrame) and following.deterministic
                and following.signo == signal.SIGSEGV
                and task.siginfo()[:12] == following.siginfo[:12])

    def _apply_temporary_mask(self, task: Task, frame: SignalFrame) -> bytes | None:
        """A signal that interrupted rt_sigsuspend/ppoll/pselect6/epoll_pwait came in
        while the call's own signal mask was in force; replay emulated the call, so that
        mask is put in force now. Returns the mask the handler's return must restore (the
        kernel's saved mask when recording), or None."""
        regs = Registers.from_bytes(frame.regs)
        nr = regs.syscallno
        if nr not in TEMPORARY_MASK_ARG or regs.result not in (-ERESTARTNOHAND, -EINTR):
            return None
        pointer = regs.arg(TEMPORARY_MASK_ARG[nr])
        if nr == NUMBERS["pselect6"] and pointer:
            pointer = task.read_u64(pointer)  # {const sigset_t *, size_t}
        if not pointer:
            return None
        original = blocked_signals(task.tid)
        inject(task, "rt_sigprocmask", SIG_SETMASK, pointer, 0, 8)
        return original.to_bytes(8, "little")

    def _ends_process(self, task: Task, frame: ExitFrame) -> bool:
        """Whether the exit task is at ends its process: it is the last thread, or it takes
        the others with it (exit_group, a fatal signal). A thread's own exit does not."""
        if not any(t.tgid == task.tgid and t is not task for t in self.tasks.values()):
            return True
        if task.tgid in self._group_exits:
            return False  # a sibling's exit_group ended the process: that was its end
        return (os.WIFSIGNALED(frame.status) or bool(self._signals.get(frame.tid))
                or task.regs().syscallno == NUMBERS["exit_group"])

    def _apply_exit(self, task: Task, frame: ExitFrame) -> None:
        group_exit, by_exec = True, False
        if task.tgid in self._group_exits:  # killed by a sibling's exit_group or signal
            stop = task.wait()
        elif self._signals.get(frame.tid):  # a fatal signal is being delivered
            stop = self._run(frame.tid, task, False)
        elif _killed(frame.status):  # SIGKILL from outside: it has no delivery stop
            native.tgkill(task.tgid, task.tid, signal.SIGKILL)
            stop = task.wait()
        else:
            regs = task.regs()
            nr = regs.syscallno
            by_exec = self._killed_by_exec(task, frame)
            if nr not in EXITS and by_exec:
                nr = NUMBERS["exit"]
                regs.set_arg(0, 0)
            if nr not in EXITS:
                raise self._diverged(frame, f"expected exit, got {syscall_name(nr)}")
            group_exit = nr == NUMBERS["exit_group"]
            call = regs.copy()
            call.rip, call.rax = SYSCALL_SITE, nr
            task.set_regs(call)
            task.resume(native.PTRACE_CONT)
            stop = task.wait()
        if stop.kind is not StopKind.EVENT or stop.event != native.PTRACE_EVENT_EXIT:
            raise self._diverged(frame, f"expected the exit, got {_describe(stop)}")
        status = task.event_msg()
        if status != frame.status:
            raise self._diverged(frame, f"exit status {status:#x} != recorded "
                                 f"{frame.status:#x}")
        del self.tasks[frame.tid]
        task.resume(native.PTRACE_CONT)
        siblings = any(t.tgid == task.tgid for t in self.tasks.values())
        if siblings and group_exit:
            # An exit_group kills the other threads: each stops at its exit, which its own
            # ExitFrame then collects.
            self._group_exits.add(task.tgid)
        if siblings and task.tid == task.tgid:
            self._lingering[frame.tid] = task  # a leader is reaped after its threads
        else:
            final = task.wait()
            if not final.finished:
                raise self._diverged(frame, f"the tracee did not exit: {_describe(final)}")
        if not siblings:  # the process is gone, its leader last
            for tid in [tid for tid, t in self._lingering.items() if t.tgid == task.tgid]:
                self._lingering.pop(tid).wait()
            self._group_exits.discard(task.tgid)
        if frame.tid == self.main_tid and not by_exec:  # a thread's execve goes on
            self.exit_status = frame.status


def _memfd(name: str, contents: BinaryIO) -> str:
    """A memfd of rrgdb's (kept open for the replay) filled with contents; the path by
    which a tracee opens it."""
    memfd = os.memfd_create(name, os.MFD_CLOEXEC)
    with open(memfd, "wb", closefd=False) as copy:
        shutil.copyfileobj(contents, copy)
    return f"/proc/{os.getpid()}/fd/{memfd}"


def _patching_windows(frames: list[Frame]) -> dict[int, list[range]]:
    """Where each thread's preload library sets up: from its mmap of the syscall buffer
    through the prctl and mprotect calls that follow it in that thread (seccomp, then the
    patching of libc and the loader), as values of ReplaySession.applied."""
    windows: dict[int, list[range]] = {}
    for index, frame in enumerate(frames):
        if not (isinstance(frame, SyscallFrame) and frame.result == syscallbuf.BUFFER_ADDR
                and Registers.from_bytes(frame.regs).syscallno == MMAP):
            continue
        last = index
        for later in range(index + 1, len(frames)):
            other = frames[later]
            if other.tid != frame.tid:
                continue
            if not (isinstance(other, SyscallFrame)
                    and Registers.from_bytes(other.regs).syscallno in PATCHING):
                break
            last = later
        windows.setdefault(frame.tid, []).append(range(index + 1, last + 1))
    return windows


def _matches(task: Task, regs: Registers, target: Registers, frame: PreemptFrame) -> bool:
    """Whether a task with regs is at the moment frame recorded (target: its registers);
    its watched words are compared before the whole memory is hashed."""
    return (not regs.differences(target)
            and all(task.read(address, 8) == value
                    for address, value in struct.iter_unpack("<Q8s", frame.watched))
            and memory_hash(task) == frame.memory_hash)


def _runs_for_real(regs: Registers) -> bool:
    """Calls emulated in general but run for real with these arguments: setting the
    process's RLIMIT_STACK (a stack overflow must fault at the recorded depth) and
    PR_SET_NAME (the thread's name, which gdb shows)."""
    nr = regs.syscallno
    if nr == NUMBERS["setrlimit"]:
        return regs.arg(0) == RLIMIT_STACK and regs.arg(1) != 0
    if nr == NUMBERS["prctl"]:
        return regs.arg(0) == PR_SET_NAME
    return (nr == NUMBERS["prlimit64"] and regs.arg(0) == 0 and regs.arg(1) == RLIMIT_STACK
            and regs.arg(2) != 0)


def _killed(status: int) -> bool:
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def _failed(regs: Registers, result: int) -> bool:
    """Whether a syscall executed for real in replay failed (and so did nothing) when it
    was recorded; brk reports failure by returning the old break. An rt_sigprocmask that
    could not write the old mask (EFAULT) had set the new one first: it is run for real
    (with the same arguments it fails the same way after the same change)."""
    if regs.syscallno == BRK:
        return regs.arg(0) != 0 and result != regs.arg(0)
    if regs.syscallno == NUMBERS["rt_sigprocmask"] and result == -errno.EFAULT:
        return False
    return result < 0


def event_name(frame: Frame) -> str:
    """A short name for a recorded event: the syscall's name or the event kind."""
    if isinstance(frame, SyscallFrame):
        return syscall_name(Registers.from_bytes(frame.regs).syscallno)
    if isinstance(frame, SignalFrame):
        return f"signal {signal_name(frame.signo)}"
    return {ExecFrame: "exec", InstructionTrapFrame: "rdtsc", CpuidFrame: "cpuid",
            ExitFrame: "exit", FlushFrame: "buffered syscalls"}.get(
        type(frame), type(frame).__name__)


def _describe(stop: Stop) -> str:
    if stop.kind is StopKind.SIGNAL:
        return f"signal {signal_name(stop.signo)}"
    if stop.kind is StopKind.EVENT:
        return f"ptrace event {stop.event}"
    if stop.kind is StopKind.EXITED:
        return f"exit with status {os.WEXITSTATUS(stop.status)}"
    if stop.kind is StopKind.KILLED:
        return f"death by signal {stop.signo}"
    return "a syscall stop"


def _signal_details(task: Task, stop: Stop) -> str:
    """Where an unexpected signal stop came, for the divergence message: its si_code, the
    pc, and for a SIGTRAP the debug status register (which tells a step, a breakpoint, a
    watchpoint, or none of them)."""
    if stop.kind is not StopKind.SIGNAL:
        return ""
    try:
        code, = struct.unpack_from("<i", task.siginfo(), 8)
        details = f" (si_code {code} at {task.regs().rip:#x}"
        if stop.signo == signal.SIGTRAP:
            details += f", DR6 {task.get_debugreg(6):#x}"
    except OSError:
        return ""
    return details + ")"


def _layout_diff(now: list[tuple[int, int, int]], recorded: list[tuple[int, int, int]]) -> str:
    extra = sorted(set(now) - set(recorded))
    missing = sorted(set(recorded) - set(now))
    parts = [f"unexpected {s:#x}-{e:#x}" for s, e, _ in extra[:3]]
    parts += [f"missing {s:#x}-{e:#x}" for s, e, _ in missing[:3]]
    return ", ".join(parts)
