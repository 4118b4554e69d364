"""RecordSession: runs a program under ptrace and writes every nondeterministic input it
receives (syscall results and memory writes, signals, rdtsc and cpuid values, exec state)
to a trace."""

from __future__ import annotations

import errno
import os
import resource
import signal
import stat
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from rrgdb import native, syscallbuf
from rrgdb.kernel.address_space import hide_vdso, memory_hash, read_maps, writable_snapshot
from rrgdb.kernel.cpuid import CPUID, complete_cpuid, recordable_answer, set_cpuid_faulting
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.remote_syscalls import disable_alternate_stack, map_scratch_page
from rrgdb.kernel.signal_frames import enter_handler
from rrgdb.kernel.task import Stop, StopKind, Task
from rrgdb.kernel.visit_search import read_stack
from rrgdb.record.outputs import (
    UnsupportedSyscall,
    check_supported,
    entry_state,
    memory_writes,
    written_bytes,
)
from rrgdb.record.preemption import Interrupted, Running, Settled, settle
from rrgdb.record.scheduler import Scheduler
from rrgdb.syscall_numbers import NUMBERS
from rrgdb.syscalls import SPECS, Replay, SyscallSpec, syscall_name
from rrgdb.trace import (
    CpuidFrame,
    ExecFrame,
    ExitFrame,
    FlushFrame,
    Frame,
    InstructionTrapFrame,
    Mapping,
    MemWrite,
    PreemptFrame,
    SignalFrame,
    SyscallEntryFrame,
    SyscallFrame,
    TraceHeader,
    TraceWriter,
)

TRACE_OPTIONS = (native.PTRACE_O_TRACESYSGOOD | native.PTRACE_O_TRACEEXEC
                 | native.PTRACE_O_TRACEEXIT | native.PTRACE_O_EXITKILL
                 | native.PTRACE_O_TRACEFORK | native.PTRACE_O_TRACEVFORK
                 | native.PTRACE_O_TRACECLONE | native.PTRACE_O_TRACEVFORKDONE
                 | native.PTRACE_O_TRACESECCOMP)
SYNCHRONOUS_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE,
                       signal.SIGTRAP}
BOUNDARY_UNRESUMED = -1  # _RecordTask.boundary_calls until the task runs from its boundary
# seconds a parked signal waits for a syscall before it is forced at a preemption point:
# PARK_COST_FACTOR times what the thread's last preemption cost (settling, probing and
# hashing its memory), within these bounds
PARK_TIMEOUT_MIN = 0.02
PARK_TIMEOUT_MAX = 0.5
PARK_COST_FACTOR = 2
# probes that stops may interrupt before a thread's preemption point is recorded without
# one: the signal that interrupted one is parked then, and interrupts no more (_drops),
# but others may keep coming (a timer every 2 ms interrupted every probe before _drops,
# and the recording never ended); a point recorded without one where the registers
# repeat is found in replay by a trap at every turn (a child's counting loop, whose
# probe its parent's SIGTERM interrupted, took minutes)
PROBE_TRIES = 3
KERNEL_SIGRTMIN = 32  # signals from here on queue; a standard one is pending at most once
RDTSC = b"\x0f\x31"
RDTSCP = b"\x0f\x01\xf9"
WRITE_SYSCALLS = {NUMBERS["write"], NUMBERS["writev"], NUMBERS["pwrite64"], NUMBERS["pwritev"]}
MMAP = NUMBERS["mmap"]
# Calls that change the address space, run for real in replay, and never block for long.
ADDRESS_SPACE_SYSCALLS = {NUMBERS[name] for name in ("mmap", "munmap", "mremap", "mprotect",
                                                     "brk", "madvise", "pkey_mprotect")}
NEW_FD_SYSCALLS = {NUMBERS[name] for name in ("dup", "dup2", "dup3", "open", "openat",
                                               "openat2")}  # whose result is the fd made
FCNTL, F_DUPFD, F_DUPFD_CLOEXEC = NUMBERS["fcntl"], 0, 1030
CLOSE, CLOSE_RANGE, CLOSE_RANGE_CLOEXEC = NUMBERS["close"], NUMBERS["close_range"], 4
MAP_ANONYMOUS = 0x20
MAP_SHARED = 0x01  # also set in MAP_SHARED_VALIDATE
SIGINFO_CODE = slice(8, 12)
SI_TIMER = -2  # si_code of a POSIX timer's signal
RT_SIGRETURN = NUMBERS["rt_sigreturn"]
SI_TKILL = -6  # si_code of a signal sent with tgkill
# ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND: a syscall interrupted by a signal, which the
# kernel restarts with the same number unless a handler runs; ERESTART_RESTARTBLOCK: the
# same, continued by restart_syscall
RESTART_SAME, RESTART_BLOCK = (-512, -513, -514), -516
ENOSYS = -38  # what rax holds at a syscall's entry
RESTART_SYSCALL = NUMBERS["restart_syscall"]
# the calls that send a signal: which of their arguments is the signal's number
SIGNAL_ARGUMENT = {NUMBERS[name]: index for name, index in (
    ("kill", 1), ("tkill", 1), ("tgkill", 2), ("rt_sigqueueinfo", 1),
    ("rt_tgsigqueueinfo", 2), ("pidfd_send_signal", 1))}


class RecordError(Exception):
    """Recording could not go on; str() is a one-line message for the user."""


@dataclass
class _PendingSyscall:
    regs: Registers
    spec: SyscallSpec
    state: dict[int, int] = field(default_factory=dict)
    written: bool = False  # already in the trace (fork-like syscalls are written early)
    clone_flags: int = 0  # of a fork/vfork/clone/clone3 (clone_flags, read at its entry)
    # a clone that stopped its process's buffering at its entry (clone_disables_buffer),
    # and whether its child gives the buffer back (vfork_returns_buffer)
    stops_buffer: bool = False
    returns_buffer: bool = False


@dataclass
class _RecordTask:
    """The recorder's view of one tracee."""

    task: Task
    pending: _PendingSyscall | None = None
    # registers when it last left a syscall or exec'd: a stop with these registers came
    # before any instruction ran (a preemption point is not one: a loop that keeps its
    # state in memory comes back to the same registers)
    boundary: bytes = b""
    # its process's count of buffered calls (the syscall buffer's seq) when it was resumed
    # from its boundary (BOUNDARY_UNRESUMED: not yet; None: it had no buffer). Its
    # registers may come back to the boundary's after buffered calls (a loop keeping its
    # state in memory, which rt_sigreturn returned into), so a stop there is at the
    # boundary only if the count has not moved: only the thread holding its process's
    # turn runs user code, and the count is taken after any wait for the turn
    boundary_calls: int | None = None
    parked: list[tuple[int, bytes]] = field(default_factory=list)  # signals to re-raise
    # parked signals given back to the kernel while blocked; their siginfo is restored at
    # the delivery
    requeued: list[tuple[int, bytes]] = field(default_factory=list)
    fresh: bool = True  # its automatic first SIGSTOP is still to come
    seccomp: bool = False  # under the syscall buffer's seccomp filter
    trap_requested: bool = False  # rrgdb set the buffer's trap_at since the last flush
    vfork_parent: int = 0  # for a vfork child until it execs or exits: the parent's tid
    # a vfork child whose parent's process buffered before it: the buffer comes back once
    # the child has exec'd or exited (vfork_returns_buffer)
    returns_buffer: bool = False
    # a vfork parent whose child has given the buffer back: buffering resumes at its next
    # syscall's entry (see _on_syscall_entry)
    buffer_returning: bool = False
    held: bool = False  # a vfork parent kept stopped until its child's exec is recorded
    parked_at: float = 0.0  # when its oldest parked signal arrived
    park_timeout: float = PARK_TIMEOUT_MIN  # how long its parked signals wait for a syscall
    stopping: bool = False  # rrgdb sent it SIGSTOP (preemption or a parked signal)
    settled: Settled | None = None  # where preemption.settle() left it
    probes_interrupted: int = 0  # since its last PreemptFrame (PROBE_TRIES: no more)
    held_signal: int = 0  # the signal to resume it with when its turn comes
    # a syscall that returned a restart code, written at the task's next event unless the
    # kernel restarts it (no handler ran): then the program never saw that result
    interrupted: tuple[_PendingSyscall, SyscallFrame] | None = None
    exit_written: bool = False  # its ExitFrame is in the trace
    group_stopped: bool = False  # in a job-control stop, left there until a SIGCONT
    # a clone child made traced although its parent asked for CLONE_UNTRACED: the
    # flags register it must show at its first stop, as in replay (the parent's)
    clone_flags_register: int | None = None
    # the asynchronous signal it was last given and the registers that delivery interrupted,
    # until it enters a syscall other than rt_sigreturn (to see a handler that returns into
    # the same signal again, no instruction of the interrupted code run)
    last_async: tuple[int, bytes] | None = None


def _prints(fd: int) -> bool:
    """Whether rrgdb's fd is open on something output can be seen in (not /dev/null)."""
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return not (stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3))


def _open_fds(tid: int) -> list[int]:
    """The fds open in tid's process."""
    try:
        return [int(name) for name in os.listdir(f"/proc/{tid}/fd")]
    except OSError:
        return []


