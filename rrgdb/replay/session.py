"""ReplaySession: re-executes a recorded program from its trace, deterministically.

Syscalls are emulated under PTRACE_SYSEMU (the recorded result and memory writes are
applied) except those that shape the address space or signal state, which are executed
for real. Registers are compared with the recording at every event: a mismatch raises
DivergenceError, never goes unnoticed.
"""

from __future__ import annotations

import os
import signal
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from rrgdb import native
from rrgdb.kernel.address_space import MAP_PRIVATE, read_maps
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.remote_syscalls import (
    SCRATCH_DATA,
    SYSCALL_SITE,
    inject,
    map_scratch_page,
    open_in_tracee,
    run_syscall,
)
from rrgdb.kernel.task import Stop, StopKind, Task
from rrgdb.record.session import RDTSCP, apply_rdtsc
from rrgdb.syscall_numbers import NUMBERS
from rrgdb.syscalls import SPECS, Replay, syscall_name
from rrgdb.trace import (
    ExecFrame,
    ExitFrame,
    Frame,
    InstructionTrapFrame,
    SignalFrame,
    SyscallFrame,
    TraceReader,
)

REPLAY_OPTIONS = (native.PTRACE_O_TRACESYSGOOD | native.PTRACE_O_TRACEEXEC
                  | native.PTRACE_O_TRACEEXIT | native.PTRACE_O_EXITKILL)
MMAP = NUMBERS["mmap"]
MAP_SHARED, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x10, 0x20
EXECVE = {NUMBERS["execve"], NUMBERS["execveat"]}
EXITS = {NUMBERS["exit"], NUMBERS["exit_group"]}
WRITEV = {NUMBERS["writev"], NUMBERS["pwritev"]}

Echo = Callable[[int, bytes], None]


class DivergenceError(Exception):
    """The replay does not follow the recording (a bug in rrgdb or a changed environment)."""


def write_to_fd(stream: int, data: bytes) -> None:
    """Echoes recorded program output to our own stdout/stderr."""
    view = memoryview(data)
    while view:
        view = view[os.write(stream, view):]


