"""RecordSession: runs a program under ptrace and writes every nondeterministic input it
receives (syscall results and memory writes, signals, rdtsc values, exec state) to a trace."""

from __future__ import annotations

import os
import platform
import resource
import signal
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from rrgdb import native
from rrgdb.kernel.address_space import hide_vdso, read_maps, writable_snapshot
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.remote_syscalls import map_scratch_page
from rrgdb.kernel.task import Stop, StopKind, Task
from rrgdb.record.outputs import UnsupportedSyscall, check_supported, entry_state, memory_writes
from rrgdb.syscall_numbers import NUMBERS
from rrgdb.syscalls import SPECS, SyscallSpec, syscall_name
from rrgdb.trace import (
    ExecFrame,
    ExitFrame,
    InstructionTrapFrame,
    Mapping,
    MemWrite,
    SignalFrame,
    SyscallFrame,
    TraceHeader,
    TraceWriter,
)

TRACE_OPTIONS = (native.PTRACE_O_TRACESYSGOOD | native.PTRACE_O_TRACEEXEC
                 | native.PTRACE_O_TRACEEXIT | native.PTRACE_O_EXITKILL)
SYNCHRONOUS_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE,
                       signal.SIGTRAP}
RDTSC = b"\x0f\x31"
RDTSCP = b"\x0f\x01\xf9"
WRITE_SYSCALLS = {NUMBERS["write"], NUMBERS["writev"], NUMBERS["pwrite64"], NUMBERS["pwritev"]}
MMAP = NUMBERS["mmap"]
MAP_ANONYMOUS = 0x20
SIGINFO_CODE = slice(8, 12)


class RecordError(Exception):
    """Recording could not go on; str() is a one-line message for the user."""


@dataclass
class _PendingSyscall:
    regs: Registers
    spec: SyscallSpec
    state: dict[int, int] = field(default_factory=dict)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _stack_limit() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    return soft & 0xFFFFFFFFFFFFFFFF, hard & 0xFFFFFFFFFFFFFFFF


def resolve_program(program: str) -> str:
    """The absolute path execve will run, searched in PATH like a shell does."""
    if "/" in program:
        candidates = [program]
    else:
        candidates = [os.path.join(d or ".", program)
                      for d in os.environ.get("PATH", os.defpath).split(":")]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    raise RecordError(f"cannot run {program}: no such executable file")