def _exits_group(rt: _RecordTask) -> bool:
    """Whether rt is inside exit_group."""
    return rt.pending is not None and rt.pending.spec.name == "exit_group"


def _execs(rt: _RecordTask) -> bool:
    """Whether rt is inside execve (or execveat)."""
    return rt.pending is not None and rt.pending.spec.special == "execve"


# The header's extra key listing the signals the program started with ignored: replay
# starts it the same way (the kernel's dispositions answer the sigaction calls it runs).
_IGNORED_SIGNALS = "ignored_signals"


def ignored_signals_at_start(header: TraceHeader) -> frozenset[int]:
    """The signals the recorded program was started with ignored (none in a trace from
    before the key existed)."""
    listed = header.extra.get(_IGNORED_SIGNALS, "")
    return frozenset(int(s) for s in listed.split(",") if s.isdigit())


# The header's extra key naming the CPU the recording ran on: replay runs on the same one.
# Programs keep what tells them their CPU in memory (rdtscp's TSC_AUX, getcpu; cpuid's
# APIC id when CPUID faulting is off: HotSpot stores its cpuid results), and preemption
# points hash the memory.
_CPU = "cpu_number"
# The header's extra key saying whether cpuid faulted and was recorded (CpuidFrame): "yes"
# or "no" (a trace without it, version 4, was recorded without).
_CPUID_FAULTING = "cpuid_faulting"


# The header's extra key saying when a vfork parent's buffer came back (vfork_returns_buffer):
# "parent_syscall", at the parent's first syscall entry after its child's exec or exit
# (with or without other threads); "yes" in traces from before, at the child's exec or
# exit itself, to a parent that had no other thread; absent in older ones, where it stayed
# off.
_VFORK_BUFFER = "vfork_returns_buffer"
VFORK_BUFFER_AT_PARENT_SYSCALL = "parent_syscall"
VFORK_BUFFER_AT_CHILD_EXEC = "yes"


def recorded_vfork_buffer_return(header: TraceHeader) -> str | None:
    """When the recorder gave vfork parents their buffer back: VFORK_BUFFER_AT_PARENT_SYSCALL,
    VFORK_BUFFER_AT_CHILD_EXEC, or None (never)."""
    value = header.extra.get(_VFORK_BUFFER)
    return value if value in (VFORK_BUFFER_AT_PARENT_SYSCALL, VFORK_BUFFER_AT_CHILD_EXEC) else None


def recorded_cpu(header: TraceHeader) -> int | None:
    """The CPU the recording was bound to (None in a trace from before the key existed)."""
    number = header.extra.get(_CPU, "")
    return int(number) if number.isdigit() else None


def recorded_cpuid_faulting(header: TraceHeader) -> bool:
    """Whether the recording trapped cpuid (its values are CpuidFrames)."""
    return header.extra.get(_CPUID_FAULTING) == "yes"


def inherited_ignored_signals() -> frozenset[int]:
    """The signals this process was started with ignored (e.g. SIGHUP under nohup), which
    a program run natively from here would inherit ignored; not SIGPIPE and SIGXFSZ, which
    Python ignores for itself."""
    return frozenset(
        signo for signo in signal.valid_signals()
        if signo not in (signal.SIGPIPE, signal.SIGXFSZ)
        and signal.getsignal(signo) == signal.SIG_IGN)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


def pmu_available() -> bool:
    """Whether hardware performance counters (retired branches) can be opened here."""
    try:
        fd = native.perf_event_open(0, 4, 0, 0)  # PERF_TYPE_HARDWARE, BRANCH_INSTRUCTIONS
    except OSError:
        return False
    os.close(fd)
    return True


_WITHOUT_PMU = ("threads switch and asynchronous signals arrive at syscalls; a thread "
                "computing without syscalls is preempted at a point replay finds by its "
                "registers and memory")


