"""ReplayTarget: the DebugTarget the gdb server talks to, over a ReplayTimeline.

The replay itself is never written: register and memory writes (gdb's inferior calls,
`print f(3)`) go to a Diversion, a live forked copy thrown away when gdb restores the
registers. Files are served only from the trace."""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from rrgdb.gdb.requests import BreakpointKind
from rrgdb.gdb.target import (
    BreakpointStop,
    Direction,
    EndOfHistory,
    ExecStop,
    Interrupted,
    ProcessExited,
    ProcessKilled,
    RegisterState,
    ResumeAction,
    SignalStop,
    StepDone,
    StopEvent,
    StopReason,
    SyscallStop,
    WatchpointStop,
)
from rrgdb.gdb.target_description import host_has_avx
from rrgdb.gdb.tls import read_thread_db_layout, tls_block
from rrgdb.kernel.address_space import read_maps
from rrgdb.kernel.breakpoints import NoDebugRegisters, WatchKind, Watchpoint
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.task import Task
from rrgdb.replay.session import Echo, write_to_fd
from rrgdb.timeline.diversion import Diversion
from rrgdb.timeline.timeline import Outcome, ReplayTimeline, every_syscall
from rrgdb.trace import ExecFrame, SignalFrame, TraceError

log = logging.getLogger(__name__)
_WATCH_KINDS = {
    BreakpointKind.WRITE_WATCH: WatchKind.WRITE,
    BreakpointKind.READ_WATCH: WatchKind.READ,
    BreakpointKind.ACCESS_WATCH: WatchKind.ACCESS,
}
_BREAKPOINT_KINDS = {v: k for k, v in _WATCH_KINDS.items()}
_AT_IGNORE, _AT_PHDR = 1, 3  # auxv keys (the recorder hides AT_SYSINFO_EHDR as AT_IGNORE)
_SEARCH_CHUNK = 1 << 20
_PROC_MAPS = re.compile(r"/proc/(\d+)(?:/task/(\d+))?/maps")

MONITOR_HELP = """\
rrgdb monitor commands:
  when                  the current event number (position in the trace)
  checkpoint            make a checkpoint here; prints its number
  restart N             go to checkpoint N (0 or no N: the start of the replay)
  delete checkpoint N   forget checkpoint N
  info checkpoints      list the checkpoints
  real-tid              the real thread id of the replaying process
  help                  this text
"""


