"""The syscall table: for each x86-64 syscall rrgdb supports, what it writes into tracee
memory (so the recorder can capture it) and how replay treats it.

Per-syscall knowledge lives here as data. A syscall that is not in the table is refused
by the recorder with its name; it is never recorded blindly.
"""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass

from rrgdb.syscall_numbers import NAMES, NUMBERS


class Replay(enum.Enum):
    """How replay treats a syscall."""

    EMULATE = "emulate"  # skipped; recorded result and memory writes applied
    REAL = "real"  # executed for real; its result must equal the recorded one
    REAL_KEEP_RESULT = "real-keep-result"  # executed; the recorded result is what the program sees


RET = "ret"  # size = the syscall's result (when positive)


@dataclass(frozen=True, slots=True)
class Out:
    """An output buffer: the pointer is argument `arg`; its size is a constant, RET, the value
    of argument N (("arg", N)), RET times a constant (("ret*", K)), the u32 that argument
    N points to before the call (("u32at", N)), or the whole longs that hold as many bits
    as argument N says (("bits", N))."""

    arg: int
    size: int | str | tuple[str, int]


@dataclass(frozen=True, slots=True)
class SyscallSpec:
    """One row of the table."""

    name: str
    outs: tuple[Out, ...] = ()
    replay: Replay = Replay.EMULATE
    special: str = ""  # name of a hand-written handler in the recorder, if any
    refused: int = 0  # errno the recorder makes the call fail with instead of running it


STAT = 144
STATX = 256
STATFS = 120
TIMESPEC = 16
TIMEVAL = 16
RUSAGE = 144
RLIMIT = 16
SIGINFO = 128
STACK_T = 24
KSIGACTION = 32
ITIMERVAL = 32
ITIMERSPEC = 32
SHMID_DS = 112
UTSNAME = 390
SYSINFO = 112
TMS = 32
TIMEX = 208
EPOLL_EVENT = 12


def _o(arg: int, size: int | str | tuple[str, int]) -> Out:
    return Out(arg, size)


_NO_OUTPUT = (
    "write pwrite64 writev pwritev pwritev2 open openat openat2 creat close close_range lseek "
    "access faccessat faccessat2 mkdir mkdirat rmdir unlink unlinkat rename renameat renameat2 "
    "link linkat symlink symlinkat chmod fchmod fchmodat chown fchown lchown fchownat truncate "
    "ftruncate fsync fdatasync sync syncfs chdir fchdir umask dup dup2 dup3 getpid getppid "
    "gettid getuid geteuid getgid getegid getpgrp getpgid getsid setpgid setsid setuid setgid "
    "setreuid setregid setresuid setresgid kill tkill tgkill sched_yield alarm pause "
    "socket connect bind listen shutdown sendto sendmsg setsockopt "
    "fadvise64 flock utimensat utime utimes futimesat mknod mknodat sethostname "
    "setpriority getpriority inotify_init inotify_init1 inotify_add_watch inotify_rm_watch "
    "eventfd eventfd2 timerfd_create signalfd signalfd4 epoll_create epoll_create1 epoll_ctl "
    "fallocate sched_setaffinity sched_setscheduler sched_setparam membarrier "
    "ioprio_get ioprio_set personality memfd_create tee "
    "sync_file_range readahead fsetxattr setxattr lsetxattr "
    "fremovexattr removexattr lremovexattr mlock munlock mlockall munlockall msync "
    "timer_delete timer_getoverrun set_mempolicy mbind pidfd_open pidfd_send_signal "
    "pidfd_getfd mlock2 pkey_free sched_setattr clock_settime settimeofday futex_waitv"
).split()

_REAL = "mmap munmap mprotect mremap brk madvise arch_prctl rt_sigaction rt_sigprocmask " \
    "sigaltstack set_robust_list pkey_mprotect".split()  # (pkey_alloc is refused: key -1)