def scheduling_mode(pmu: bool) -> str:
    """How this recording places thread switches and signals (said by `rrgdb record`)."""
    if pmu:
        return f"a PMU is present but not used by this version: {_WITHOUT_PMU}"
    return f"no PMU: {_WITHOUT_PMU}"


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
    """Records one program — and every process it forks — into a trace directory.

    Processes run concurrently (they share no memory); each one's events are written in
    the order the recorder sees them, which replay follows.
    """

    def __init__(self, argv: list[str], trace_dir: Path, syscallbuf: bool = True,
                 cpuid_faulting: bool = True) -> None:
        self.syscallbuf = syscallbuf
        self._ignored_signals = inherited_ignored_signals()  # before rrgdb sets its own
        self.program = resolve_program(argv[0])
        self.argv = argv
        self.trace_dir = trace_dir
        self.tasks: dict[int, _RecordTask] = {}
        self.writer: TraceWriter | None = None
        # what replay prints: writes to the files of rrgdb's stdout and stderr (not /dev/null)
        self._stdio = {fd: self._identity(os.fstat(fd)) for fd in (1, 2) if _prints(fd)}
        self._early: dict[int, int] = {}  # new children that stopped before their parent's event
        self._main = 0
        self.scheduler = Scheduler()
        self.pmu = pmu_available()
        # else cpuid runs natively (asked off, or the CPU cannot)
        self.cpuid_faulting = cpuid_faulting and native.cpuid_faulting_available()
        self.mode = scheduling_mode(self.pmu)  # how thread switches and signals are placed
        self._deferred: dict[int, list[tuple[int, int]]] = {}  # tgid -> held-back stops
        self._draining: set[int] = set()  # tgids whose held-back stops are being handled
        self._main_status = 0
        self._pending_stops: list[tuple[int, int]] = []  # reported but not yet handled
        self._held_entries: dict[int, SyscallEntryFrame] = {}  # tgid -> entry not yet written
        self._stdio_writer = 0  # the task whose write to rrgdb's stdout/stderr is under way
        self._stdio_queue: list[int] = []  # tasks stopped at such a write's entry meanwhile


    @staticmethod
    def _identity(st: os.stat_result) -> tuple[int, int]:
        return st.st_dev, st.st_ino

    # -- the run ----------------------------------------------------------------------
    def run(self) -> int:
        """Records the program to its end; returns the raw wait status of the program."""
        native.bind_to_one_cpu()  # before the header, which names the CPU
        cpu, = os.sched_getaffinity(0)
        header = TraceHeader(
            program=self.program, argv=list(self.argv), cwd=os.getcwd(),
            rlimit_stack=_stack_limit(), created=time.time(),
            kernel=os.uname().release, cpu=cpu_model(), syscallbuf=self.syscallbuf,
            extra={"scheduling": self.mode, "pmu": "yes" if self.pmu else "no",
                   _IGNORED_SIGNALS: ",".join(map(str, sorted(self._ignored_signals))),
                   _CPU: str(cpu),
                   _CPUID_FAULTING: "yes" if self.cpuid_faulting else "no",
                   _VFORK_BUFFER: VFORK_BUFFER_AT_PARENT_SYSCALL})
        self.writer = TraceWriter(self.trace_dir, header)
        try:
            status = self._record()
        except BaseException:
            self.kill_all()
            self._write_held()
            self.writer.flush()  # what was recorded stays readable; the trace stays incomplete
            raise
        self._write_held()
        self.writer.close()
        return status

    def _environment(self) -> list[bytes]:
        """Our environment, plus the preload library when syscalls are buffered."""
        env = dict(os.environ)
        if self.syscallbuf:
            preload = str(syscallbuf.preload_library())
            env["LD_PRELOAD"] = ":".join(p for p in (preload, env.get("LD_PRELOAD")) if p)
            env["RRGDB_SYSCALLBUF"] = "1"
            # AddressSanitizer's runtime refuses to start unless it comes first after the
            # program, where the preload library is: that check alone is turned off (of
            # ASAN_OPTIONS' colon-separated options, the last one wins), here for a program
            # that defines its own default options, and by the library's default options
            # for one whose ASAN_OPTIONS a parent replaced (stubs/preload.c)
            env["ASAN_OPTIONS"] = ":".join(
                p for p in (env.get("ASAN_OPTIONS"), "verify_asan_link_order=0") if p)
        return [f"{k}={v}".encode() for k, v in env.items()]

    def kill_all(self) -> None:
        """Ends every tracee by pid."""
        # a process's leader is reaped only after its threads: reap leaders last
        for rt in sorted(self.tasks.values(), key=lambda rt: rt.task.tid == rt.task.tgid):
            rt.task.kill()
        for pid in list(self._early):
            Task(pid).kill()
        self.tasks.clear()
        self._early.clear()

    def _record(self) -> int:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        try:
            pid = native.spawn(self.program, [a.encode() for a in self.argv],
                               self._environment(), None, None, False, write_fd,
                               self._ignored_signals)
        finally:
            os.close(write_fd)
        task = Task(pid)
        self.tasks[pid] = _RecordTask(task)
        self._main = pid
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
        self._on_exec(self.tasks[pid])
        self._to_user(self.tasks[pid])
        return self._loop()

    def _loop(self) -> int:
        while self.tasks:
            pid, status = self._wait_any()
            rt = self.tasks.get(pid)
            if rt is not None and status >> 16 == native.PTRACE_EVENT_EXIT:
                running = self.scheduler.running(rt.task.tgid)
                tgid = rt.task.tgid
                siblings = [other for other in self.tasks.values()
                            if other is not rt and other.task.tgid == tgid]
                killed_by_sibling = any(map(_exits_group, siblings))
                # Killed by a sibling's execve, which waits for this death: handled now
                # (the turn holder may be dead already, killed in a ptrace stop without
                # an exit stop, and a leader's death is never reported).
                killed_by_exec = any(map(_execs, siblings))
                if not killed_by_exec and (killed_by_sibling or (
                        running and running != pid and not _exits_group(rt))):
                    # A sibling runs user code: this thread's death (the kernel clears its
                    # tid word, wakes its joiner) must come after the sibling's next event,
                    # which is where replay will put it. Killed by a sibling's exit_group
                    # (whose caller dies without waiting for anyone): after the caller's
                    # death, which is where replay sees it happen.
                    self._deferred.setdefault(tgid, []).append((pid, status))
                    continue
            self._handle(pid, status)
        return self._main_status

    def _handle(self, pid: int, status: int) -> None:
        stop = Stop.decode(status)
        rt = self.tasks.get(pid)
        if rt is None:
            if not stop.finished:
                self._early[pid] = status  # a child announced before its parent's event
            return
        if stop.finished:
            if not rt.exit_written and status == 0:  # a sibling's execve killed it in a
                self._write(ExitFrame(pid, status))  # ptrace stop: no exit stop came
            rt.task.alive = False
            del self.tasks[pid]
            if pid == rt.task.tgid:
                self.scheduler.unshare(pid)
            self._end_stdio_write(rt)
            self._release_turn(rt)
            if pid == self._main:
                self._main_status = stop.status
            return
        try:
            self._on_stop(rt, stop)
        except ProcessLookupError:
            pass  # SIGKILLed from outside while we looked at it: its exit comes next

    # -- turn-taking between the threads of a process ------------------------------------
    def _resume(self, rt: _RecordTask, sig: int = 0, to_user: bool = False) -> None:
        """Resumes rt. Into user code, a task under the syscall buffer's seccomp filter runs
        with PTRACE_CONT: only its traced syscalls stop it (PTRACE_EVENT_SECCOMP)."""
        request = self._user_request(rt) if to_user else native.PTRACE_SYSCALL
        if rt.boundary_calls == BOUNDARY_UNRESUMED:
            rt.boundary_calls = (syscallbuf.calls_made(rt.task)
                                 if self.syscallbuf and rt.seccomp else None)
        try:
            rt.task.resume(request, sig)
        except ProcessLookupError:
            pass  # killed meanwhile (SIGKILL from outside); its exit comes next

    @staticmethod
    def _user_request(rt: _RecordTask) -> int:
        """The ptrace request that runs rt's user code until its next traced syscall."""
        return native.PTRACE_CONT if rt.seccomp else native.PTRACE_SYSCALL

    def _to_kernel(self, rt: _RecordTask) -> None:
        """rt continues inside the kernel; another thread of its process may run."""
        self._resume(rt)
        self._release_turn(rt)

    def _to_user(self, rt: _RecordTask, sig: int = 0) -> None:
        """rt is about to run user code: now if it has its process's turn, else later."""
        tgid = rt.task.tgid
        if tgid not in self._draining and self.scheduler.ask(tgid, rt.task.tid):
            self._resume(rt, sig, to_user=True)
        else:
            self.scheduler.queue(tgid, rt.task.tid)
            rt.held_signal = sig

    # -- writes to rrgdb's own stdout and stderr, one at a time ---------------------------
    def _into_syscall(self, rt: _RecordTask) -> None:
        """rt goes on into the syscall whose entry was just recorded. A write to rrgdb's
        stdout or stderr waits at its entry while another task's is in the kernel (as rr's
        StdioMonitor does): the kernel performs concurrent writes in an order nobody sees,
        and replay prints them in the order of their frames, so they are made one at a time
        and each one's frame is written before the next starts."""
        if self._writes_stdio(rt):
            if self._stdio_writer:
                self._stdio_queue.append(rt.task.tid)
                self._release_turn(rt)
                return
            self._stdio_writer = rt.task.tid
        pending = rt.pending
        if pending is not None and (pending.regs.syscallno in ADDRESS_SPACE_SYSCALLS
                                    or _copies_memory(pending)):
            # Its siblings wait for its exit: the kernel's choice of where their mappings
            # go depends on this one's, and replay makes it at its frame. (A munmap that a
            # sibling's mmap overtook in replay took that mmap's pages away.) A fork copies
            # the memory as it is when the kernel gets to it, and replay forks at the
            # frame: a sibling running meanwhile left its state of that moment in the
            # child (its syscall buffer's records, which the child flushed as its own).
            self._resume(rt)
            return
        if pending is not None and _sends_sigcont(pending.regs):
            # Made at once, the recorder waiting for its exit (it never blocks): no SIGSTOP
            # of rrgdb's may meanwhile discard the SIGCONT before _note_continue sees it.
            self._resume(rt)
            self._pending_stops.insert(0, native.waitpid(rt.task.tid))
            self._release_turn(rt)
            return
        self._to_kernel(rt)

    def _writes_stdio(self, rt: _RecordTask) -> bool:
        pending = rt.pending
        return (pending is not None and len(self.tasks) > 1
                and pending.regs.syscallno in WRITE_SYSCALLS
                and self._stdio_stream(rt.task, pending.regs.arg(0)) != 0)

    def _end_stdio_write(self, rt: _RecordTask) -> None:
        """rt left the kernel or died: if its write to stdio was under way, the next
        waiting one goes on into the kernel."""
        tid = rt.task.tid
        if tid in self._stdio_queue:
            self._stdio_queue.remove(tid)
        if tid != self._stdio_writer:
            return
        self._stdio_writer = 0
        while self._stdio_queue:
            following = self.tasks.get(self._stdio_queue.pop(0))
            if following is not None:
                self._stdio_writer = following.task.tid
                self._resume(following)
                return

    def _release_turn(self, rt: _RecordTask) -> None:
        """rt stops running user code: first the stops of its siblings held back meanwhile
        are handled (none of them runs user code during that), then the turn passes."""
        tgid = rt.task.tgid
        self.scheduler.release(tgid, rt.task.tid)
        if tgid in self._draining:
            return
        self._draining.add(tgid)
        try:
            while self._deferred.get(tgid):
                self._handle(*self._deferred[tgid].pop(0))
        finally:
            self._draining.discard(tgid)
            self._deferred.pop(tgid, None)
        for tid in self.scheduler.handoff(self._draining):
            following = self.tasks.get(tid)
            if following is not None:
                self._resume(following, following.held_signal, to_user=True)
                following.held_signal = 0

    def _threads(self, tgid: int) -> list[_RecordTask]:
        """The traced threads of process tgid."""
        return [rt for rt in self.tasks.values() if rt.task.tgid == tgid]

    def _continue_group(self, tgid: int) -> None:
        """A SIGCONT (or a stop signal after one) ended process tgid's job-control stop:
        the kernel continued all its threads, and discarded their stop signals: those
        pending, rrgdb's own too (each thread's rt.stopping then says whether one is
        still on its way), and those already taken but not yet acted on. The recorder
        discards those it holds likewise, parked or to go with the thread's resume:
        natively the thread would have stopped before the SIGCONT, and delivered after it
        such a signal left the process stopped for good. Under ptrace, each thread left
        in its group-stop is resumed by the recorder, when its turn comes."""
        threads = self._threads(tgid)
        for rt in threads:
            if rt.stopping:
                rt.stopping = bool(_pending_masks(rt.task.tid)[0] & SIGSTOP_BIT)
            rt.parked = [p for p in rt.parked if p[0] not in STOP_SIGNALS]
            rt.requeued = [p for p in rt.requeued if p[0] not in STOP_SIGNALS]
            if rt.held_signal in STOP_SIGNALS:
                rt.held_signal = 0
        for rt in threads:
            if rt.group_stopped:
                rt.group_stopped = False
                self._to_user(rt)

    def _note_continue(self, tgid: int) -> int:
        """Takes a SIGCONT pending for process tgid (or one of its threads) as having
        continued it (_continue_group); while a thread waits in its group-stop, a stop
        signal pending too (ENDS_GROUP_STOP). Called then, and before rrgdb sends a stop
        signal into the process, at which the kernel discards a pending SIGCONT: a
        parent's SIGCONT sent soon after its SIGSTOP went unseen, and the recorder
        delivered the SIGSTOP it held after it, or left the threads in their group-stop:
        the process stayed stopped for good. Returns the signals pending in it."""
        threads = self._threads(tgid)
        pending = _pending_in_process(threads)
        ends = ENDS_GROUP_STOP if any(rt.group_stopped for rt in threads) else SIGCONT_BIT
        if pending & ends:
            self._continue_group(tgid)
        return pending

    def _wait_any(self) -> tuple[int, int]:
        """The next stop of any tracee. While a task holds a parked signal, poll, and stop
        a task that keeps computing without syscalls so the signal is not delayed forever."""
        if self._pending_stops:
            return self._pending_stops.pop(0)
        pause = 0.00005  # doubling up to 1 ms: a turn holder that blocks is seen soon
        while True:
            # one pass over the tasks at every stop: those that hold a parked signal or
            # wait in a job-control stop (rarely any)
            held = [rt for rt in self.tasks.values() if rt.parked or rt.group_stopped]
            parked = [rt for rt in held if rt.parked]
            stopped = [rt for rt in held if rt.group_stopped]
            if not parked and not stopped and not self.scheduler.contended() and not any(
                    self._deferred.values()):
                return native.waitpid(-1)
            for tgid in {rt.task.tgid for rt in stopped}:
                self._note_continue(tgid)  # they take the signal at their next resume
            # (a job-control stop is delivered at once: natively the process would stop
            # now, and its parent's waitpid(WUNTRACED) return. This comes before the
            # stops already reported: a timer at 10 kHz reports one at every pass.)
            now = time.monotonic()
            self._preempt([rt for rt in parked if now - rt.parked_at > rt.park_timeout
                           or any(signo in STOP_SIGNALS for signo, _ in rt.parked)])
            pid, status = native.waitpid(-1, native.WALL | native.WNOHANG)
            if pid:
                return pid, status
            busy = {tgid for tgid, stops in self._deferred.items() if stops}
            self._preempt([self.tasks[tid] for tid in self.scheduler.overdue(busy)
                           if tid in self.tasks])
            # a turn holder asleep in a buffered call would keep the others waiting until
            # it is overdue (the job of rr's desched events; architecture.md)
            self._preempt([self.tasks[tid] for tid in self.scheduler.holding_up(busy)
                           if tid in self.tasks and syscallbuf.blocked_in_call(tid)])
            time.sleep(pause)
            pause = min(2 * pause, 0.001)

    def _preempt(self, overdue: list[_RecordTask]) -> None:
        """Stops (SIGSTOP) the tasks that ran too long with a parked signal or a turn."""
        for rt in overdue:
            if rt.stopping or rt.group_stopped:  # (a SIGCONT would flush it)
                continue
            if (self._note_continue(rt.task.tgid) & SIGCONT_BIT
                    and _takes_caught_sigcont(rt.task.tid)):
                continue  # it takes the SIGCONT first, which the SIGSTOP would discard
            rt.stopping = True
            native.tgkill(rt.task.tgid, rt.task.tid, signal.SIGSTOP)

    def _on_stop(self, rt: _RecordTask, stop: Stop) -> None:
        """Handles one stop and decides when the task runs again."""
        rt.group_stopped = False  # (a SIGKILL ends a job-control stop too)
        if rt.fresh:
            rt.fresh = False
            self._first_stop(rt)
            if stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGSTOP:
                self._to_user(rt)  # the automatic stop of a new child
                return
        if stop.kind is StopKind.SYSCALL:
            if self._on_syscall_stop(rt):
                self._into_syscall(rt)
            else:
                self._end_stdio_write(rt)
                self._to_user(rt)
        elif stop.kind is StopKind.SIGNAL:
            sig = self._on_signal(rt, stop)
            if sig is not None:
                self._to_user(rt, sig)
        elif stop.event == native.PTRACE_EVENT_SECCOMP:
            self._on_syscall_entry(rt)  # a traced syscall under the buffer's filter
            self._into_syscall(rt)
        elif stop.event == native.PTRACE_EVENT_EXEC:
            rt = self._end_other_threads(rt)
            rt.pending = None
            self._on_exec(rt)
            self._to_user(rt)
        elif stop.event == native.PTRACE_EVENT_EXIT:
            self._finish_cut_syscall(rt)
            self._end_stdio_write(rt)
            self._write(ExitFrame(rt.task.tid, rt.task.event_msg()))
            rt.exit_written = True
            self._release_vfork_parent(rt)
            if rt.task.tid != rt.task.tgid:
                # Let a thread finish dying (the kernel clears its tid word and wakes its
                # joiner) before a sibling runs on: replay does it at this point too.
                self._resume(rt)
                rt.task.wait()
                del self.tasks[rt.task.tid]
                self._release_turn(rt)
            else:
                self._to_kernel(rt)
        elif stop.event == native.PTRACE_EVENT_VFORK_DONE:
            # The parent of a vfork runs again once its child execs, but replay must see
            # the child's exec first: hold the parent until that is written.
            if any(t.vfork_parent == rt.task.tid for t in self.tasks.values()):
                rt.held = True
            else:
                self._resume(rt)
        elif stop.event in (native.PTRACE_EVENT_FORK, native.PTRACE_EVENT_VFORK,
                            native.PTRACE_EVENT_CLONE):
            self._on_new_child(rt, rt.task.event_msg())
            self._resume(rt)
        elif stop.event == native.PTRACE_EVENT_STOP:
            self._resume(rt)
        else:
            raise RecordError(f"unexpected ptrace event {stop.event} in {rt.task.tid}")

    def _write(self, frame: Frame) -> None:
        assert self.writer is not None
        rt = self.tasks.get(frame.tid)
        if rt is not None and rt.interrupted is not None:
            interrupted, rt.interrupted = rt.interrupted[1], None
            self._write(interrupted)
        if self.syscallbuf and not isinstance(frame, ExecFrame):
            self._flush(frame.tid)
        self._emit(frame)

    def _emit(self, frame: Frame) -> None:
        """The one place frames reach the trace. The held syscall entries of the frame's
        process, and of the processes it shares memory with, go first, unless the frame is
        that syscall's own completion: then nothing that could see its user-space effects
        ran in between and the entry frame is dropped (rr's SCHED elision; replay runs
        the thread to the entry at the SyscallFrame itself, as for a single thread)."""
        assert self.writer is not None
        for held in self._take_held(frame.tid):
            if not (isinstance(frame, SyscallFrame) and held.tid == frame.tid):
                self.writer.write(held)
        self.writer.write(frame)

    def _emit_held(self, tid: int) -> None:
        """Writes the held entries that a frame of tid would have to follow."""
        assert self.writer is not None
        for held in self._take_held(tid):
            self.writer.write(held)

    def _hold_entry(self, rt: _RecordTask, frame: SyscallEntryFrame) -> None:
        """Orders a syscall entry against what else may run before the syscall returns
        (the other threads of its process, the processes it shares memory with): the frame
        is written when one of their frames comes before the syscall's own (see _emit)."""
        self._emit_held(frame.tid)  # a sibling's, still held
        if self.syscallbuf:
            self._flush(frame.tid)
        self._held_entries[rt.task.tgid] = frame

    def _take_held(self, tid: int) -> list[SyscallEntryFrame]:
        """The held entries that a frame of tid must follow, in the order they were held:
        its process's, and if it shares memory, those of the others that do."""
        rt = self.tasks.get(tid)
        tgid = rt.task.tgid if rt is not None else tid
        sharing = self.scheduler.sharing(tgid)
        related = [key for key in self._held_entries
                   if key == tgid or (sharing and self.scheduler.sharing(key))]
        return [self._held_entries.pop(key) for key in related]

    def _write_held(self) -> None:
        """Writes every syscall entry still held (the recording ends)."""
        assert self.writer is not None
        for held in self._held_entries.values():
            self.writer.write(held)
        self._held_entries.clear()

    def _flush(self, tid: int) -> None:
        """Buffered syscalls made since the task's last frame go in first, so replay puts
        them back just before the stop that follows them."""
        rt = self.tasks.get(tid)
        if rt is None:
            return
        if self.scheduler.running(rt.task.tgid) not in (0, tid) or rt.vfork_parent:
            # a sibling runs user code: the records are its own (threads share the
            # buffer), taken at its next event while it is stopped; a vfork child's
            # buffer is its parent's (its memory), where it makes no calls itself
            return
        data = syscallbuf.take_records(rt.task)
        if data is None:
            return
        if len(data) > syscallbuf.PREFIX or rt.trap_requested:
            self._emit(FlushFrame(tid, data))
            rt.trap_requested = False

    # -- processes --------------------------------------------------------------------
    def _on_new_child(self, parent: _RecordTask, child_tid: int) -> None:
        """At the fork/vfork/clone event: the parent's syscall is written now, so that it
        precedes everything the child does; the child starts running."""
        pending = parent.pending
        if pending is None:
            raise RecordError(f"task {parent.task.tid} created {child_tid} outside a syscall")
        flags = pending.clone_flags
        # clone3 takes its flags from memory: kept with the frame (as the bytes the call
        # read), so that tools reading the trace tell threads from processes
        args = ([MemWrite(pending.regs.arg(0), flags.to_bytes(8, "little"))]
                if syscall_name(pending.regs.syscallno) == "clone3" else [])
        self._write(SyscallFrame(parent.task.tid, pending.regs.to_bytes(), child_tid, args,
                                 0, ""))
        pending.written = True
        tgid = parent.task.tgid if flags & CLONE_THREAD else child_tid
        child = _RecordTask(Task(child_tid, tgid), seccomp=parent.seccomp,
                            returns_buffer=pending.returns_buffer)
        if not flags & CLONE_THREAD:
            if self.scheduler.sharing(parent.task.tgid):
                self.scheduler.share(child_tid)  # it inherits the shared mappings
            if flags & CLONE_VM and not flags & CLONE_VFORK:
                self.scheduler.share(parent.task.tgid)  # one address space, two processes
                self.scheduler.share(child_tid)
        if flags & CLONE_VFORK:
            child.vfork_parent = parent.task.tid
        if flags & CLONE_UNTRACED:
            child.clone_flags_register = pending.regs.rdi
        self.tasks[child_tid] = child
        early = self._early.pop(child_tid, None)
        if early is not None:
            child.fresh = False
            self._first_stop(child)
            self._to_user(child)

    @staticmethod
    def _first_stop(child: _RecordTask) -> None:
        """A new child at its first stop: its flags register gets back what its parent
        passed (_trace_the_clone)."""
        if child.clone_flags_register is not None:
            regs = child.task.regs()
            regs.rdi = child.clone_flags_register
            child.task.set_regs(regs)
            child.clone_flags_register = None

    # -- exec -------------------------------------------------------------------------
    def _on_exec(self, rt: _RecordTask) -> None:
        """At PTRACE_EVENT_EXEC: finish the execve, hide the vDSO, map the scratch page and
        record the new program's initial state."""
        assert self.writer is not None
        task = rt.task
        self.scheduler.unshare(task.tgid)  # a new address space
        task.reopen_memory()
        task.resume(native.PTRACE_SYSCALL)
        stop = task.wait()
        if stop.kind is not StopKind.SYSCALL:
            raise RecordError(f"unexpected stop {stop} after exec in {task.tid}")
        hide_vdso(task)
        map_scratch_page(task, replay=False)
        disable_alternate_stack(task)
        if self.cpuid_faulting:
            set_cpuid_faulting(task, True)
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
        regs = task.regs()
        rt.boundary, rt.boundary_calls = regs.to_bytes(), BOUNDARY_UNRESUMED
        self._write(ExecFrame(task.tid, rt.boundary, exe, exe_id, argv, envp, mappings, memory))
        self._release_vfork_parent(rt)

    def _end_other_threads(self, rt: _RecordTask) -> _RecordTask:
        """At PTRACE_EVENT_EXEC, which the kernel reports under the leader's tid: the
        execve killed the process's other threads. Each one whose exit is not in the trace
        yet (killed in a ptrace stop without an exit stop, its death not reported yet, or
        the leader, whose death is never reported) gets an ExitFrame (status 0) now, before
        the ExecFrame: replay ends it there. If a thread other than the leader exec'd (its
        former tid is the event's message), its _RecordTask goes on under the leader's tid,
        as the kernel renumbers it; returns the task that exec'd."""
        tgid = rt.task.tgid
        execing = self.tasks.get(rt.task.event_msg(), rt)
        others = [t for t in self.tasks.values() if t.task.tgid == tgid and t is not execing]
        for other in others:  # a later report of their death finds no task and is reaped
            if not other.exit_written:
                self._write(ExitFrame(other.task.tid, 0))
                other.exit_written = True
            self.scheduler.release(tgid, other.task.tid)
            del self.tasks[other.task.tid]
        for other in others:  # (once none of them is in the table to be resumed)
            self._end_stdio_write(other)
        if execing is not rt:
            del self.tasks[execing.task.tid]
            execing.task.tid = tgid
            self.tasks[tgid] = execing
        return execing

    def _stop_buffering_for_clone(self, rt: _RecordTask, pending: _PendingSyscall) -> None:
        """At the entry of a clone whose child will share the memory, and so the buffer
        (clone_disables_buffer), buffering stops, and the clone decides whether its child
        gives it back: yes if the process buffered, or if it takes that over from another
        vfork child still sharing the memory or a parent whose buffer is about to return
        (vfork_returns_buffer). At the entry, not at the clone's event: rt holds its
        process's turn here, so no sibling runs user code, and replay stops buffering at
        the same moment (the clone's arrival); by the event rt has given the turn up in
        the kernel, and a sibling could be between the library's check of the switch and
        its call, or have left records in the buffer that the child's first flush took as
        its own (replay diverged)."""
        tgid = rt.task.tgid
        returning = [t for t in self._threads(tgid) if t.buffer_returning]
        for thread in returning:
            thread.buffer_returning = False  # (this child gives it back instead)
        taken_over = bool(returning) or any(self._buffer_sharers(tgid))
        pending.stops_buffer = True
        pending.returns_buffer = vfork_returns_buffer(pending.clone_flags, rt.task, taken_over)
        syscallbuf.disable(rt.task)

    def _buffer_sharers(self, tgid: int) -> list[bool]:
        """Whether each of what shares process tgid's memory and buffer gives the buffer
        back (vfork_returns_buffer): its vfork children that have not exec'd or exited,
        and its threads' clones that stopped buffering at their entry and whose child the
        kernel has not reported yet."""
        children = [t.returns_buffer for t in self.tasks.values() if t.vfork_parent
                    and t.vfork_parent in self.tasks
                    and self.tasks[t.vfork_parent].task.tgid == tgid]
        return children + [t.pending.returns_buffer for t in self._threads(tgid)
                           if t.pending is not None and t.pending.stops_buffer
                           and not t.pending.written]

    def _return_buffer(self, parent: _RecordTask) -> None:
        """A clone that stopped buffering in parent's process no longer shares its memory
        (its child exec'd or exited, or it failed): buffering comes back at parent's next
        syscall entry, unless another vfork child, or a clone under way, still shares it
        (that one gives it back; replay sees the same, as the entries of such clones are
        in the trace before this frame)."""
        if not self._buffer_sharers(parent.task.tgid):
            parent.buffer_returning = True

    def _release_vfork_parent(self, child: _RecordTask) -> None:
        """At a vfork child's exec or exit (after its frame): the parent runs on. If the
        child returns the buffer and was the last to share it, buffering comes back at the
        parent's next syscall entry: a sibling thread may be running user code now, between
        the library's check of the switch and its syscall, while at that entry, where the
        parent holds its process's turn, none is, and replay finds the same moment (the
        parent's first syscall event after this one)."""
        parent = self.tasks.get(child.vfork_parent)
        child.vfork_parent = 0
        if parent is not None and child.returns_buffer:
            self._return_buffer(parent)
        child.returns_buffer = False
        if parent is not None and parent.held:
            parent.held = False
            parent.task.resume(native.PTRACE_SYSCALL)
    # -- syscalls ---------------------------------------------------------------------
    def _on_syscall_stop(self, rt: _RecordTask) -> bool:
        """Records a syscall entry or exit; True at an entry (the task goes on into the
        kernel), False at an exit (it goes back to user code)."""
        op = native.syscall_info(rt.task.tid)[0]
        if op == native.SYSCALL_INFO_ENTRY:
            self._on_syscall_entry(rt)
            return True
        if op == native.SYSCALL_INFO_EXIT and rt.pending is not None:
            self._on_syscall_exit(rt, rt.pending)
            rt.pending = None
        return False

    def _on_syscall_entry(self, rt: _RecordTask) -> None:
        task = rt.task
        regs = task.regs()
        if regs.syscallno != RT_SIGRETURN:
            rt.last_async = None  # the code it interrupted ran on (_starving)
        if self._restarted(rt, regs):
            self._raise_parked(rt)  # as below: it interrupts the call if it blocks again
            return
        if rt.buffer_returning:
            rt.buffer_returning = False
            syscallbuf.enable(task)  # (_release_vfork_parent)
        nr = regs.syscallno
        spec = SPECS.get(nr)
        try:
            if spec is None:
                raise UnsupportedSyscall(syscall_name(nr))
            check_supported(spec, regs)
        except UnsupportedSyscall as e:
            raise RecordError(f"unsupported syscall {e} (#{nr}) in task {task.tid}; "
                              f"rrgdb cannot record it faithfully") from None
        if spec.refused:
            skipped = regs.copy()  # the call is not made; it fails at its exit
            skipped.orig_rax = 2**64 - 1
            task.set_regs(skipped)
        rt.pending = _PendingSyscall(regs, spec, entry_state(task, spec, regs))
        if spec.special == "clone":
            rt.pending.clone_flags = clone_flags(task, regs)
        if rt.pending.clone_flags & CLONE_UNTRACED:
            self._trace_the_clone(task, regs)
        if spec.special in ("execve", "clone") and self.syscallbuf:
            # the buffer goes with the old program; a new process must start with an empty
            # copy, as it does in replay, where the fork follows the parent's flush
            self._flush(task.tid)
        stops_buffer = self.syscallbuf and clone_disables_buffer(rt.pending.clone_flags)
        if stops_buffer:
            self._stop_buffering_for_clone(rt, rt.pending)
        if self.scheduler.sharing(task.tgid) or any(
                t.task.tgid == task.tgid and t is not rt for t in self.tasks.values()):
            # other threads, or processes sharing memory, may run before this syscall
            # returns: order its entry
            self._hold_entry(rt, SyscallEntryFrame(task.tid, regs.to_bytes()))
            if stops_buffer:
                # written now: replay takes the clone's decision at its arrival, and must
                # see what the recorder saw here (vfork children that exec or exit next)
                self._emit_held(task.tid)
        self._raise_parked(rt)  # delivered now: it interrupts this syscall if it blocks

    def _raise_parked(self, rt: _RecordTask) -> None:
        """Sends rt, at a syscall's entry, its first parked signal again. A stop signal
        makes the kernel discard a pending SIGCONT: one that came since is taken first
        (and discards the stop signal)."""
        if rt.parked and rt.parked[0][0] in STOP_SIGNALS:
            self._note_continue(rt.task.tgid)
        if rt.parked:
            native.tgkill(rt.task.tgid, rt.task.tid, rt.parked[0][0])

    @staticmethod
    def _trace_the_clone(task: Task, regs: Registers) -> None:
        """A clone asking for CLONE_UNTRACED (LeakSanitizer's thread-suspending helper
        does) is made without it, as rr does: an untraced child would run unrecorded in
        memory it may share, and under the buffer's seccomp filter, without a tracer,
        every syscall it makes would fail. The flags register gets its value back after
        the call, in the parent and in the child."""
        if syscall_name(regs.syscallno) == "clone3":
            raise RecordError(f"clone3 with CLONE_UNTRACED in task {task.tid} is not "
                              f"supported")
        call = regs.copy()
        call.set_arg(0, regs.arg(0) & ~CLONE_UNTRACED)
        task.set_regs(call)

    def _restarted(self, rt: _RecordTask, regs: Registers) -> bool:
        """At a syscall entry: True if it is the kernel restarting the task's interrupted
        syscall after a signal that ran no handler. That syscall goes on as if it had
        never been interrupted: its entry is already recorded, and restart_syscall is
        recorded as the original syscall."""
        if rt.interrupted is None:
            return False
        pending, frame = rt.interrupted
        rt.interrupted = None
        same_site = regs.rip == pending.regs.rip
        if same_site and (
            (frame.result in RESTART_SAME and regs.syscallno == pending.regs.syscallno)
            or (frame.result == RESTART_BLOCK and regs.syscallno == RESTART_SYSCALL)
        ):
            rt.pending = pending
            return True
        self._write(frame)
        return False

    def _on_syscall_exit(self, rt: _RecordTask, pending: _PendingSyscall) -> None:
        task = rt.task
        after = task.regs()
        regs, spec = pending.regs, pending.spec
        result = after.result
        if spec.refused:
            result = -spec.refused
            after.rax = result
            task.set_regs(after)
        if spec.special == "clone" and after.rdi != regs.rdi:
            after.rdi = regs.rdi  # CLONE_UNTRACED, cleared for the call (_trace_the_clone)
            task.set_regs(after)
        rt.boundary, rt.boundary_calls = after.to_bytes(), BOUNDARY_UNRESUMED
        if pending.stops_buffer and result < 0:
            pending.stops_buffer = False  # the clone failed: no child shares the memory
            if pending.returns_buffer:
                self._return_buffer(rt)
        fds = self._fds_changed(task, regs, result)
        if (spec.special == "prctl" and regs.arg(0) == syscallbuf.PR_SET_SECCOMP
                and result == 0 and syscallbuf.pending_bytes(task) == 0
                and task.read(syscallbuf.DISABLED, 1)):
            rt.seccomp = True  # the preload library's filter: untraced calls are buffered
            fds = {fd: self._stdio_stream(task, fd) != 0 for fd in _open_fds(task.tid)}
        if pending.written:
            return
        writes = memory_writes(task, spec, regs, result, pending.state)
        table = syscallbuf.mark_stdio_fds(task, fds) if fds else None
        if table is not None:
            writes = [*writes, MemWrite(syscallbuf.STDIO_FDS, table)]
        nr = regs.syscallno
        stream = output_crc = 0
        if nr in WRITE_SYSCALLS and result > 0:
            stream = self._stdio_stream(task, regs.arg(0))
            if stream:  # (replay compares what it writes there)
                output_crc = zlib.crc32(written_bytes(task, regs, result))
        file_id = ""
        shared = nr == MMAP and result >= 0 and bool(regs.arg(3) & MAP_SHARED)
        if nr == MMAP and result >= 0 and not regs.arg(3) & MAP_ANONYMOUS:
            file_id = self._mapped_file(task, regs.arg(4), shared)
        if shared or (spec.special == "shmat" and result >= 0):
            self.scheduler.share(task.tgid)  # others may map it too, or fork and inherit it
        frame = SyscallFrame(task.tid, regs.to_bytes(), result, writes, stream, file_id,
                             output_crc)
        if result in RESTART_SAME or result == RESTART_BLOCK:
            rt.interrupted = (pending, frame)
        else:
            self._write(frame)

    def _finish_cut_syscall(self, rt: _RecordTask) -> None:
        """At a task's death: a traced syscall it was inside, which a SIGKILL (from outside,
        or a sibling's exit_group) cut off before its exit stop, may have done its work --
        a write's bytes reached the file or pipe -- and returned to die on the way out.
        Its result is in rax: such a call is recorded as it ended, so that replay writes
        what it wrote. A call the kill stopped before it started (rax still ENOSYS) or
        interrupted (a restart code) did nothing; exit and exec never return."""
        pending, rt.pending = rt.pending, None
        if pending is None or pending.spec.replay is not Replay.EMULATE:
            return
        if pending.spec.special in ("exit", "execve"):
            return
        result = rt.task.regs().result
        if result != ENOSYS and result not in RESTART_SAME and result != RESTART_BLOCK:
            self._on_syscall_exit(rt, pending)

    def _fds_changed(self, task: Task, regs: Registers, result: int) -> dict[int, bool]:
        """The fds a traced syscall just made, replaced or closed, each with whether it
        is now rrgdb's stdout or stderr: the syscall buffer's table of those must follow
        (syscallbuf.mark_stdio_fds). Empty without the buffer."""
        if not self.syscallbuf:
            return {}
        nr = regs.syscallno
        if result >= 0 and (nr in NEW_FD_SYSCALLS or (
                nr == FCNTL and regs.arg(1) in (F_DUPFD, F_DUPFD_CLOEXEC))):
            return {result: self._stdio_stream(task, result) != 0}
        if nr == CLOSE:
            return {regs.arg(0) & 0xFFFFFFFF: False}  # closed even when it fails with EINTR
        if nr == CLOSE_RANGE and result == 0 and not regs.arg(2) & CLOSE_RANGE_CLOEXEC:
            last = min(regs.arg(1) & 0xFFFFFFFF, syscallbuf.STDIO_FD_LIMIT - 1)
            return dict.fromkeys(range(regs.arg(0) & 0xFFFFFFFF, last + 1), False)
        return {}

    def _stdio_stream(self, task: Task, fd: int) -> int:
        try:
            ident = self._identity(os.stat(f"/proc/{task.tid}/fd/{fd}"))
        except OSError:
            return 0
        for stream, own in self._stdio.items():
            if own == ident:
                return stream
        return 0

    def _mapped_file(self, task: Task, fd: int, shared: bool) -> str:
        """The SyscallFrame's file_id for a mapping of fd (see SyscallFrame)."""
        assert self.writer is not None
        path = f"/proc/{task.tid}/fd/{fd & 0xFFFFFFFF}"
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                return ""
            file_id = self.writer.add_file(path, name=os.readlink(path))
            return f"{file_id}@{st.st_dev:x}:{st.st_ino:x}" if shared else file_id
        except OSError as e:
            raise RecordError(f"cannot copy mapped file {path}: {e.strerror}") from None

    # -- signals ----------------------------------------------------------------------
    def _on_signal(self, rt: _RecordTask, stop: Stop) -> int | None:
        """Records a signal-delivery stop; returns the signal to deliver (0 if none; None:
        the task is not to be resumed)."""
        signo = stop.signo
        task = rt.task
        regs = task.regs()
        raw = regs.to_bytes()
        if (signo not in SYNCHRONOUS_SIGNALS and signo not in JOB_CONTROL_SIGNALS
                and _parked_already(rt, signo)
                and (raw != rt.boundary or rt.last_async == (signo, raw))):
            # a repeat of a parked signal while user code runs, or while it waits to run
            # (_starving), is dropped (as below: the kernel keeps it pending once) before
            # anything else is read: a fast timer fires again within each stop's handling.
            # (Elsewhere at its boundary it may be the parked one, raised again at a
            # syscall; faults and job control need a look.)
            return 0
        if signo == signal.SIGSEGV:
            code = task.read(regs.rip, 3)
            if code.startswith(RDTSC) or code == RDTSCP:
                self._emulate_rdtsc(task, regs, code == RDTSCP)
                return 0
            if self.cpuid_faulting and code.startswith(CPUID):
                self._emulate_cpuid(task, regs)
                return 0
        info = _siginfo(task)
        if info is None:  # a job-control stop after a stop signal's delivery (group-stop)
            rt.group_stopped = True  # as natively: stopped until a SIGCONT comes
            self._release_turn(rt)  # (the processes sharing memory with it run meanwhile)
            return None
        # (a preemption stop handled again later: settle() ran the thread on since, so
        # its siginfo is now that of a single step's or a breakpoint's trap)
        if signo == signal.SIGSTOP and (rt.settled is not None or _sent_by_rrgdb(info)):
            return self._on_preempt(rt, regs, stop)
        if signo == signal.SIGCONT:
            # it continued the whole process when it was sent: its threads still in the
            # job-control stop would wait for a SIGCONT that this one took
            self._continue_group(task.tgid)
        disposition = signal_disposition(task.tid, signo)
        if _is_fault(signo, info):
            self._write(SignalFrame(task.tid, raw, signo, info, True))
            return self._deliver(rt, signo, disposition == "caught", fault=True)
        if disposition == "ignored":
            return 0  # delivering it would change nothing; replay need not know
        if not self._at_boundary(rt, regs) or _starving(rt, signo, info, raw):
            # Arrived while user code ran: no deterministic point to replay it at. Park it
            # until the task's next syscall, where it is raised again (DESIGN.md §6).
            if not rt.parked:
                rt.parked_at = time.monotonic()
            if not _parked_already(rt, signo):
                # a standard signal already pending is not pending twice (the kernel
                # drops the second: an interval timer firing during a long loop)
                rt.parked.append((signo, info))
            # buffered calls must not hide the next syscall, nor block until it comes
            rt.trap_requested |= syscallbuf.trap_soon(task)
            if syscallbuf.in_call(task):
                syscallbuf.abandon_if_blocked(task, regs)
                syscallbuf.undo_mask_change(task, regs)
            return 0
        for held in (rt.parked, rt.requeued):
            parked = next((p for p in held if p[0] == signo), None)
            if parked is not None:
                held.remove(parked)
                info = parked[1]
                task.set_siginfo(info)
                break
        self._write(SignalFrame(task.tid, raw, signo, info, False))
        rt.last_async = (signo, raw)
        return self._deliver(rt, signo, disposition == "caught", fault=False)

    def _deliver(self, rt: _RecordTask, signo: int, caught: bool, fault: bool) -> int | None:
        """A signal just recorded: a handler is entered now, with its frame made the same
        as replay's (kernel/signal_frames.py); else it goes with the resume. Returns the
        signal still to deliver (None: the task is not to be resumed)."""
        task = rt.task
        if (not fault and self.scheduler.running(task.tgid) in (0, task.tid)
                and not any(t.parked for t in self._threads(task.tgid))):
            # nothing waits for a syscall any more. (Not while a sibling runs: a call it is
            # making now may have been traced for the old ordinal, which its flush must say.)
            syscallbuf.stop_trapping(task)
        if not caught:
            return signo
        other = enter_handler(task, signo, fault=fault, clear_unwritten=True)
        if other is not None:  # killed meanwhile, or no room for the frame: handled next
            self._pending_stops.append((task.tid, other.status))
            return None
        return 0

    def _on_preempt(self, rt: _RecordTask, regs: Registers, stop: Stop) -> int | None:
        """rrgdb stopped rt (SIGSTOP) because others waited for its process's turn or a
        parked signal waited for a syscall. Mid-computation, the moment is recorded by its
        state (PreemptFrame); then the parked signal is delivered here, or the turn passes."""
        task = rt.task
        if syscallbuf.in_call(task):
            # Between a buffered call's start and its record: no event can be placed here.
            # If it blocks in the kernel, it gives up and the library retries it as a
            # traced syscall (where a parked signal is delivered); else it soon finishes.
            rt.stopping = False
            syscallbuf.abandon_if_blocked(task, regs)
            return 0
        # Stopped right where its last syscall left it (a syscall the SIGSTOP interrupted
        # is restarted from here, rt.interrupted): no instruction ran, nothing to record.
        # Anywhere else it is recorded, even with the registers of its previous
        # preemption: a loop that keeps its state in memory (gcc -O0) comes back to the
        # same registers, and taking it for a thread that had not moved left its turns
        # unrecorded (replay diverged: one -O0 recording of threads_compute in three).
        if not self._at_boundary(rt, regs):
            started = time.monotonic()
            if rt.settled is None or rt.settled.regs.to_bytes() != regs.to_bytes():
                run = Running(self._user_request(rt), lambda stop: self._drops(rt, stop),
                              lambda: self._note_continue(task.tgid))
                settled = settle(task, regs, run, probe=rt.probes_interrupted < PROBE_TRIES)
                if isinstance(settled, Interrupted):  # not stopped after all: that stop first
                    rt.stopping = settled.ours
                    rt.probes_interrupted += 1
                    self._pending_stops.append((task.tid, settled.stop.status))
                    return None
                rt.settled = settled
            settled = rt.settled
            regs = settled.regs
            self._drain()
            if self._pending_stops:  # handle those first, then come back to this stop
                self._pending_stops.append((task.tid, stop.status))
                return None
            rt.settled = None
            rt.probes_interrupted = 0
            self._write(PreemptFrame(task.tid, regs.to_bytes(), memory_hash(task),
                                     settled.patch_length, read_stack(task, regs),
                                     settled.watched))
            cost = time.monotonic() - started
            rt.park_timeout = min(PARK_TIMEOUT_MAX, max(PARK_TIMEOUT_MIN, PARK_COST_FACTOR * cost))
        else:
            self._drain()
            if self._pending_stops:  # as above (a SIGCONT's, say, which discards a parked
                self._pending_stops.append((task.tid, stop.status))  # stop signal)
                return None
            # (it may now wait for its turn: the count is taken again when it runs)
            rt.boundary_calls = BOUNDARY_UNRESUMED
        rt.stopping = False
        if rt.parked and blocked_signals(task.tid) & 1 << (rt.parked[0][0] - 1):
            # blocked here (the thread is in that signal's handler, say): the kernel holds
            # it until a syscall unblocks it, and it is recorded at that boundary
            rt.requeued.append(rt.parked.pop(0))
            native.tgkill(task.tgid, task.tid, rt.requeued[-1][0])
        if rt.parked:
            signo, info = rt.parked.pop(0)
            task.set_siginfo(info)
            self._write(SignalFrame(task.tid, regs.to_bytes(), signo, info, False))
            rt.last_async = (signo, regs.to_bytes())
            return self._deliver(
                rt, signo, signal_disposition(task.tid, signo) == "caught", fault=False)
        self._release_turn(rt)
        if self.scheduler.ask(task.tgid, task.tid):
            return 0  # nobody else wanted to run
        rt.held_signal = 0
        return None

    def _at_boundary(self, rt: _RecordTask, regs: Registers) -> bool:
        """Whether rt stands where its last syscall (or exec) left it, no instruction run
        since: its registers are those, and it has made no buffered call since (perl's
        loop under a 10 ms timer came back to the registers rt_sigreturn left after two
        buffered rt_sigprocmask calls, and a tick recorded "at the boundary" there diverged
        in replay, where those calls come first)."""
        if regs.to_bytes() != rt.boundary:
            return False
        if rt.boundary_calls == BOUNDARY_UNRESUMED or rt.boundary_calls is None:
            # not resumed since; or it had no buffer then, and setting one up takes
            # traced calls, each a new boundary
            return True
        return syscallbuf.calls_made(rt.task) == rt.boundary_calls

    def _drops(self, rt: _RecordTask, stop: Stop) -> bool:
        """Whether a signal stop that comes while settle() runs rt is taken without
        interrupting it (a timer every few ms interrupted every probe, and replay of the
        loop, recorded without one, took hours; a parent stopping and continuing the
        process every few ms did the same): a standard signal that fired again while rt
        holds it parked (dropped, as _on_signal drops it); a SIGCONT without a handler,
        which did all it does when it was sent (_continue_group); a stop signal with its
        default action, parked: delivered at the preemption point being made."""
        if stop.kind is not StopKind.SIGNAL or not (
                stop.signo in STOP_SIGNALS or stop.signo == signal.SIGCONT
                or _parked_already(rt, stop.signo)):
            return False
        info = _siginfo(rt.task)
        if info is None or _is_fault(stop.signo, info) or _sent_by_rrgdb(info):
            return False  # a group-stop, a fault, rrgdb's SIGSTOP: settle() sees to them
        if _parked_already(rt, stop.signo):
            return True
        disposition = signal_disposition(rt.task.tid, stop.signo)
        if stop.signo == signal.SIGCONT and disposition != "caught":
            self._continue_group(rt.task.tgid)
            return True
        if stop.signo in STOP_SIGNALS and disposition == "default":
            if not rt.parked:
                rt.parked_at = time.monotonic()
            rt.parked.append((stop.signo, info))
            return True
        return False

    def _drain(self) -> None:
        """Collects the stops already reported, to be handled before a memory hash is
        taken (so kernel writes of finished syscalls come first in the trace too)."""
        while True:
            pid, status = native.waitpid(-1, native.WALL | native.WNOHANG)
            if not pid:
                return
            self._pending_stops.append((pid, status))

    def _emulate_rdtsc(self, task: Task, regs: Registers, is_rdtscp: bool) -> None:
        if is_rdtscp:
            value, aux = native.rdtscp()
        else:
            value, aux = native.rdtsc(), 0
        self._write(InstructionTrapFrame(task.tid, regs.to_bytes(), value, aux))
        apply_rdtsc(task, regs, value, aux, is_rdtscp)

    def _emulate_cpuid(self, task: Task, regs: Registers) -> None:
        """A cpuid that faulted: it runs here, on the CPU the tracee is bound to too, and
        the program sees no feature replay could not reproduce (RDRAND, ...)."""
        leaf, subleaf = regs.rax & 0xFFFFFFFF, regs.rcx & 0xFFFFFFFF
        values = recordable_answer(leaf, subleaf, native.cpuid(leaf, subleaf))
        self._write(CpuidFrame(task.tid, regs.to_bytes(), *values))
        complete_cpuid(task, regs, values)


