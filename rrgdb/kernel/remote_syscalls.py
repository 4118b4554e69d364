"""Remote syscalls: make a stopped tracee execute a syscall on rrgdb's behalf.

rrgdb maps one scratch page at a fixed address in every tracee (in record and in replay
alike, so address spaces stay identical). It starts with a `syscall` instruction, used as
the injection site, and has room for path strings passed to injected syscalls.
"""

from __future__ import annotations

import signal
import struct

from rrgdb import native
from rrgdb.kernel.address_space import read_maps
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.task import Stop, StopKind, Task, TraceeGone
from rrgdb.syscall_numbers import NUMBERS

SCRATCH_ADDR = 0x70000000
SCRATCH_SIZE = 0x1000
SYSCALL_SITE = SCRATCH_ADDR  # `syscall` (0f 05) then int3
SCRATCH_DATA = SCRATCH_ADDR + 0x100
# offset 0: the injection site (syscall; int3); offset 0x10: the preload library's
# untraced stub, the one site its seccomp filter lets through: when recording
# `syscall; mov $0x246,%r11d; ret`; when replaying, the same registers without the syscall
# (rcx = the address after `syscall`, as the instruction leaves it). Offset 0x20, replay
# only: the stub the library calls as a buffered call returns, in the same form. While gdb
# catches syscalls, replay gives both stubs the recording's form (TRAPPING_STUB): their
# syscall stops are a buffered call's entry and return (rrgdb/syscallbuf.py).
UNTRACED_STUB, RETURN_STUB = SCRATCH_ADDR + 0x10, SCRATCH_ADDR + 0x20
_INJECTION_SITE = b"\x0f\x05\xcc".ljust(0x10, b"\xcc")
_R11_CONSTANT = b"\x41\xbb\x46\x02\x00\x00\xc3"
TRAPPING_STUB = (b"\x0f\x05" + _R11_CONSTANT).ljust(12, b"\xcc")


def replaying_stub(stub: int) -> bytes:
    """`mov $stub+2,%ecx; mov $0x246,%r11d; ret`: a syscall's registers without it."""
    return b"\xb9" + (stub + 2).to_bytes(4, "little") + _R11_CONSTANT


SCRATCH_CODE_RECORD = _INJECTION_SITE + b"\x0f\x05" + _R11_CONSTANT
SCRATCH_CODE_REPLAY = (_INJECTION_SITE + replaying_stub(UNTRACED_STUB).ljust(0x10, b"\xcc")
                       + replaying_stub(RETURN_STUB))

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MAP_FIXED_NOREPLACE = 0x100000
O_RDONLY, O_RDWR, O_CLOEXEC = 0, 2, 0o2000000


class InjectionError(Exception):
    """An injected syscall did not complete as expected."""


def _resume_request(site: int, returns: bool) -> int:
    """How to run the syscall instruction at site: at the injection site, where int3
    follows it, the tracee runs into the int3 (one stop, and no syscall-exit trap left
    pending by a PTRACE_SYSEMU stop); elsewhere, and for a syscall that does not return
    (rt_sigreturn), it is single-stepped."""
    return native.PTRACE_CONT if returns and site == SYSCALL_SITE else native.PTRACE_SINGLESTEP


def _after_syscall(rip: int, site: int) -> bool:
    """Whether a SIGTRAP at rip is the end of the syscall at site: a single step's trap,
    or the int3 that follows the injection site's syscall."""
    return rip == site + 2 or (site == SYSCALL_SITE and rip == site + 3)


def run_syscall(task: Task, regs: Registers, returns: bool = True) -> Registers:
    """Runs the syscall described by regs (rip at a syscall instruction, rax = number,
    arguments in place); returns the registers after it (rip just past the syscall, or
    past the int3 after it at the injection site). `returns` is False for rt_sigreturn,
    which resumes wherever its frame says.

    The task must be at a stop where new registers take effect on resume (a signal stop,
    a PTRACE_SYSEMU entry stop, a syscall exit stop or a single-step trap).
    """
    site = regs.rip
    request = _resume_request(site, returns)
    trap_blocked = _blocks_sigtrap_after(task, regs)
    task.set_regs(regs)
    for _ in range(8):
        task.resume(request)
        stop = task.wait()
        if stop.finished:
            raise TraceeGone(f"task {task.tid} died during an injected syscall")
        if stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGTRAP:
            after = task.regs()
            if after.rip == site:  # a pending syscall-exit trap fired before the step
                continue
            if _after_syscall(after.rip, site) or not returns:
                if trap_blocked:
                    reblock_sigtrap(task)
                return after
        if stop.kind is StopKind.SIGNAL and stop.signo in (signal.SIGSTOP, signal.SIGCHLD):
            continue  # a debugger interrupt or a finished copy: not for the tracee
        if stop.kind is StopKind.EVENT and stop.event == native.PTRACE_EVENT_SECCOMP:
            continue  # the syscall buffer's filter reports it; it runs on
        raise InjectionError(
            f"unexpected stop {stop} in task {task.tid} while injecting syscall {regs.rax}")
    raise InjectionError(f"injected syscall {regs.rax} did not complete in task {task.tid}")