class ReplayTarget:
    """A replayed process as gdb sees it (implements rrgdb.gdb.target.DebugTarget)."""

    def __init__(self, trace_dir: Path, echo: Echo | None = write_to_fd, follow: int = 0,
                 at_fork: bool = False, goto: int | None = None) -> None:
        """follow: the recorded pid of the process to debug (0: the first), from its fork
        (at_fork) or its first exec; goto: the event to start at (ValueError if gdb
        cannot go there)."""
        self.timeline = ReplayTimeline(trace_dir, echo)
        self.timeline.session.stop_at_signals = True
        try:
            self.timeline.start(follow, at_fork)
            if goto is not None:
                self.timeline.goto_event(goto)
        except BaseException:
            self.timeline.close()
            raise
        session = self.timeline.session
        self._pid = session.main_tid
        self._exe = self._program()
        self._auxv = self._read_auxv()
        self._names = session.reader.file_names()
        self._names_of_copies: dict[bytes, bytes] | None = None  # trace copy → recorded path
        self._last_registers = RegisterState(b"\0" * 216, b"")
        self.diversion: Diversion | None = None  # a live copy running an inferior call
        self._current = self._pid  # the thread of the last stop (recorded tid)

    def _program(self) -> str:
        """The program the debugged process runs now (its latest exec, as recorded)."""
        session = self.timeline.session
        for index in range(session.applied - 1, -1, -1):
            frame = session.frames[index]
            if isinstance(frame, ExecFrame) and frame.tid == session.main_tid:
                return frame.exe_path
        return session.program

    def _read_auxv(self) -> bytes:
        """The auxv the program was given, as recorded: its copy on the stack. The kernel's
        (/proc) is the replaying exec's, whose strings (AT_EXECFN, AT_PLATFORM, AT_RANDOM)
        lay elsewhere on a stack the recorded one then replaced; it tells what to look for."""
        task = self.timeline.task
        with open(f"/proc/{task.tid}/auxv", "rb") as f:
            kernel = f.read()
        keys = [int.from_bytes(kernel[i:i + 8], "little") for i in range(0, len(kernel), 16)]
        if _AT_PHDR not in keys:
            return kernel
        # AT_PHDR and AT_PHENT have the same values in both (the same program, no ASLR)
        at = keys.index(_AT_PHDR) * 16
        for entry in read_maps(task.tid):
            if entry.path != "[stack]":
                continue
            stack = task.read(entry.start, entry.end - entry.start)
            found = stack.find(kernel[at:at + 32])
            if found < at:
                return kernel
            recorded = stack[found - at:found - at + len(kernel)]
            merged = b""
            for i, key in enumerate(keys):
                entry_bytes = recorded[i * 16:i * 16 + 16]
                if int.from_bytes(entry_bytes[:8], "little") == key:
                    merged += entry_bytes
                elif int.from_bytes(entry_bytes[:8], "little") == _AT_IGNORE:
                    merged += kernel[i * 16:i * 16 + 16]  # the vDSO, hidden from the program
                else:
                    return kernel  # not the auxv after all
            return merged
        return kernel

    # -- identity ---------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self._pid

    @property
    def has_avx(self) -> bool:
        return host_has_avx()

    @property
    def reverse_execution(self) -> bool:
        return True

    def threads(self) -> list[int]:
        if self.timeline.finished:
            return []
        return sorted(tid for tid, _ in self.timeline.session.followed_tasks())

    def thread_name(self, tid: int) -> str:
        try:
            with open(f"/proc/{self._task(tid).tid}/comm") as f:
                return f.read().rstrip("\n")
        except OSError:
            return ""

    def current_thread(self) -> int:
        return self._current if self._current in self.threads() else self._pid

    def _task(self, tid: int) -> Task:
        """The live thread with recorded tid (the main thread if there is none)."""
        return dict(self.timeline.session.followed_tasks()).get(tid, self.timeline.task)

    # -- state ------------------------------------------------------------------------
    def read_registers(self, tid: int) -> RegisterState:
        if self.diversion is not None:
            task = self.diversion.task
            return RegisterState(task.regs().to_bytes(), task.xstate())
        if not self.timeline.finished:
            task = self._task(tid)
            self._last_registers = RegisterState(task.regs().to_bytes(), task.xstate())
        return self._last_registers

    def write_registers(self, tid: int, state: RegisterState) -> bool:
        """The replay itself is never written: writes start (or feed) a diversion, and
        putting the original registers back ends it."""
        if self.diversion is None and not self.timeline.finished:
            current = self.timeline.task.regs()
            wanted = Registers.from_bytes(state.user_regs)
            wanted.orig_rax = current.orig_rax
            same_fpu = state.xsave in (b"", self.timeline.task.xstate())
            if not wanted.differences(current) and same_fpu:
                return True  # only orig_rax (gdb sets -1 after `run`): nothing the program sees
        diversion = self._divert()
        if diversion is None:
            return False
        if diversion.restores_original(state.user_regs):
            self._end_diversion()
            return True
        diversion.task.set_regs(Registers.from_bytes(state.user_regs))
        if state.xsave:
            diversion.task.set_xstate(state.xsave)
        return True

    def read_memory(self, addr: int, length: int) -> bytes:
        if addr < 0 or length <= 0:
            return b""
        if self.diversion is not None:
            data = self.diversion.task.read(addr, length)
            return self.diversion.breakpoints.shadow(addr, data)
        if self.timeline.finished:
            return b""
        data = self.timeline.task.read(addr, length)
        return self.timeline.session.breakpoints.shadow(addr, data)

    def write_memory(self, addr: int, data: bytes) -> bool:
        diversion = self._divert()
        if diversion is None:
            return False
        try:
            diversion.task.write(addr, diversion.breakpoints.update_shadow(addr, data))
        except OSError:
            return False
        return True

    def _divert(self) -> Diversion | None:
        """The diversion, started from the current moment if there is none (None where a
        copy cannot be made: mid-event, several processes, after the end)."""
        if self.diversion is None:
            session = self.timeline.session
            if not session.can_snapshot:
                return None
            self.diversion = Diversion(session.snapshot(), set(self.timeline.user_breakpoints))
        return self.diversion

    def _end_diversion(self) -> None:
        if self.diversion is not None:
            self.diversion.end()
            self.diversion = None

    def search_memory(self, addr: int, length: int, pattern: bytes) -> int | None:
        """Searches only mapped memory, in bulk, mapping by mapping."""
        if not pattern or self.timeline.finished:
            return None
        task = self.diversion.task if self.diversion is not None else self.timeline.task
        end = addr + length
        for entry in read_maps(task.tid):
            start, stop = max(addr, entry.start), min(end, entry.end)
            pos = start
            while pos < stop:
                chunk = self.read_memory(pos, min(_SEARCH_CHUNK + len(pattern) - 1, stop - pos))
                if not chunk:
                    break
                found = chunk.find(pattern)
                if found >= 0 and pos + found + len(pattern) <= end:
                    return pos + found
                pos += max(1, len(chunk) - len(pattern) + 1)
        return None

    def tls_address(self, tid: int, offset: int, load_module: int) -> int | None:
        """Computed from the thread_db descriptors of the libc the process has mapped
        (the trace's copy), as libthread_db would."""
        if self.timeline.finished:
            return None
        task = self.diversion.task if self.diversion is not None else self.timeline.task
        paths = dict.fromkeys(m.path for m in read_maps(task.tid) if m.is_file)
        layout = next(filter(None, map(read_thread_db_layout, paths)), None)
        if layout is None:
            return None  # a static program, or a libc older than 2.34
        thread_pointer = Registers.from_bytes(self.read_registers(tid).user_regs).fs_base
        block = tls_block(layout, self._read_word, thread_pointer, load_module)
        return None if block is None else block + offset

    def _read_word(self, addr: int) -> int | None:
        data = self.read_memory(addr, 8)
        return int.from_bytes(data, "little") if len(data) == 8 else None

    # -- breakpoints ------------------------------------------------------------------
    def set_breakpoint(self, kind: BreakpointKind, addr: int, length: int) -> bool:
        if self.diversion is not None:
            return kind is BreakpointKind.SOFTWARE and self.diversion.breakpoints.insert(
                self.diversion.task, addr)
        if self.timeline.finished:
            return False
        if kind in (BreakpointKind.SOFTWARE, BreakpointKind.HARDWARE):
            self.timeline.add_breakpoint(addr)
            return True
        watch = Watchpoint(_WATCH_KINDS[kind], addr, length)
        if watch in self.timeline.watchpoints:
            return True
        try:
            self.timeline.add_watchpoint(watch)
        except (NoDebugRegisters, OSError):
            return False
        return True

    def clear_breakpoint(self, kind: BreakpointKind, addr: int, length: int) -> None:
        if self.diversion is not None:
            self.diversion.breakpoints.remove(self.diversion.task, addr)
            return
        if self.timeline.finished:
            return
        if kind in (BreakpointKind.SOFTWARE, BreakpointKind.HARDWARE):
            self.timeline.remove_breakpoint(addr)
        else:
            self.timeline.remove_watchpoint(Watchpoint(_WATCH_KINDS[kind], addr, length))

    def catch_syscalls(self, syscalls: frozenset[int] | None) -> None:
        if syscalls is None:
            self.timeline.catch_syscalls = None
        elif not syscalls:
            self.timeline.catch_syscalls = every_syscall
        else:
            self.timeline.catch_syscalls = syscalls.__contains__

    # -- execution --------------------------------------------------------------------
    def resume(self, direction: Direction, action: ResumeAction, tid: int) -> StopEvent:
        timeline = self.timeline
        if self.diversion is not None:
            if direction is Direction.FORWARD:
                return StopEvent(self._diversion_resume(action), self._pid)
            self._end_diversion()
        if direction is Direction.FORWARD:
            outcome = timeline.forward(step=action is ResumeAction.STEP)
        elif action is ResumeAction.STEP:
            if tid in self.threads():
                timeline.current_tid = tid  # gdb steps this thread (Hc), maybe not the last
            outcome = timeline.reverse_stepi()
        else:
            outcome = timeline.reverse_continue()
        if outcome.tid:
            self._current = outcome.tid
        return StopEvent(self._reason(outcome), self.current_thread())

    def _diversion_resume(self, action: ResumeAction) -> StopReason:
        assert self.diversion is not None
        kind, value = self.diversion.resume(step=action is ResumeAction.STEP)
        if kind == "breakpoint":
            return BreakpointStop()
        if kind == "step":
            return StepDone()
        if kind == "exited":
            self._end_diversion()
            if os.WIFSIGNALED(value):
                return SignalStop(os.WTERMSIG(value))
            return SignalStop(signal.SIGKILL)
        try:
            siginfo = self.diversion.task.siginfo()  # a live stop: the kernel's own
        except OSError:
            siginfo = b""
        return SignalStop(value, siginfo)

    def _reason(self, outcome: Outcome) -> StopReason:
        match outcome.kind:
            case "breakpoint":
                return BreakpointStop()
            case "watchpoint":
                assert outcome.watch is not None
                return WatchpointStop(_BREAKPOINT_KINDS[outcome.watch.kind], outcome.watch.addr)
            case "end":
                return EndOfHistory(at_beginning=False)
            case "begin":
                return EndOfHistory(at_beginning=True)
            case "interrupted":
                return Interrupted()
            case "signal":
                return SignalStop(outcome.status, self._pending_siginfo(outcome.status))
            case "exec":
                session = self.timeline.session
                exec_frame = session.frames[session.applied - 1]
                assert isinstance(exec_frame, ExecFrame)
                self._exe, self._auxv = exec_frame.exe_path, self._read_auxv()
                return ExecStop(self._exe)
            case "syscall-entry" | "syscall-return":
                regs = Registers.from_bytes(self.read_registers(self.current_thread()).user_regs)
                return SyscallStop(regs.syscallno, outcome.kind == "syscall-return")
            case "exited":
                status = outcome.status
                if os.WIFSIGNALED(status):
                    return ProcessKilled(os.WTERMSIG(status))
                return ProcessExited(os.WEXITSTATUS(status))
        return StepDone()

    def _pending_siginfo(self, signo: int) -> bytes:
        """The recorded siginfo of the signal a stop at a signal is about to deliver."""
        session = self.timeline.session
        if session.applied < len(session.frames):
            frame = session.frames[session.applied]
            if isinstance(frame, SignalFrame) and frame.signo == signo:
                return frame.siginfo
        return b""

    def set_console(self, write: Callable[[str], None]) -> None:
        """Where progress of long operations goes (gdb's console, through O packets)."""
        self.timeline.progress = write

    def interrupt(self) -> None:
        self.timeline.interrupt()

    def restart(self, argument: str) -> StopEvent:
        """`run`: the start; `run N`: event N; `run cN`: checkpoint N (as rr). What cannot
        be gone to is said on rrgdb's stderr, and the replay goes to its start."""
        self._end_diversion()
        word = argument.strip()
        checkpoint = None
        try:
            if word.isdigit():
                outcome = self.timeline.goto_event(int(word))
                self._exe, self._auxv = self._program(), self._read_auxv()
                self._current = outcome.tid or self._pid
                return StopEvent(self._reason(outcome), self.current_thread())
            if word:
                checkpoint = self._checkpoint_named(word)
        except ValueError as e:
            log.warning("rrgdb: %s; the replay restarts from its start", e)
        self.timeline.restart_at(checkpoint)
        self._current = self._pid
        return StopEvent(StepDone(), self._pid)

    def _checkpoint_named(self, word: str) -> int:
        """The user checkpoint `cN` names (ValueError if none)."""
        if not (word[:1] == "c" and word[1:].isdigit()):
            raise ValueError(f"cannot go to {word!r}: `run N` goes to event N, `run cN` to "
                             "checkpoint N")
        number = int(word[1:])
        if number not in self.timeline.user_checkpoints:
            raise ValueError(f"no checkpoint {number}")
        return number

    # -- monitor ----------------------------------------------------------------------
    def monitor(self, command: str) -> str:
        self._end_diversion()
        from rrgdb.gdb import memory_refs
        from rrgdb.kernel.address_space import read_maps

        words = command.split()
        timeline = self.timeline
        match words:
            case [] | ["help"]:
                return MONITOR_HELP + memory_refs.HELP
            case ["when"]:
                return f"Current event: {timeline.session.applied}\n"
            case ["checkpoint"]:
                try:
                    number = timeline.user_checkpoint()
                except ValueError as e:
                    return f"{e}\n"
                return f"Checkpoint {number} at event {timeline.session.applied}\n"
            case ["restart", *rest]:
                number = int(rest[0]) if rest and rest[0].isdigit() else 0
                if number and number not in timeline.user_checkpoints:
                    return f"No checkpoint {number}\n"
                timeline.restart_at(number or None)
                return f"Restarted at event {timeline.session.applied}\n"
            case ["delete", "checkpoint", number] if number.isdigit():
                if timeline.delete_user_checkpoint(int(number)):
                    return f"Deleted checkpoint {number}\n"
                return f"No checkpoint {number}\n"
            case ["info", "checkpoints"]:
                lines = [f"{n}\tevent {cp.mark.applied}"
                         for n, cp in sorted(timeline.user_checkpoints.items())]
                return "\n".join(["ID\tWHERE", *lines]) + "\n"
            case ["real-tid"]:
                if timeline.finished:
                    return ""
                return f"{self._task(self.current_thread()).tid}\n"
            case ["refs", *rest]:
                try:
                    addr, length = memory_refs.parse_refs_arguments(rest)
                except ValueError as e:
                    return f"{e}\n"
                if timeline.finished:
                    return "The process has exited: no memory to search\n"
                hits, cut = memory_refs.find_refs(read_maps(timeline.task.tid),
                                                  self.read_memory, addr, length)
                by_id = {file_id: name for name, file_id in self._names.items()}
                return memory_refs.format_refs(addr, length, hits, cut, by_id)
        return f"Unknown command: {command}\n{MONITOR_HELP}{memory_refs.HELP}"

    # -- files ------------------------------------------------------------------------
    def auxv(self) -> bytes:
        return self._auxv

    def exec_file(self) -> str:
        return self._exe

    def open_file(self, path: str) -> BinaryIO:
        proc_maps = _PROC_MAPS.fullmatch(path)
        if proc_maps is not None:
            pid, tid = int(proc_maps[1]), int(proc_maps[2] or proc_maps[1])
            return io.BytesIO(self._maps_text(pid, tid))
        reader = self.timeline.session.reader
        # gdb asks by the names the program used (PT_INTERP, the link map), which may be
        # symlinks to the recorded (canonical) paths; the bytes always come from the trace.
        file_id = self._names.get(path) or self._names.get(os.path.realpath(path))
        if file_id is not None:
            return open(reader.file_path(file_id), "rb")
        raise FileNotFoundError(2, f"{path} is not part of the recording")

    def _maps_text(self, pid: int, tid: int) -> bytes:
        """/proc/PID/maps of the debugged process (gdb reads it at connect, for the vDSO,
        and for `info proc mappings`): the replaying process's mappings, with the
        trace's copies of files named by the paths the program knew them by."""
        if pid != self._pid or tid not in self.threads():
            raise FileNotFoundError(errno.ENOENT, f"no process {pid} thread {tid} now")
        task = self.diversion.task if self.diversion is not None else self.timeline.task
        with open(f"/proc/{task.tid}/maps", "rb") as f:
            lines = f.read().splitlines(keepends=True)
        if self._names_of_copies is None:
            reader = self.timeline.session.reader
            self._names_of_copies = {}
            for name, file_id in self._names.items():
                with contextlib.suppress(TraceError):
                    copy = os.fsencode(reader.file_path(file_id))
                    self._names_of_copies.setdefault(copy, os.fsencode(name))
        for index, line in enumerate(lines):
            fields = line.rstrip(b"\n").split(maxsplit=5)
            name = self._names_of_copies.get(fields[5]) if len(fields) > 5 else None
            if name is not None:
                lines[index] = line[: line.rindex(fields[5])] + name + b"\n"
        return b"".join(lines)

    def close(self) -> None:
        self._end_diversion()
        self.timeline.close()