DEFAULT_IGNORED = {signal.SIGCHLD, signal.SIGURG, signal.SIGWINCH, signal.SIGCONT}
STOP_SIGNALS = {signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}
JOB_CONTROL_SIGNALS = STOP_SIGNALS | {signal.SIGCONT}
SIGSTOP_BIT = 1 << (signal.SIGSTOP - 1)  # in /proc's signal masks
SIGCONT_BIT = 1 << (signal.SIGCONT - 1)
# Pending signals that take a task out of its job-control stop (it is resumed to receive
# them): a SIGCONT, or a stop signal, which the kernel leaves pending only when it came
# after a SIGCONT that continued the group (and flushed that SIGCONT: a parent's quick
# SIGCONT then SIGSTOP left the child waiting for a SIGCONT no longer there, and the
# parent for a stop that never came)
ENDS_GROUP_STOP = sum(1 << (s - 1) for s in (signal.SIGCONT, *STOP_SIGNALS))


def _siginfo(task: Task) -> bytes | None:
    """The siginfo of the task's signal stop; None for the job-control stop that follows
    a stop signal's delivery (a group-stop, which has none)."""
    try:
        return task.siginfo()
    except OSError as e:
        if e.errno == errno.EINVAL:
            return None
        raise


def _is_fault(signo: int, siginfo: bytes) -> bool:
    """Whether the signal is a synchronous fault the CPU raised (si_code > 0), not one
    sent (kill, tgkill, a timer: si_code <= 0)."""
    return signo in SYNCHRONOUS_SIGNALS and _si_code(siginfo) > 0


