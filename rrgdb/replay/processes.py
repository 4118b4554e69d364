"""The processes of a recording: who created whom, what each ran and how it ended.

Used by `rrgdb ps`, to pick the process gdb follows (`rrgdb replay -p/-f`) and to tell
which events gdb can go to (`rrgdb replay -g`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from rrgdb.kernel.registers import Registers
from rrgdb.record.session import CLONE_THREAD
from rrgdb.syscalls import syscall_name
from rrgdb.trace import ExecFrame, ExitFrame, Frame, SyscallFrame

FORKS = {"fork", "vfork", "clone", "clone3"}


@dataclass
class RecordedProcess:
    """One process of a recording, by its recorded pid."""

    pid: int
    ppid: int  # 0 for the first process
    created_at: int  # index of the event that made it (its fork, or the first exec)
    programs: list[tuple[int, str, list[str]]] = field(default_factory=list)
    # (event index, program path, argv) from its creation and each exec, in order
    exec_at: int | None = None  # index of its first exec (None: it never exec'd)
    exit_status: int | None = None

    @property
    def argv(self) -> list[str]:
        """Its last command line."""
        return self.programs[-1][2] if self.programs else []

    def program_before(self, index: int) -> str:
        """The program it was running just before event index."""
        return [path for at, path, _ in self.programs if at < index][-1]

    def start_of_debugging(self, at_fork: bool) -> int:
        """The event index from which gdb follows it: right after its fork (at_fork), or
        right after its first exec (after its fork if it never execs), as rr's -f/-p."""
        if at_fork or self.exec_at is None:
            return self.created_at + 1
        return self.exec_at + 1


def recorded_processes(frames: Iterable[Frame]) -> dict[int, RecordedProcess]:
    """Every process of the recording, in creation order (threads are left out)."""
    processes: dict[int, RecordedProcess] = {}
    process_of: dict[int, int] = {}  # tid -> pid
    for index, frame in enumerate(frames):
        if isinstance(frame, ExecFrame):
            argv = [a.decode(errors="replace") for a in frame.argv]
            pid = process_of.setdefault(frame.tid, frame.tid)
            process = processes.setdefault(pid, RecordedProcess(pid, 0, index))
            process.programs.append((index, frame.exe_path, argv))
            if process.exec_at is None:
                process.exec_at = index
        elif isinstance(frame, ExitFrame) and frame.tid in processes:
            processes[frame.tid].exit_status = frame.status
        elif isinstance(frame, SyscallFrame) and frame.result > 0:
            regs = Registers.from_bytes(frame.regs)
            name = syscall_name(regs.syscallno)
            if name not in FORKS:
                continue
            parent = process_of.get(frame.tid, frame.tid)
            if _clone_flags(name, regs, frame) & CLONE_THREAD:
                process_of[frame.result] = parent
                continue
            process_of[frame.result] = frame.result
            child = RecordedProcess(frame.result, parent, index)
            if parent in processes and processes[parent].programs:
                _, path, argv = processes[parent].programs[-1]
                child.programs.append((index, path, argv))
            processes[frame.result] = child
    return processes


def _clone_flags(name: str, regs: Registers, frame: SyscallFrame) -> int:
    """The flags of a recorded fork-like call (clone3's are kept as its frame's bytes)."""
    if name == "clone":
        return regs.arg(0)
    if name == "clone3" and frame.writes:
        return int.from_bytes(frame.writes[0].data[:8], "little")
    return 0


def choose_process(processes: dict[int, RecordedProcess], wanted: str) -> RecordedProcess:
    """The process named by a pid, or the first one running a program of that name
    (ValueError, with what there is, otherwise)."""
    if wanted.isdigit() and int(wanted) in processes:
        return processes[int(wanted)]
    if not wanted.isdigit():
        for process in processes.values():
            if any(os.path.basename(argv[0]) == wanted or os.path.basename(path) == wanted
                   for _, path, argv in process.programs if argv):
                return process
    listing = ", ".join(f"{p.pid} ({os.path.basename(p.argv[0]) if p.argv else '?'})"
                        for p in processes.values())
    raise ValueError(f"no process {wanted} in this recording; its processes are: {listing}")


def check_goto_event(event: int, first: int, events: int) -> None:
    """ValueError unless gdb, debugging from event `first` of a trace of `events` events,
    can go to event `event` (`rrgdb replay -g`, gdb's `run N`)."""
    if not first <= event < events:
        raise ValueError(f"no event {event} to go to: gdb can go to events {first} to "
                         f"{events - 1}")
