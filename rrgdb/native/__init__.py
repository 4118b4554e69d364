"""The native layer: ptrace, waitpid, tracee memory access and the spawn helper.

cffi objects never leave this package: callers see ints, bytes and OSError.
"""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Sequence

from rrgdb.native._rrgdb_native import ffi, lib

# ptrace requests (x86-64 Linux ABI)
PTRACE_PEEKUSER = 3
PTRACE_POKEUSER = 6
PTRACE_CONT = 7
PTRACE_KILL = 8
PTRACE_SINGLESTEP = 9
PTRACE_GETFPREGS = 14
PTRACE_SYSCALL = 24
PTRACE_SYSEMU = 31
PTRACE_SYSEMU_SINGLESTEP = 32
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201
PTRACE_GETSIGINFO = 0x4202
PTRACE_SETSIGINFO = 0x4203
PTRACE_INTERRUPT = 0x4207
PTRACE_GETSIGMASK = 0x420A
PTRACE_SETSIGMASK = 0x420B
PTRACE_GET_SYSCALL_INFO = 0x420E

PTRACE_O_TRACESYSGOOD = 0x01
PTRACE_O_TRACEFORK = 0x02
PTRACE_O_TRACEVFORK = 0x04
PTRACE_O_TRACECLONE = 0x08
PTRACE_O_TRACEEXEC = 0x10
PTRACE_O_TRACEVFORKDONE = 0x20
PTRACE_O_TRACEEXIT = 0x40
PTRACE_O_TRACESECCOMP = 0x80
PTRACE_O_EXITKILL = 0x100000

PTRACE_EVENT_FORK = 1
PTRACE_EVENT_VFORK = 2
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_EXEC = 4
PTRACE_EVENT_VFORK_DONE = 5
PTRACE_EVENT_EXIT = 6
PTRACE_EVENT_SECCOMP = 7
PTRACE_EVENT_STOP = 128

SYSCALL_INFO_NONE = 0
SYSCALL_INFO_ENTRY = 1
SYSCALL_INFO_EXIT = 2
SYSCALL_INFO_SECCOMP = 3

NT_PRFPREG = 2
NT_X86_XSTATE = 0x202

WALL = 0x40000000
WNOHANG = 1

USER_REGS_SIZE = lib.rr_user_regs_size()
SIGINFO_SIZE = 128
XSTATE_MAX = 1 << 14  # the XSAVE area: ~2.7 KB with AVX-512, ~11 KB with AMX tiles


def _check(result: int, what: str, pid: int = 0) -> int:
    if result < 0:
        err = ffi.errno
        raise OSError(err, f"{what} (pid {pid}): {os.strerror(err)}")
    return result


def ptrace(request: int, pid: int, addr: int = 0, data: int = 0) -> int:
    """Raw ptrace; raises OSError on failure (PEEK* results are returned as-is)."""
    result = lib.rr_ptrace(request, pid, addr, data)
    if result == -1 and ffi.errno != 0:
        _check(-1, f"ptrace({request:#x})", pid)
    return result


def waitpid(pid: int, options: int = WALL) -> tuple[int, int]:
    """waitpid with __WALL by default; returns (pid, raw status); (0, 0) for WNOHANG."""
    status = ffi.new("int *")
    while (got := lib.rr_waitpid(pid, status, options)) < 0 and ffi.errno == errno.EINTR:
        pass  # a signal came: its Python handler (record's SIGTERM) runs here, then retry
    return _check(got, "waitpid", pid), status[0]


def get_regs(pid: int) -> bytes:
    """The raw 216-byte user_regs_struct of a stopped tracee."""
    buf = ffi.new("char[]", USER_REGS_SIZE)
    _check(lib.rr_getregs(pid, buf), "PTRACE_GETREGS", pid)
    return ffi.buffer(buf)[:]


def set_regs(pid: int, regs: bytes) -> None:
    """Writes a raw user_regs_struct into a stopped tracee."""
    _check(lib.rr_setregs(pid, regs), "PTRACE_SETREGS", pid)


def get_regset(pid: int, note_type: int, size: int = XSTATE_MAX) -> bytes:
    """PTRACE_GETREGSET (NT_PRFPREG: FXSAVE area; NT_X86_XSTATE: XSAVE area)."""
    buf = ffi.new("char[]", size)
    got = _check(lib.rr_getregset(pid, note_type, buf, size), "PTRACE_GETREGSET", pid)
    return ffi.buffer(buf, got)[:]


def set_regset(pid: int, note_type: int, data: bytes) -> None:
    """PTRACE_SETREGSET with the given area."""
    _check(lib.rr_setregset(pid, note_type, data, len(data)), "PTRACE_SETREGSET", pid)