class ReplaySession:
    """Replays one trace, one event (frame) at a time."""

    def __init__(self, trace_dir: Path, echo: Echo | None = write_to_fd) -> None:
        self.reader = TraceReader(trace_dir.resolve())
        self.echo = echo
        self.task: Task | None = None
        self._frames: Iterator[Frame] = iter(())
        self.event = -1  # index of the last replayed frame
        self.exit_status: int | None = None
        self._signal = 0  # signal to deliver at the next resume
        self._previous: Frame | None = None

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Spawns the tracee and replays the initial exec (event 0)."""
        self._frames = iter(self.reader.frames())
        first = next(self._frames, None)
        if not isinstance(first, ExecFrame):
            raise DivergenceError("the trace does not start with an exec event")
        exe = str(self.reader.file_path(first.exe_file_id))
        pid = native.spawn(exe, first.argv, first.envp, "/", self.reader.header.rlimit_stack,
                           True, -1)
        task = self.task = Task(pid)
        stop = task.wait()
        if stop.kind is not StopKind.SIGNAL or stop.signo != signal.SIGSTOP:
            raise DivergenceError(f"replay tracee did not start: {stop}")
        native.ptrace(native.PTRACE_SETOPTIONS, pid, 0, REPLAY_OPTIONS)
        task.resume(native.PTRACE_CONT)
        stop = task.wait()
        if stop.kind is not StopKind.EVENT or stop.event != native.PTRACE_EVENT_EXEC:
            raise DivergenceError(f"replay tracee could not exec {exe}: {stop}")
        self._apply_exec(task, first)
        self.event = 0
        self._previous = first

    def close(self) -> None:
        """Ends the tracee (by pid) if it is still alive."""
        if self.task is not None:
            self.task.kill()

    def run_to_end(self) -> int:
        """Replays every remaining event; returns the recorded raw wait status."""
        while self.exit_status is None:
            frame = next(self._frames, None)
            if frame is None:
                raise DivergenceError(f"the trace ended at event {self.event} "
                                      "before the program exited")
            self.replay_frame(frame)
        return self.exit_status

    def replay_frame(self, frame: Frame) -> None:
        """Advances the tracee through one recorded event."""
        assert self.task is not None
        self.event += 1
        if isinstance(frame, SyscallFrame):
            self._replay_syscall(self.task, frame)
        elif isinstance(frame, ExecFrame):
            self._replay_exec(self.task, frame)
        elif isinstance(frame, SignalFrame):
            self._replay_signal(self.task, frame)
        elif isinstance(frame, InstructionTrapFrame):
            self._replay_rdtsc(self.task, frame)
        elif isinstance(frame, ExitFrame):
            self._replay_exit(self.task, frame)
        else:
            raise DivergenceError(f"event {self.event}: unknown frame {type(frame).__name__}")
        self._previous = frame

    # -- helpers ----------------------------------------------------------------------
    def _diverged(self, what: str, detail: str) -> DivergenceError:
        assert self.task is not None
        previous = (f"; the previous event, {self.event - 1}, was {event_name(self._previous)}"
                    if self._previous is not None else "")
        return DivergenceError(f"replay diverged at event {self.event} ({what}, tid "
                               f"{self.task.tid}): {detail}{previous}")

    def _check_regs(self, task: Task, recorded: bytes, what: str) -> Registers:
        now = task.regs()
        diffs = now.differences(Registers.from_bytes(recorded))
        if diffs:
            raise self._diverged(what, "registers differ (replay != recording): "
                                 + ", ".join(diffs))
        return now

    def _resume_to_stop(self, task: Task) -> Stop:
        task.resume(native.PTRACE_SYSEMU, self._signal)
        self._signal = 0
        return task.wait()

    def _expect(self, stop: Stop, kind: StopKind, what: str, signo: int = 0) -> None:
        if stop.kind is not kind or (signo and stop.signo != signo):
            raise self._diverged(what, f"expected a {kind.value} stop, got {_describe(stop)}")

    # -- events -----------------------------------------------------------------------
    def _replay_syscall(self, task: Task, frame: SyscallFrame) -> None:
        recorded = Registers.from_bytes(frame.regs)
        nr = recorded.syscallno
        name = syscall_name(nr)
        self._expect(self._resume_to_stop(task), StopKind.SYSCALL, name)
        regs = self._check_regs(task, frame.regs, name)
        spec = SPECS.get(nr)
        mode = spec.replay if spec is not None else Replay.EMULATE
        if nr in EXITS or nr in EXECVE:
            mode = Replay.EMULATE  # a failed exec; a successful one is an ExecFrame
        if mode is Replay.EMULATE:
            for w in frame.writes:
                task.write(w.addr, w.data)
            regs.rax = frame.result
            task.set_regs(regs)
        elif spec is not None and spec.special == "sigreturn":
            call = regs.copy()
            call.rip, call.rax = SYSCALL_SITE, nr
            task.set_regs(run_syscall(task, call, returns=False))
        else:
            result = self._execute(task, regs, frame)
            if mode is Replay.REAL and result != frame.result:
                raise self._diverged(name, f"result {result} != recorded {frame.result}")
            for w in frame.writes:
                task.write(w.addr, w.data)
            regs.rax = frame.result
            task.set_regs(regs)
        if frame.stream and self.echo is not None:
            self.echo(frame.stream, self._written_bytes(task, recorded, frame.result))

    def _execute(self, task: Task, regs: Registers, frame: SyscallFrame) -> int:
        """Runs the syscall for real (mmap of a file maps the trace's copy)."""
        call = regs.copy()
        call.rip = SYSCALL_SITE
        call.rax = regs.syscallno
        fd = -1
        if regs.syscallno == MMAP and frame.result >= 0:
            flags = regs.arg(3)
            call.set_arg(0, frame.result)
            if frame.file_id:
                fd = open_in_tracee(task, str(self.reader.file_path(frame.file_id)))
                call.set_arg(4, fd)
                flags = flags & ~MAP_SHARED | MAP_PRIVATE
            elif not flags & MAP_ANONYMOUS:  # a device such as /dev/zero
                flags |= MAP_ANONYMOUS
                call.set_arg(4, 2**64 - 1)
            call.set_arg(3, flags | MAP_FIXED)
        after = run_syscall(task, call)
        regs.fs_base, regs.gs_base = after.fs_base, after.gs_base  # arch_prctl's effect
        task.set_regs(regs)
        result = after.result
        if fd >= 0:
            inject(task, "close", fd)
        return result

    def _written_bytes(self, task: Task, regs: Registers, result: int) -> bytes:
        if regs.syscallno in WRITEV:
            out = b""
            raw = task.read(regs.arg(1), 16 * min(regs.arg(2), 1024))
            for base, length in struct.iter_unpack("<QQ", raw[: len(raw) // 16 * 16]):
                out += task.read(base, min(length, result - len(out)))
                if len(out) >= result:
                    break
            return out
        return task.read(regs.arg(1), result)

    def _replay_exec(self, task: Task, frame: ExecFrame) -> None:
        stop = self._resume_to_stop(task)
        self._expect(stop, StopKind.SYSCALL, "execve")
        regs = task.regs()
        if regs.syscallno not in EXECVE:
            raise self._diverged("execve", f"expected execve, got {syscall_name(regs.syscallno)}")
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
        stop = task.wait()
        if stop.kind is not StopKind.EVENT or stop.event != native.PTRACE_EVENT_EXEC:
            raise self._diverged("execve", f"exec of the trace's copy failed: {_describe(stop)}")
        self._apply_exec(task, frame)

    def _apply_exec(self, task: Task, frame: ExecFrame) -> None:
        """At PTRACE_EVENT_EXEC: rebuild the recorded initial state of the new program."""
        task.reopen_memory()
        task.resume(native.PTRACE_SYSCALL)
        self._expect(task.wait(), StopKind.SYSCALL, "execve")
        map_scratch_page(task)
        for m in frame.mappings:
            if m.file_id and m.path != frame.exe_path and m.file_id != frame.exe_file_id:
                fd = open_in_tracee(task, str(self.reader.file_path(m.file_id)))
                addr = inject(task, "mmap", m.start, m.end - m.start, m.prot,
                              MAP_PRIVATE | MAP_FIXED, fd, m.offset)
                inject(task, "close", fd)
                if addr != m.start:
                    raise self._diverged("execve", f"cannot map {m.path} at {m.start:#x}")
        layout = [(e.start, e.end, e.prot) for e in read_maps(task.tid) if e.path != "[stack]"]
        recorded = [(m.start, m.end, m.prot) for m in frame.mappings if m.path != "[stack]"]
        if layout != recorded:
            raise self._diverged("execve", "the address space after exec differs from the "
                                 f"recording: {_layout_diff(layout, recorded)}")
        for w in frame.memory:
            task.write(w.addr, w.data)
        task.set_regs(Registers.from_bytes(frame.regs))

    def _replay_signal(self, task: Task, frame: SignalFrame) -> None:
        what = f"signal {signal.Signals(frame.signo).name}"
        if frame.deterministic:
            self._expect(self._resume_to_stop(task), StopKind.SIGNAL, what, frame.signo)
        else:
            self._check_regs(task, frame.regs, what)
            native.tgkill(task.tgid, task.tid, frame.signo)
            self._expect(self._resume_to_stop(task), StopKind.SIGNAL, what, frame.signo)
            task.set_siginfo(frame.siginfo)
        self._check_regs(task, frame.regs, what)
        self._signal = frame.signo

    def _replay_rdtsc(self, task: Task, frame: InstructionTrapFrame) -> None:
        self._expect(self._resume_to_stop(task), StopKind.SIGNAL, "rdtsc", signal.SIGSEGV)
        regs = self._check_regs(task, frame.regs, "rdtsc")
        is_rdtscp = task.read(regs.rip, 3) == RDTSCP
        apply_rdtsc(task, regs, frame.value, frame.aux, is_rdtscp)

    def _replay_exit(self, task: Task, frame: ExitFrame) -> None:
        if self._signal:  # a fatal signal is being delivered
            stop = self._resume_to_stop(task)
        else:
            self._expect(self._resume_to_stop(task), StopKind.SYSCALL, "exit")
            regs = task.regs()
            if regs.syscallno not in EXITS:
                raise self._diverged("exit", "expected exit, got "
                                     f"{syscall_name(regs.syscallno)}")
            call = regs.copy()
            call.rip, call.rax = SYSCALL_SITE, regs.syscallno
            task.set_regs(call)
            task.resume(native.PTRACE_CONT)
            stop = task.wait()
        if stop.kind is not StopKind.EVENT or stop.event != native.PTRACE_EVENT_EXIT:
            raise self._diverged("exit", f"expected the exit, got {_describe(stop)}")
        status = task.event_msg()
        if status != frame.status:
            raise self._diverged("exit", f"exit status {status:#x} != recorded {frame.status:#x}")
        task.resume(native.PTRACE_CONT)
        final = task.wait()
        if not final.finished:
            raise self._diverged("exit", f"the tracee did not exit: {_describe(final)}")
        self.exit_status = frame.status


def event_name(frame: Frame) -> str:
    """A short name for a recorded event: the syscall's name or the event kind."""
    if isinstance(frame, SyscallFrame):
        return syscall_name(Registers.from_bytes(frame.regs).syscallno)
    if isinstance(frame, SignalFrame):
        return f"signal {signal.Signals(frame.signo).name}"
    return {ExecFrame: "exec", InstructionTrapFrame: "rdtsc", ExitFrame: "exit"}.get(
        type(frame), type(frame).__name__)


def _describe(stop: Stop) -> str:
    if stop.kind is StopKind.SIGNAL:
        return f"signal {signal.Signals(stop.signo).name}"
    if stop.kind is StopKind.EVENT:
        return f"ptrace event {stop.event}"
    if stop.kind is StopKind.EXITED:
        return f"exit with status {os.WEXITSTATUS(stop.status)}"
    if stop.kind is StopKind.KILLED:
        return f"death by signal {stop.signo}"
    return "a syscall stop"


def _layout_diff(now: list[tuple[int, int, int]], recorded: list[tuple[int, int, int]]) -> str:
    extra = sorted(set(now) - set(recorded))
    missing = sorted(set(recorded) - set(now))
    parts = [f"unexpected {s:#x}-{e:#x}" for s, e, _ in extra[:3]]
    parts += [f"missing {s:#x}-{e:#x}" for s, e, _ in missing[:3]]
    return ", ".join(parts)