_TABLE: dict[str, SyscallSpec] = {name: SyscallSpec(name) for name in _NO_OUTPUT}
_TABLE.update({name: SyscallSpec(name, replay=Replay.REAL) for name in _REAL})
_TABLE.update(
    {
        s.name: s
        for s in (
            SyscallSpec("read", (_o(1, RET),)),
            SyscallSpec("pread64", (_o(1, RET),)),
            SyscallSpec("readv", special="iovec_out"),
            SyscallSpec("preadv", special="iovec_out"),
            SyscallSpec("preadv2", special="iovec_out"),
            SyscallSpec("stat", (_o(1, STAT),)),
            SyscallSpec("fstat", (_o(1, STAT),)),
            SyscallSpec("lstat", (_o(1, STAT),)),
            SyscallSpec("newfstatat", (_o(2, STAT),)),
            SyscallSpec("statx", (_o(4, STATX),)),
            SyscallSpec("statfs", (_o(1, STATFS),)),
            SyscallSpec("fstatfs", (_o(1, STATFS),)),
            SyscallSpec("getdents64", (_o(1, RET),)),
            SyscallSpec("getdents", (_o(1, RET),)),
            SyscallSpec("readlink", (_o(1, RET),)),
            SyscallSpec("readlinkat", (_o(2, RET),)),
            SyscallSpec("getcwd", (_o(0, RET),)),
            SyscallSpec("getrandom", (_o(0, RET),)),
            SyscallSpec("getxattr", (_o(2, RET),)),
            SyscallSpec("lgetxattr", (_o(2, RET),)),
            SyscallSpec("fgetxattr", (_o(2, RET),)),
            SyscallSpec("listxattr", (_o(1, RET),)),
            SyscallSpec("llistxattr", (_o(1, RET),)),
            SyscallSpec("flistxattr", (_o(1, RET),)),
            SyscallSpec("pipe", (_o(0, 8),)),
            SyscallSpec("pipe2", (_o(0, 8),)),
            SyscallSpec("socketpair", (_o(3, 8),)),
            SyscallSpec("clock_gettime", (_o(1, TIMESPEC),)),
            SyscallSpec("clock_getres", (_o(1, TIMESPEC),)),
            SyscallSpec("gettimeofday", (_o(0, TIMEVAL), _o(1, 8))),
            SyscallSpec("time", (_o(0, 8),)),
            SyscallSpec("nanosleep", (_o(1, TIMESPEC),)),
            SyscallSpec("clock_nanosleep", (_o(3, TIMESPEC),)),
            SyscallSpec("getitimer", (_o(1, ITIMERVAL),)),
            # POSIX timers only exist in the recording: replay delivers their signals
            SyscallSpec("timer_create", (_o(2, 4),)),  # the timer id
            SyscallSpec("timer_settime", (_o(3, ITIMERSPEC),)),
            SyscallSpec("timer_gettime", (_o(1, ITIMERSPEC),)),
            # the policy, and a node mask of `maxnode` bits (whole longs)
            SyscallSpec("get_mempolicy", (_o(0, 4), _o(1, ("bits", 2)))),
            SyscallSpec("setitimer", (_o(2, ITIMERVAL),)),
            SyscallSpec("timerfd_settime", (_o(3, ITIMERSPEC),)),
            SyscallSpec("timerfd_gettime", (_o(1, ITIMERSPEC),)),
            SyscallSpec("times", (_o(0, TMS),)),
            SyscallSpec("getrusage", (_o(1, RUSAGE),)),
            SyscallSpec("getrlimit", (_o(1, RLIMIT),)),
            SyscallSpec("setrlimit"),
            SyscallSpec("prlimit64", (_o(3, RLIMIT),)),
            SyscallSpec("sysinfo", (_o(0, SYSINFO),)),
            SyscallSpec("uname", (_o(0, UTSNAME),)),
            SyscallSpec("adjtimex", (_o(0, TIMEX),)),
            SyscallSpec("getresuid", (_o(0, 4), _o(1, 4), _o(2, 4))),
            SyscallSpec("getresgid", (_o(0, 4), _o(1, 4), _o(2, 4))),
            SyscallSpec("getgroups", (_o(1, ("ret*", 4)),)),
            SyscallSpec("setgroups"),
            SyscallSpec("capget", (_o(1, 24),)),
            SyscallSpec("sched_getaffinity", (_o(2, RET),)),
            SyscallSpec("sched_getparam", (_o(1, 4),)),
            SyscallSpec("sched_getscheduler"),
            SyscallSpec("sched_get_priority_max"),
            SyscallSpec("sched_get_priority_min"),
            SyscallSpec("getcpu", (_o(0, 4), _o(1, 4))),
            SyscallSpec("rt_sigpending", (_o(0, ("arg", 1)),)),
            SyscallSpec("rt_sigtimedwait", (_o(1, SIGINFO),)),
            SyscallSpec("rt_sigsuspend"),
            SyscallSpec("rt_sigqueueinfo"),
            SyscallSpec("rt_tgsigqueueinfo"),
            SyscallSpec("wait4", (_o(1, 4), _o(3, RUSAGE))),
            SyscallSpec("waitid", (_o(2, SIGINFO), _o(4, RUSAGE))),
            SyscallSpec("poll", (_o(0, ("arg*8", 1)),)),
            SyscallSpec("ppoll", (_o(0, ("arg*8", 1)), _o(2, TIMESPEC))),
            SyscallSpec("select", special="select"),
            SyscallSpec("pselect6", special="select"),
            SyscallSpec("epoll_wait", (_o(1, ("ret*", EPOLL_EVENT)),)),
            SyscallSpec("epoll_pwait", (_o(1, ("ret*", EPOLL_EVENT)),)),
            SyscallSpec("epoll_pwait2", (_o(1, ("ret*", EPOLL_EVENT)),)),
            # the kernel sets msg_len in each mmsghdr (64 bytes) it sent (glibc's resolver)
            SyscallSpec("sendmmsg", (_o(1, ("ret*", 64)),)),
            SyscallSpec("sched_getattr", (_o(1, ("arg", 2)),)),
            SyscallSpec("get_robust_list", (_o(1, 8), _o(2, 8))),
            # System V shared memory: replay gives each segment a memfd of its own, mapped
            # MAP_SHARED where the recording attached it (see ReplaySession)
            SyscallSpec("shmget"),
            SyscallSpec("shmat", replay=Replay.REAL, special="shmat"),  # + its contents
            SyscallSpec("shmdt", replay=Replay.REAL, special="shmdt"),
            SyscallSpec("shmctl", (_o(2, SHMID_DS),)),  # IPC_STAT and friends
            SyscallSpec("recvfrom", (_o(1, RET), _o(5, 4), _o(4, ("u32at", 5)))),
            SyscallSpec("recvmsg", special="recvmsg"),
            SyscallSpec("recvmmsg", special="recvmmsg"),  # + its timeout, updated
            # the kernel advances the file offsets passed by pointer (loff_t, off_t)
            SyscallSpec("copy_file_range", (_o(1, 8), _o(3, 8))),
            SyscallSpec("splice", (_o(1, 8), _o(3, 8))),
            SyscallSpec("sendfile", (_o(2, 8),)),
            SyscallSpec("accept", (_o(2, 4), _o(1, ("u32at", 2)))),
            SyscallSpec("accept4", (_o(2, 4), _o(1, ("u32at", 2)))),
            SyscallSpec("getsockname", (_o(2, 4), _o(1, ("u32at", 2)))),
            SyscallSpec("getpeername", (_o(2, 4), _o(1, ("u32at", 2)))),
            SyscallSpec("getsockopt", (_o(4, 4), _o(3, ("u32at", 4)))),
            SyscallSpec("ioctl", special="ioctl"),
            SyscallSpec("fcntl", special="fcntl"),
            SyscallSpec("futex", special="futex"),
            SyscallSpec("prctl", special="prctl"),
            SyscallSpec("rt_sigreturn", replay=Replay.REAL, special="sigreturn"),
            SyscallSpec("set_tid_address", replay=Replay.REAL_KEEP_RESULT),
            # kernel-updated rseq areas are nondeterministic; without protection keys,
            # programs (V8) fall back to plain mprotect
            SyscallSpec("rseq", refused=38),  # ENOSYS
            # the kernel reads and writes the rings while the program runs; without it
            # programs (libuv, liburing users) use plain syscalls, as on kernels without it
            SyscallSpec("io_uring_setup", refused=38),  # ENOSYS
            SyscallSpec("pkey_alloc", refused=28),  # ENOSPC: no key left
            # As on kernels built without them, which programs handle: performance
            # counters and their ring buffers change while the program runs; secret
            # memory is out of the recorder's reach (process_vm_readv cannot read it);
            # a page fault handled through userfaultfd blocks a thread outside any syscall
            SyscallSpec("perf_event_open", refused=38),  # ENOSYS
            SyscallSpec("memfd_secret", refused=38),  # ENOSYS
            SyscallSpec("userfaultfd", refused=38),  # ENOSYS
            # the program is traced (by the recorder), as under gdb: a tracer it starts
            # cannot attach (strace, gdb, LeakSanitizer's thread suspension say so)
            SyscallSpec("ptrace", refused=1),  # EPERM
            SyscallSpec("execve", special="execve"),
            SyscallSpec("execveat", special="execve"),
            SyscallSpec("exit", special="exit"),
            SyscallSpec("exit_group", special="exit"),
            SyscallSpec("mincore", (_o(2, ("pages", 1)),)),
            SyscallSpec("fork", replay=Replay.REAL, special="clone"),
            SyscallSpec("vfork", replay=Replay.REAL, special="clone"),
            SyscallSpec("clone", replay=Replay.REAL, special="clone"),
            SyscallSpec("clone3", replay=Replay.REAL, special="clone"),
        )
    }
)