def syscall_info(pid: int) -> tuple[int, ...]:
    """PTRACE_GET_SYSCALL_INFO as (op, nr, a0..a5, rval, is_error, ip, sp)."""
    out = ffi.new("uint64_t[12]")
    _check(lib.rr_syscall_info(pid, out), "PTRACE_GET_SYSCALL_INFO", pid)
    return tuple(out)


def get_siginfo(pid: int) -> bytes:
    """The 128-byte siginfo of the signal a tracee is stopped for."""
    buf = ffi.new("char[]", SIGINFO_SIZE)
    _check(lib.rr_ptrace(PTRACE_GETSIGINFO, pid, 0, int(ffi.cast("uintptr_t", buf))),
           "PTRACE_GETSIGINFO", pid)
    return ffi.buffer(buf)[:]


def set_siginfo(pid: int, siginfo: bytes) -> None:
    """Replaces the siginfo of the signal a tracee is stopped for."""
    buf = ffi.new("char[]", siginfo)
    _check(lib.rr_ptrace(PTRACE_SETSIGINFO, pid, 0, int(ffi.cast("uintptr_t", buf))),
           "PTRACE_SETSIGINFO", pid)


def get_sigmask(pid: int) -> int:
    """The blocked-signal mask of a stopped tracee (bit N-1: signal N)."""
    out = ffi.new("uint64_t *")
    _check(lib.rr_ptrace(PTRACE_GETSIGMASK, pid, 8, int(ffi.cast("uintptr_t", out))),
           "PTRACE_GETSIGMASK", pid)
    return out[0]


def set_sigmask(pid: int, mask: int) -> None:
    """Replaces the blocked-signal mask of a stopped tracee."""
    buf = ffi.new("uint64_t *", mask)
    _check(lib.rr_ptrace(PTRACE_SETSIGMASK, pid, 8, int(ffi.cast("uintptr_t", buf))),
           "PTRACE_SETSIGMASK", pid)


def get_event_msg(pid: int) -> int:
    """PTRACE_GETEVENTMSG (new tid, exit status, ...)."""
    out = ffi.new("unsigned long *")
    _check(lib.rr_ptrace(PTRACE_GETEVENTMSG, pid, 0, int(ffi.cast("uintptr_t", out))),
           "PTRACE_GETEVENTMSG", pid)
    return out[0]


# Buffers filled at once by the kernel need no zeroing first.
_new_uncleared = ffi.new_allocator(should_clear_after_alloc=False)


def read_memory(pid: int, addr: int, length: int) -> bytes:
    """Reads tracee memory with process_vm_readv; may return fewer bytes at a mapping end."""
    if length <= 0:
        return b""
    buf = _new_uncleared("char[]", length)
    got = lib.rr_read_mem(pid, addr, buf, length)
    if got < 0:
        err = ffi.errno
        raise OSError(err, f"cannot read {length} bytes at {addr:#x} (pid {pid})")
    return ffi.buffer(buf, got)[:]


def memory_hash(pid: int, ranges: Sequence[tuple[int, int, bool]]) -> bytes:
    """A 32-byte digest of the contents and addresses of the page-aligned ranges
    (start, end, zero_fill) of process pid, in address order; see stubs/memory_hash.c.

    zero_fill says the range reads as zeros wherever no page is present or swapped out
    (private anonymous memory): those pages are skipped, unread."""
    flat = ffi.new("uint64_t[]", [value for start, end, zero_fill in ranges
                                  for value in (start, end, int(zero_fill))])
    out = ffi.new("uint8_t[32]")
    _check(lib.rrgdb_memory_hash(pid, flat, len(ranges), out), "memory_hash", pid)
    return ffi.buffer(out)[:]


def page_hashes(pid: int, ranges: Sequence[tuple[int, int, bool]]) -> dict[int, int]:
    """The address → 64-bit hash of every page memory_hash() would count (those that
    are not all zeros) in the same ranges."""
    flat = ffi.new("uint64_t[]", [value for start, end, zero_fill in ranges
                                  for value in (start, end, int(zero_fill))])
    capacity = sum(end - start for start, end, _ in ranges) // 4096  # every page
    out = _new_uncleared("uint64_t[]", 2 * capacity + 2)  # (untouched: never paged in)
    count = _check(lib.rrgdb_page_hashes(pid, flat, len(ranges), out, capacity),
                   "page_hashes", pid)
    pairs = ffi.unpack(out, 2 * count)
    return dict(zip(pairs[::2], pairs[1::2], strict=True))


def write_memory_vm(pid: int, addr: int, data: bytes) -> int:
    """process_vm_writev (writable pages only); returns the byte count written."""
    return _check(lib.rr_write_mem(pid, addr, data, len(data)), "process_vm_writev", pid)