def exit_code(status: int) -> int:
    """A shell-style exit code for a raw wait status."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class RecordSession:
    """Records one program (a single process) into a trace directory."""

    def __init__(self, argv: list[str], trace_dir: Path) -> None:
        self.program = resolve_program(argv[0])
        self.argv = argv
        self.trace_dir = trace_dir
        self.task: Task | None = None
        self.writer: TraceWriter | None = None
        self._stdio = {fd: self._identity(os.fstat(fd)) for fd in (1, 2) if self._is_open(fd)}
        self._pending: _PendingSyscall | None = None

    @staticmethod
    def _is_open(fd: int) -> bool:
        try:
            os.fstat(fd)
            return True
        except OSError:
            return False

    @staticmethod
    def _identity(st: os.stat_result) -> tuple[int, int]:
        return st.st_dev, st.st_ino

    # -- the run ----------------------------------------------------------------------
    def run(self) -> int:
        """Records the program to its end; returns the raw wait status of the program."""
        header = TraceHeader(
            program=self.program, argv=list(self.argv), cwd=os.getcwd(),
            rlimit_stack=_stack_limit(), created=time.time(),
            kernel=platform.release(), cpu=cpu_model())
        self.writer = TraceWriter(self.trace_dir, header)
        try:
            status = self._record()
        except BaseException:
            if self.task is not None:
                self.task.kill()
            self.writer.flush()  # what was recorded stays readable; the trace stays incomplete
            raise
        self.writer.close()
        return status

    def _record(self) -> int:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        try:
            pid = native.spawn(self.program, [a.encode() for a in self.argv],
                               [f"{k}={v}".encode() for k, v in os.environ.items()],
                               None, None, False, write_fd)
        finally:
            os.close(write_fd)
        task = self.task = Task(pid)
        stop = task.wait()
        if stop.kind is not StopKind.SIGNAL or stop.signo != signal.SIGSTOP:
            raise RecordError(f"cannot start {self.program}: unexpected first stop {stop}")
        native.ptrace(native.PTRACE_SETOPTIONS, pid, 0, TRACE_OPTIONS)
        task.resume(native.PTRACE_CONT)
        stop = task.wait()
        if stop.kind is not StopKind.EVENT or stop.event != native.PTRACE_EVENT_EXEC:
            err = os.read(read_fd, 4)
            os.close(read_fd)
            reason = os.strerror(int.from_bytes(err, "little")) if len(err) == 4 else str(stop)
            task.kill()
            raise RecordError(f"cannot run {self.program}: {reason}")
        os.close(read_fd)
        self._on_exec(task)
        return self._loop(task)

    def _loop(self, task: Task) -> int:
        sig = 0
        while True:
            task.resume(native.PTRACE_SYSCALL, sig)
            sig = 0
            stop = task.wait()
            if stop.kind is StopKind.SYSCALL:
                self._on_syscall_stop(task)
            elif stop.kind is StopKind.SIGNAL:
                sig = self._on_signal(task, stop)
            elif stop.kind is StopKind.EVENT:
                if stop.event == native.PTRACE_EVENT_EXEC:
                    self._pending = None
                    self._on_exec(task)
                elif stop.event == native.PTRACE_EVENT_EXIT:
                    self._write(ExitFrame(task.tid, task.event_msg()))
                else:
                    raise RecordError(f"unexpected ptrace event {stop.event} in {task.tid}")
            else:
                task.alive = False
                return stop.status

    def _write(self, frame: object) -> None:
        assert self.writer is not None
        self.writer.write(frame)  # type: ignore[arg-type]

    # -- exec -------------------------------------------------------------------------
    def _on_exec(self, task: Task) -> None:
        """At PTRACE_EVENT_EXEC: finish the execve, hide the vDSO, map the scratch page and
        record the new program's initial state."""
        assert self.writer is not None
        task.reopen_memory()
        task.resume(native.PTRACE_SYSCALL)
        stop = task.wait()
        if stop.kind is not StopKind.SYSCALL:
            raise RecordError(f"unexpected stop {stop} after exec in {task.tid}")
        hide_vdso(task)
        map_scratch_page(task)
        exe = os.readlink(f"/proc/{task.tid}/exe")
        exe_id = self.writer.add_file(f"/proc/{task.tid}/exe", name=exe)
        entries = read_maps(task.tid)
        mappings = []
        for e in entries:
            file_id = ""
            if e.is_file:
                file_id = exe_id if e.path == exe else self.writer.add_file(e.path, e.path)
            mappings.append(Mapping(e.start, e.end, e.prot, 1 if e.shared else 2, e.offset,
                                    e.path, file_id))
        memory = [MemWrite(a, d) for a, d in writable_snapshot(task, entries)]
        with open(f"/proc/{task.tid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")[:-1]
        with open(f"/proc/{task.tid}/environ", "rb") as f:
            envp = f.read().split(b"\0")[:-1]
        self._write(ExecFrame(task.tid, task.regs().to_bytes(), exe, exe_id, argv, envp,
                              mappings, memory))

    # -- syscalls ---------------------------------------------------------------------
    def _on_syscall_stop(self, task: Task) -> None:
        op = native.syscall_info(task.tid)[0]
        if op == native.SYSCALL_INFO_ENTRY:
            self._on_syscall_entry(task)
        elif op == native.SYSCALL_INFO_EXIT and self._pending is not None:
            self._on_syscall_exit(task, self._pending)
            self._pending = None

    def _on_syscall_entry(self, task: Task) -> None:
        regs = task.regs()
        nr = regs.syscallno
        spec = SPECS.get(nr)
        try:
            if spec is None:
                raise UnsupportedSyscall(syscall_name(nr))
            check_supported(spec, regs)
        except UnsupportedSyscall as e:
            raise RecordError(f"unsupported syscall {e} (#{nr}) in task {task.tid}; "
                              f"rrgdb cannot record it faithfully") from None
        if spec.special == "rseq":
            # Kernel-updated rseq areas are nondeterministic: make registration fail.
            skipped = regs.copy()
            skipped.orig_rax = 2**64 - 1
            task.set_regs(skipped)
        self._pending = _PendingSyscall(regs, spec, entry_state(task, spec, regs))

    def _on_syscall_exit(self, task: Task, pending: _PendingSyscall) -> None:
        assert self.writer is not None
        after = task.regs()
        regs, spec = pending.regs, pending.spec
        result = after.result
        if spec.special == "rseq":
            result = -38  # ENOSYS
            after.rax = result
            task.set_regs(after)
        writes = memory_writes(task, spec, regs, result, pending.state)
        nr = regs.syscallno
        stream = 0
        if nr in WRITE_SYSCALLS and result > 0:
            stream = self._stdio_stream(task, regs.arg(0))
        file_id = ""
        if nr == MMAP and result >= 0 and not regs.arg(3) & MAP_ANONYMOUS:
            file_id = self._mapped_file(task, regs.arg(4))
        self._write(SyscallFrame(task.tid, regs.to_bytes(), result, writes, stream, file_id))

    def _stdio_stream(self, task: Task, fd: int) -> int:
        try:
            ident = self._identity(os.stat(f"/proc/{task.tid}/fd/{fd}"))
        except OSError:
            return 0
        for stream, own in self._stdio.items():
            if own == ident:
                return stream
        return 0

    def _mapped_file(self, task: Task, fd: int) -> str:
        assert self.writer is not None
        path = f"/proc/{task.tid}/fd/{fd & 0xFFFFFFFF}"
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                return ""
            return self.writer.add_file(path, name=os.readlink(path))
        except OSError as e:
            raise RecordError(f"cannot copy mapped file {path}: {e.strerror}") from None

    # -- signals ----------------------------------------------------------------------
    def _on_signal(self, task: Task, stop: Stop) -> int:
        """Records a signal-delivery stop; returns the signal to deliver (0 if handled)."""
        regs = task.regs()
        if stop.signo == signal.SIGSEGV:
            code = task.read(regs.rip, 3)
            if code.startswith(RDTSC) or code == RDTSCP:
                self._emulate_rdtsc(task, regs, code == RDTSCP)
                return 0
        info = task.siginfo()
        si_code = int.from_bytes(info[SIGINFO_CODE], "little", signed=True)
        deterministic = stop.signo in SYNCHRONOUS_SIGNALS and si_code > 0
        self._write(SignalFrame(task.tid, regs.to_bytes(), stop.signo, info, deterministic))
        return stop.signo

    def _emulate_rdtsc(self, task: Task, regs: Registers, is_rdtscp: bool) -> None:
        if is_rdtscp:
            value, aux = native.rdtscp()
        else:
            value, aux = native.rdtsc(), 0
        self._write(InstructionTrapFrame(task.tid, regs.to_bytes(), value, aux))
        apply_rdtsc(task, regs, value, aux, is_rdtscp)


def apply_rdtsc(task: Task, regs: Registers, value: int, aux: int, is_rdtscp: bool) -> None:
    """Completes a trapped rdtsc/rdtscp with the given counter value."""
    after = regs.copy()
    after.rax = value & 0xFFFFFFFF
    after.rdx = value >> 32
    if is_rdtscp:
        after.rcx = aux
    after.rip = regs.rip + (3 if is_rdtscp else 2)
    task.set_regs(after)