def inject(task: Task, name: str, *args: int, site: int = SYSCALL_SITE) -> int:
    """Executes syscall `name` in the tracee and restores its registers; returns the result."""
    saved = task.regs()
    regs = saved.copy()
    regs.rip = site
    regs.rax = regs.orig_rax = NUMBERS[name]
    for i, value in enumerate(args):
        regs.set_arg(i, value)
    after = run_syscall(task, regs)
    task.set_regs(saved)
    return after.result


SIGTRAP_BIT = 1 << (signal.SIGTRAP - 1)
UC_SIGMASK = 296  # offset of uc_sigmask in the ucontext that rt_sigreturn's rsp points to
SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2


def _blocks_sigtrap_after(task: Task, regs: Registers) -> bool:
    """Whether the task is to have SIGTRAP blocked after the syscall regs describes. The
    trap that ends an injected syscall (the int3, or a single step) is a forced SIGTRAP,
    and the kernel unblocks a forced signal the task blocks: the task's mask must then
    be put back, or the program sees the change (posix_spawn's child, which blocks
    every signal, queries its mask and resets the dispositions of the blocked ones)."""
    mask = native.get_sigmask(task.tid)
    nr = regs.syscallno
    if nr == NUMBERS["rt_sigprocmask"] and regs.arg(1):
        how, change = regs.arg(0), task.read_u64(regs.arg(1))
        mask = (mask | change if how == SIG_BLOCK else mask & ~change if how == SIG_UNBLOCK
                else change if how == SIG_SETMASK else mask)
    elif nr == NUMBERS["rt_sigreturn"]:
        mask = task.read_u64(regs.rsp + UC_SIGMASK)
    return bool(mask & SIGTRAP_BIT)


def reblock_sigtrap(task: Task) -> None:
    """Blocks SIGTRAP again in a task whose mask had it before a trap rrgdb caused (an
    int3 or a single step: forced, so the kernel unblocked it)."""
    mask = native.get_sigmask(task.tid)
    if not mask & SIGTRAP_BIT:
        native.set_sigmask(task.tid, mask | SIGTRAP_BIT)


def resume_keeping_sigtrap(task: Task, request: int, sig: int = 0) -> Stop:
    """Resumes task until its next stop. A breakpoint's or a single step's trap is a
    forced SIGTRAP, which the kernel unblocks in a task that blocks it: the program
    would then see a mask the recording did not have (a real rt_sigprocmask reports it,
    a posix_spawn child acts on it), so it is blocked again. (Under PTRACE_SYSEMU, or
    when single-stepping no syscall, the program makes no syscall before the stop that
    could change its mask.)"""
    blocked = native.get_sigmask(task.tid) & SIGTRAP_BIT
    task.resume(request, sig)
    stop = task.wait()
    if blocked and stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGTRAP:
        reblock_sigtrap(task)
    return stop


def run_forking_syscall(task: Task, regs: Registers) -> tuple[Registers, Task]:
    """Runs a fork/clone syscall described by regs (as run_syscall does); the new process
    is auto-attached (PTRACE_O_TRACEFORK/CLONE) and returned stopped. Returns the parent's
    registers after the syscall and the child."""
    trap_blocked = _blocks_sigtrap_after(task, regs)
    task.set_regs(regs)
    request = _resume_request(regs.rip, True)
    child_pid = 0
    for _ in range(8):
        task.resume(request)
        stop = task.wait()
        if stop.finished:
            raise TraceeGone(f"task {task.tid} died while forking")
        if stop.kind is StopKind.EVENT and stop.event in (
                native.PTRACE_EVENT_FORK, native.PTRACE_EVENT_VFORK, native.PTRACE_EVENT_CLONE):
            child_pid = task.event_msg()
            continue
        if stop.kind is StopKind.SIGNAL and stop.signo == signal.SIGTRAP:
            after = task.regs()
            if _after_syscall(after.rip, regs.rip):
                break
            continue
        if stop.kind is StopKind.SIGNAL and stop.signo in (signal.SIGSTOP, signal.SIGCHLD):
            continue  # a debugger interrupt or a finished copy: not for the tracee
        raise InjectionError(f"unexpected stop {stop} while forking task {task.tid}")
    else:
        raise InjectionError(f"fork of task {task.tid} did not complete")
    if not child_pid:
        raise InjectionError(f"fork of task {task.tid} failed: {after.result}")
    child = Task(child_pid)
    stop = child.wait()
    if stop.finished:
        raise TraceeGone(f"the fork of task {task.tid} died at once")
    if trap_blocked:  # the child got the mask before the trap: the parent's is restored
        reblock_sigtrap(task)
    return after, child