def _si_code(siginfo: bytes) -> int:
    """The siginfo's si_code: > 0 from the kernel (a fault's kind), <= 0 for a sent one."""
    return int.from_bytes(siginfo[SIGINFO_CODE], "little", signed=True)


def _starving(rt: _RecordTask, signo: int, siginfo: bytes, regs: bytes) -> bool:
    """Whether a timer's signal (or a standard signal, pending once) came again when its
    handler returned, before the interrupted code ran an instruction: the registers are
    those its last delivery interrupted, and no syscall but rt_sigreturn came since (a
    loop that sleeps until a signal comes back to the same registers in the same call).
    Delivered there, it would be again and again when a handler and its rt_sigreturn
    under the recorder take longer than the timer's period (a timer every 150 us into a
    loop without syscalls: the loop never ran on), so it is parked like one that came
    while user code ran, and the code runs until the park's end."""
    if rt.last_async != (signo, regs):
        return False
    return signo < KERNEL_SIGRTMIN or _si_code(siginfo) == SI_TIMER


def _parked_already(rt: _RecordTask, signo: int) -> bool:
    """Whether a standard signal is parked for rt already: the kernel keeps one pending,
    so another of it is dropped (an interval timer firing during a long loop)."""
    return signo < KERNEL_SIGRTMIN and any(p[0] == signo for p in rt.parked)


