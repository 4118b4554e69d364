"""Conversion between Linux x86-64 signal numbers and gdb's fixed signal numbering.

Stop replies and C/S/vCont/QPassSignals packets use gdb's numbers (`enum gdb_signal`);
the engine uses Linux's. Most classic signals agree; the table lists the ones that do
not, plus the real-time ranges."""

from __future__ import annotations

GDB_SIGNAL_UNKNOWN = 143

# Linux number -> gdb number, for the signals whose numbers differ.
_LINUX_TO_GDB_DIFFERENT = {
    7: 10,  # SIGBUS
    10: 30,  # SIGUSR1
    12: 31,  # SIGUSR2
    16: 38,  # SIGSTKFLT
    17: 20,  # SIGCHLD
    18: 19,  # SIGCONT
    19: 17,  # SIGSTOP
    20: 18,  # SIGTSTP
    23: 16,  # SIGURG
    29: 23,  # SIGIO
    30: 32,  # SIGPWR
    31: 12,  # SIGSYS
    32: 77,  # first real-time signal the kernel reserves
}
_SAME_NUMBER = frozenset({0, 1, 2, 3, 4, 5, 6, 8, 9, 11, 13, 14, 15, 21, 22, 24, 25, 26, 27, 28})


def _linux_to_gdb(signo: int) -> int:
    if signo in _SAME_NUMBER:
        return signo
    if signo in _LINUX_TO_GDB_DIFFERENT:
        return _LINUX_TO_GDB_DIFFERENT[signo]
    if 33 <= signo <= 63:
        return signo + 12
    if 64 <= signo <= 127:
        return signo + 14
    return GDB_SIGNAL_UNKNOWN


_GDB_TO_LINUX = {_linux_to_gdb(s): s for s in range(128) if _linux_to_gdb(s) != GDB_SIGNAL_UNKNOWN}


def to_gdb_signal(linux_signo: int) -> int:
    """gdb's number for a Linux signal (`GDB_SIGNAL_UNKNOWN` if it has none)."""
    return _linux_to_gdb(linux_signo)


def to_linux_signal(gdb_signo: int) -> int | None:
    """The Linux signal gdb means by `gdb_signo`, or None if Linux has no such signal."""
    return _GDB_TO_LINUX.get(gdb_signo)