def fork_task(task: Task) -> Task:
    """Forks the tracee by injecting fork(); the child is returned stopped, with the
    parent's registers. Used for checkpoints: a copy-on-write snapshot of the process.
    A fork shares its parent's MAP_SHARED mappings, which would let each one's later
    writes reach the other: in the child they are replaced by copies of their own
    (anonymous shared memory, with the same contents and protection, shared with the
    child's own forks only)."""
    saved = task.regs()
    regs = saved.copy()
    regs.rip = SYSCALL_SITE
    regs.rax = regs.orig_rax = NUMBERS["fork"]
    _, child = run_forking_syscall(task, regs)
    task.set_regs(saved)
    child.set_regs(saved)
    for mapping in read_maps(child.tid):  # (inject keeps the child's registers)
        if mapping.shared and mapping.prot:
            _detach_shared(child, mapping.start, mapping.end - mapping.start, mapping.prot)
    return child


def _detach_shared(task: Task, start: int, length: int, prot: int) -> None:
    contents = task.read_exact(start, length)
    addr = inject(task, "mmap", start, length, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, 2**64 - 1, 0)
    if addr != start:
        raise InjectionError(f"cannot copy the shared mapping at {start:#x}: {addr}")
    task.write(start, contents)
    if prot != PROT_READ | PROT_WRITE:
        inject(task, "mprotect", start, length, prot)


def map_scratch_page(task: Task, replay: bool) -> None:
    """Maps and fills the scratch page. Called once per address space, right after exec,
    at a stop where the task is about to run its first instruction."""
    regs = task.regs()
    site = regs.rip
    original = task.read_exact(site, 2)
    task.write(site, b"\x0f\x05")
    try:
        addr = inject(task, "mmap", SCRATCH_ADDR, SCRATCH_SIZE, PROT_READ | PROT_EXEC,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, 2**64 - 1, 0, site=site)
    finally:
        task.write(site, original)
    if addr != SCRATCH_ADDR:
        raise InjectionError(f"cannot map rrgdb's scratch page at {SCRATCH_ADDR:#x}: {addr}")
    task.write(SCRATCH_ADDR, SCRATCH_CODE_REPLAY if replay else SCRATCH_CODE_RECORD)


SS_DISABLE = 2  # sigaltstack's flag: no alternate signal stack


def disable_alternate_stack(task: Task) -> None:
    """Turns the task's alternate signal stack off, as POSIX says exec does. Linux keeps
    the flags across exec, so a program that a vfork child execs would show its parent's
    (0 when none was ever set) in its signal frames (uc_stack) when recorded, and
    SS_DISABLE when replayed, where vfork is a clone without CLONE_VFORK, which resets
    them. Called right after map_scratch_page, in record and replay alike."""
    task.write(SCRATCH_DATA, struct.pack("<Qi4xQ", 0, SS_DISABLE, 0))  # a stack_t
    result = inject(task, "sigaltstack", SCRATCH_DATA, 0)
    if result != 0:
        raise InjectionError(f"cannot turn the alternate signal stack off: {result}")


def open_in_tracee(task: Task, path: str, writable: bool = False) -> int:
    """Opens path (read-only unless writable) inside the tracee; returns the tracee's fd."""
    data = path.encode() + b"\0"
    if len(data) > SCRATCH_SIZE - (SCRATCH_DATA - SCRATCH_ADDR):
        raise InjectionError(f"path too long to inject: {path}")
    task.write(SCRATCH_DATA, data)
    mode = O_RDWR if writable else O_RDONLY
    fd = inject(task, "openat", 2**64 - 100, SCRATCH_DATA, mode | O_CLOEXEC, 0)
    if fd < 0:
        raise InjectionError(f"tracee cannot open {path}: error {-fd}")
    return fd