def _signal_masks(tid: int) -> dict[str, int]:
    """The SigPnd/ShdPnd/SigBlk/SigIgn/SigCgt masks of /proc/TID/status."""
    masks = {}
    with open(f"/proc/{tid}/status") as f:
        for line in f:
            if line.startswith(("SigPnd:", "ShdPnd:", "SigBlk:", "SigIgn:", "SigCgt:")):
                key, value = line.split(":")
                masks[key] = int(value, 16)
    return masks


def _pending_in_process(threads: list[_RecordTask]) -> int:
    """The signals pending for the process of these threads (all of its threads) or for
    any of them, rrgdb's own SIGSTOP left out."""
    pending = 0
    for rt in threads:
        own, shared = _pending_masks(rt.task.tid)
        ours = SIGSTOP_BIT if rt.stopping else 0  # (sent to the thread)
        pending |= own & ~ours | shared
    return pending


def _sends_sigcont(regs: Registers) -> bool:
    """Whether the syscall entered with these registers sends a SIGCONT."""
    index = SIGNAL_ARGUMENT.get(regs.syscallno)
    return index is not None and regs.arg(index) == signal.SIGCONT


def _takes_caught_sigcont(tid: int) -> bool:
    """Whether the thread has a handler for SIGCONT and does not block it."""
    try:
        masks = _signal_masks(tid)
    except FileNotFoundError:  # killed, its death not yet handled
        return False
    return bool(masks.get("SigCgt", 0) & ~masks.get("SigBlk", 0) & SIGCONT_BIT)