SPECS: dict[int, SyscallSpec] = {NUMBERS[name]: spec for name, spec in _TABLE.items()
                                 if name in NUMBERS}


def syscall_name(nr: int) -> str:
    """The syscall's name, or 'syscall_N' for a number the kernel headers do not know."""
    return NAMES.get(nr, f"syscall_{nr}")


def signal_name(signo: int) -> str:
    """SIGSEGV, ...; SIG32-style for the real-time signals Python does not name (as gdb)."""
    try:
        return signal.Signals(signo).name
    except ValueError:
        return f"SIG{signo}"


# ioctl requests without size encoding (tty layer), and what they write at arg 2.
IOCTL_OUTPUT = {
    0x5401: 36,  # TCGETS: struct termios
    0x5413: 8,  # TIOCGWINSZ: struct winsize
    0x540F: 4,  # TIOCGPGRP
    0x541B: 4,  # FIONREAD
    0x5429: 4,  # TIOCGSID
    0x5411: 4,  # TIOCOUTQ
    0x5424: 4,  # TIOCGETD: line discipline
    0x80045430: 4,  # TIOCGPTN
}
IOCTL_NO_OUTPUT = {
    0x5402, 0x5403, 0x5404,  # TCSETS, TCSETSW, TCSETSF
    0x5410, 0x5414,  # TIOCSPGRP, TIOCSWINSZ
    0x5421, 0x5450, 0x5451,  # FIONBIO, FIONCLEX, FIOCLEX
    0x540B, 0x540A, 0x5409,  # TCFLSH, TCXONC, TCSBRK
    0x540E, 0x5422,  # TIOCSCTTY, TIOCNOTTY: the controlling terminal
    0x540C, 0x540D, 0x5423,  # TIOCEXCL, TIOCNXCL, TIOCSETD
    0x5441,  # TIOCGPTPEER: opens a pty's peer, returns its fd (glibc's openpty)
}
IOC_READ = 2