def keep_freed_memory() -> None:
    """Makes glibc keep freed memory for reuse instead of handing it back to the kernel.

    By default it unmaps large freed blocks (and trims the heap), so each new
    megabyte-sized bytes object -- a syscall buffer's records, a trace block -- faults in
    fresh zeroed pages: about 2 ms per MB, more than copying it. Up to 64 MB stay mapped.
    """
    lib.mallopt(lib.M_MMAP_THRESHOLD, 32 << 20)
    lib.mallopt(lib.M_TRIM_THRESHOLD, 64 << 20)


def debugreg_offset(index: int) -> int:
    """Offset of u_debugreg[index] in struct user, for PTRACE_PEEKUSER/POKEUSER."""
    return lib.rr_debugreg_offset(index)


def tgkill(tgid: int, tid: int, sig: int) -> None:
    """Sends a signal to one thread."""
    _check(lib.rr_tgkill(tgid, tid, sig), "tgkill", tid)


def perf_event_open(type_: int, config: int, sample_period: int, pid: int) -> int:
    """Opens a (disabled) perf event for pid on any CPU; returns the fd."""
    return _check(lib.rr_perf_event_open(type_, config, sample_period, pid, -1, -1, 0),
                  "perf_event_open", pid)


def rdtsc() -> int:
    """The tracer's own time-stamp counter."""
    return lib.rr_rdtsc()


def rdtscp() -> tuple[int, int]:
    """(tsc, TSC_AUX) read with rdtscp."""
    aux = ffi.new("uint32_t *")
    value = lib.rr_rdtscp(aux)
    return value, aux[0]


ARCH_SET_CPUID = 0x1012  # arch_prctl: 0 makes cpuid fault (SIGSEGV), 1 runs it


def cpuid(leaf: int, subleaf: int) -> tuple[int, int, int, int]:
    """(eax, ebx, ecx, edx) that cpuid answers here for leaf (eax) and subleaf (ecx)."""
    out = ffi.new("uint32_t[4]")
    lib.rr_cpuid(leaf & 0xFFFFFFFF, subleaf & 0xFFFFFFFF, out)
    return out[0], out[1], out[2], out[3]


def cpuid_faulting_available() -> bool:
    """Whether this machine can make cpuid fault (arch_prctl ARCH_SET_CPUID). Asked by
    enabling cpuid in rrgdb itself, which it already is: that fails (ENODEV) only
    without the CPU feature."""
    return lib.rr_arch_prctl(ARCH_SET_CPUID, 1) == 0


def bind_to_one_cpu(preferred: int | None = None) -> None:
    """Binds the calling thread, and so every tracee it spawns, to one CPU: `preferred`
    if it may run there (replay takes the recording's: rdtscp's TSC_AUX and the CPU
    number the kernel reports, and with CPUID faulting off cpuid's APIC id, tell a
    program its CPU), else one of its CPUs at random. A thread already bound to one CPU keeps it.

    A ptrace stop is a wake-up of the tracer and then of the tracee; on one CPU that is a
    local context switch (~8 us here), across CPUs of a VM an inter-processor interrupt
    each way (~80-170 us). The recorder runs one tracee thread at a time anyway, so rr
    binds too."""
    if preferred is not None:
        try:
            os.sched_setaffinity(0, {preferred})
            return
        except OSError:
            pass  # no such CPU here, or not one this process may use
    allowed = os.sched_getaffinity(0)
    if len(allowed) > 1:
        os.sched_setaffinity(0, {random.choice(sorted(allowed))})


def spawn(path: str, argv: list[bytes], envp: list[bytes], cwd: str | None,
          stack_limit: tuple[int, int] | None, no_core: bool, err_fd: int,
          ignored: frozenset[int] = frozenset()) -> int:
    """Forks a stopped tracee (SIGSTOP) that will execve path; see stubs/spawn.c. Its
    signal dispositions are the defaults, but the signals in `ignored` are ignored.

    The caller (the tracer thread) and the tracee are bound to one CPU first."""
    bind_to_one_cpu()
    keep = [ffi.new("char[]", a) for a in argv]
    c_argv = ffi.new("char *[]", keep + [ffi.NULL])
    keep_env = [ffi.new("char[]", e) for e in envp]
    c_envp = ffi.new("char *[]", keep_env + [ffi.NULL])
    options = ffi.new("struct rrgdb_spawn_options *")
    options.stack_soft, options.stack_hard = stack_limit if stack_limit is not None else (0, 0)
    options.no_core = int(no_core)
    options.ignored = sum(1 << (signo - 1) for signo in ignored if 0 < signo <= 64)
    c_cwd = ffi.new("char[]", cwd.encode()) if cwd else ffi.NULL
    return _check(lib.rrgdb_spawn(path.encode(), c_argv, c_envp, c_cwd, options, err_fd),
                  "fork")