def _pending_masks(tid: int) -> tuple[int, int]:
    """The signals pending for the thread and for its process (none once it is gone:
    killed, its death not yet handled)."""
    try:
        masks = _signal_masks(tid)
    except FileNotFoundError:
        return 0, 0
    return masks.get("SigPnd", 0), masks.get("ShdPnd", 0)


def _sent_by_rrgdb(siginfo: bytes) -> bool:
    """Whether a signal with this siginfo is one rrgdb sent (tgkill: SI_TKILL, its pid):
    a preemption's SIGSTOP, not one of the program's."""
    code, _, pid = struct.unpack_from("<iii", siginfo, 8)
    return code == SI_TKILL and pid == os.getpid()


def blocked_signals(tid: int) -> int:
    """The thread's blocked-signal mask."""
    return _signal_masks(tid).get("SigBlk", 0)


def signal_disposition(tid: int, signo: int) -> str:
    """'caught' (a handler), 'ignored' (SIG_IGN or a default that does nothing here), or
    'default' (the default action, e.g. terminate), from /proc/TID/status."""
    masks = _signal_masks(tid)
    bit = 1 << (signo - 1)
    if masks.get("SigCgt", 0) & bit:
        return "caught"
    if masks.get("SigIgn", 0) & bit or signo in DEFAULT_IGNORED:
        return "ignored"
    return "default"