def ioctl_output_size(request: int) -> int | None:
    """Bytes an ioctl writes at its argument, or None when rrgdb does not know the request."""
    request &= 0xFFFFFFFF
    if request in IOCTL_OUTPUT:
        return IOCTL_OUTPUT[request]
    if request in IOCTL_NO_OUTPUT:
        return 0
    direction = request >> 30
    size = (request >> 16) & 0x3FFF
    if direction == 0 and size == 0:
        return None
    return size if direction & IOC_READ else 0


# fcntl commands that write memory at arg 2, and how many bytes; the others write none.
FCNTL_OUTPUT = {
    5: 32, 36: 32,  # F_GETLK, F_OFD_GETLK: struct flock
    16: 8,  # F_GETOWN_EX: struct f_owner_ex
    1035: 8, 1037: 8,  # F_GET_RW_HINT, F_GET_FILE_RW_HINT: u64
}

# prctl options that write memory at arg 1, and how many bytes; the others write none,
# but PR_GET_AUXV, which copies up to arg 2 bytes of the auxv and returns its size.
PRCTL_OUTPUT = {
    2: 4, 19: 4, 25: 4,  # PR_GET_PDEATHSIG, PR_GET_ENDIAN, PR_GET_TSC: int
    16: 16,  # PR_GET_NAME
    37: 4,  # PR_GET_CHILD_SUBREAPER: int
    40: 8,  # PR_GET_TID_ADDRESS: the thread's clear_child_tid pointer
}
PR_GET_AUXV = 0x41555856