CLONE_VM, CLONE_VFORK, CLONE_THREAD, CLONE_UNTRACED = 0x100, 0x4000, 0x10000, 0x800000
CLONE_PARENT_SETTID, CLONE_CHILD_SETTID = 0x100000, 0x1000000


def _copies_memory(pending: _PendingSyscall) -> bool:
    """Whether the pending syscall is a fork: a clone whose child gets a copy of the
    memory (no CLONE_VM) and that returns at once (no CLONE_VFORK: a vfork parent waits
    for its child's exec, which may wait for a sibling)."""
    return (pending.spec.special == "clone"
            and not pending.clone_flags & (CLONE_VM | CLONE_VFORK))


def clone_disables_buffer(flags: int) -> bool:
    """Whether a clone with these flags stops buffering in the process: a vfork child (or
    any other process sharing the memory) would use the one buffer beside its parent.
    Threads share it safely: only the thread holding its process's turn runs user code
    (record/scheduler.py), and the buffer is flushed before every event, so each flush
    holds the calls of one thread; a buffered call that blocks is abandoned when the
    turn is overdue (syscallbuf.abandon_if_blocked)."""
    return bool(flags & CLONE_VM and not flags & CLONE_THREAD)


def vfork_returns_buffer(flags: int, parent: Task, taken_over: bool) -> bool:
    """Whether buffering, which a clone with these flags stops in parent's process (see
    clone_disables_buffer), comes back once the child no longer shares its memory (exec or
    exit): for a vfork (CLONE_VFORK, as posix_spawn, system() and Python's subprocess make
    them), when the process buffered before it, or when the vfork of another of its threads
    stopped it, whose child, still sharing the memory, would return it (taken_over: the
    last child to leave returns it). A process stayed unbuffered after its first vfork:
    Python's os.stat ran ~4x slower after one subprocess.run, and every syscall of a
    multi-threaded one was traced after it."""
    return bool(flags & CLONE_VFORK) and (taken_over or syscallbuf.buffering(parent))


def clone_flags(task: Task, regs: Registers) -> int:
    """The flags of a fork/vfork/clone/clone3 syscall at its entry."""
    name = syscall_name(regs.syscallno)
    if name == "fork":
        return signal.SIGCHLD
    if name == "vfork":
        return CLONE_VM | CLONE_VFORK | signal.SIGCHLD
    if name == "clone3":
        return task.read_u64(regs.arg(0))
    return regs.arg(0)


def apply_rdtsc(task: Task, regs: Registers, value: int, aux: int, is_rdtscp: bool) -> None:
    """Completes a trapped rdtsc/rdtscp with the given counter value."""
    after = regs.copy()
    after.rax = value & 0xFFFFFFFF
    after.rdx = value >> 32
    if is_rdtscp:
        after.rcx = aux
    after.rip = regs.rip + (3 if is_rdtscp else 2)
    task.set_regs(after)
