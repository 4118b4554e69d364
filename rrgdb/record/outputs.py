"""What a syscall wrote into tracee memory: computes the recorded memory writes of one
syscall from the syscall table (rrgdb.syscalls) and a few hand-written cases."""

from __future__ import annotations

import struct

from rrgdb.kernel.address_space import read_maps
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.task import Task
from rrgdb.syscall_numbers import NUMBERS
from rrgdb.syscalls import (
    FCNTL_OUTPUT,
    PR_GET_AUXV,
    PRCTL_OUTPUT,
    RET,
    TIMESPEC,
    Out,
    SyscallSpec,
    ioctl_output_size,
)
from rrgdb.trace import MemWrite

MAX_IOVECS = 1024
MSGHDR_SIZE = 56
MMSGHDR_SIZE = 64  # a msghdr, the u32 msg_len, padding


WRITEV = {NUMBERS["writev"], NUMBERS["pwritev"]}


def written_bytes(task: Task, regs: Registers, result: int) -> bytes:
    """The first `result` bytes a write, pwrite64, writev or pwritev at its exit (regs)
    wrote from the tracee's memory: the program's output."""
    if regs.syscallno in WRITEV:
        out = b""
        raw = task.read(regs.arg(1), 16 * min(regs.arg(2), MAX_IOVECS))
        for base, length in struct.iter_unpack("<QQ", raw[: len(raw) // 16 * 16]):
            out += task.read(base, min(length, result - len(out)))
            if len(out) >= result:
                break
        return out
    return task.read(regs.arg(1), result)


class UnsupportedSyscall(Exception):
    """The program made a syscall (or used a variant) the recorder cannot record faithfully."""


def entry_state(task: Task, spec: SyscallSpec, regs: Registers) -> dict[int, int]:
    """Values that must be read before the syscall runs: capacities of in-out length
    arguments (("u32at", N) sizes)."""
    state: dict[int, int] = {}
    for out in spec.outs:
        if isinstance(out.size, tuple) and out.size[0] == "u32at":
            ptr = regs.arg(out.size[1])
            if ptr:
                try:
                    state[out.size[1]] = task.read_u32(ptr)
                except OSError:
                    state[out.size[1]] = 0
    if spec.special == "recvmsg":
        state[-1] = 0
    return state


def check_supported(spec: SyscallSpec, regs: Registers) -> None:
    """Refuses variants of table syscalls that the recorder does not know how to record."""
    if spec.special == "ioctl" and ioctl_output_size(regs.arg(1)) is None:
        raise UnsupportedSyscall(f"ioctl request {regs.arg(1):#x}")
    if spec.special == "futex":
        op = regs.arg(1) & 0x7F
        if op in (6, 7, 8, 11, 12, 13):  # PI futexes
            raise UnsupportedSyscall(f"futex op {op} (priority-inheritance)")


def _size(task: Task, out: Out, regs: Registers, result: int, state: dict[int, int]) -> int:
    size = out.size
    if isinstance(size, int):
        return size
    if size == RET:
        return max(result, 0)
    kind, n = size
    if kind == "arg":
        return regs.arg(n)
    if kind == "arg*8":
        return regs.arg(n) * 8
    if kind == "ret*":
        return max(result, 0) * n
    if kind == "u32at":
        return state.get(n, 0)
    if kind == "pages":
        return (regs.arg(n) + 4095) // 4096
    if kind == "bits":
        return (regs.arg(n) + 63) // 64 * 8
    raise AssertionError(f"bad size spec {size}")


def _read(task: Task, addr: int, length: int) -> list[MemWrite]:
    if not addr or length <= 0:
        return []
    data = task.read(addr, length)
    return [MemWrite(addr, data)] if data else []


def _iovec_writes(task: Task, iov_addr: int, iovcnt: int, total: int) -> list[MemWrite]:
    writes: list[MemWrite] = []
    if total <= 0 or not iov_addr:
        return writes
    raw = task.read(iov_addr, 16 * min(iovcnt, MAX_IOVECS))
    for base, length in struct.iter_unpack("<QQ", raw[: len(raw) // 16 * 16]):
        if total <= 0:
            break
        chunk = min(length, total)
        writes += _read(task, base, chunk)
        total -= chunk
    return writes


def _segment_writes(task: Task, start: int) -> list[MemWrite]:
    for mapping in read_maps(task.tid):
        if mapping.start == start:
            return _read(task, start, mapping.end - mapping.start)
    return []


def _msghdr_writes(task: Task, msg: int, received: int, header: int) -> list[MemWrite]:
    """One received message: its header (``header`` bytes: a msghdr, or an mmsghdr with
    msg_len), the sender's address, the control messages and ``received`` payload bytes."""
    raw = task.read(msg, header)
    if len(raw) < header:
        return []
    name, namelen, iov, iovlen, control, controllen, _flags = struct.unpack_from(
        "<QI4xQQQQI4x", raw)
    writes = [MemWrite(msg, raw)]
    writes += _read(task, name, namelen)
    writes += _read(task, control, controllen)
    writes += _iovec_writes(task, iov, iovlen, received)
    return writes


def _recvmmsg_writes(task: Task, regs: Registers, result: int) -> list[MemWrite]:
    """recvmmsg: the first ``result`` mmsghdrs (each its msghdr then msg_len), and the
    timeout the kernel updated."""
    writes: list[MemWrite] = []
    for index in range(result):
        entry = regs.arg(1) + MMSGHDR_SIZE * index
        (received,) = struct.unpack("<I", task.read(entry + MSGHDR_SIZE, 4))
        writes += _msghdr_writes(task, entry, received, MMSGHDR_SIZE)
    return writes + _read(task, regs.arg(4), TIMESPEC)


def _select_writes(task: Task, regs: Registers) -> list[MemWrite]:
    nfds = regs.arg(0)
    setsize = (nfds + 63) // 64 * 8
    writes = []
    for i in (1, 2, 3):
        writes += _read(task, regs.arg(i), setsize)
    writes += _read(task, regs.arg(4), 16)
    return writes


def memory_writes(task: Task, spec: SyscallSpec, regs: Registers, result: int,
                  state: dict[int, int]) -> list[MemWrite]:
    """The bytes the syscall left in tracee memory, read right after it returned."""
    special = spec.special
    if special == "iovec_out":
        return _iovec_writes(task, regs.arg(1), regs.arg(2), result)
    if special == "recvmsg":
        return _msghdr_writes(task, regs.arg(1), result, MSGHDR_SIZE) if result >= 0 else []
    if special == "recvmmsg":
        return _recvmmsg_writes(task, regs, result) if result >= 0 else []
    if special == "select":
        return _select_writes(task, regs)
    if special == "shmat":  # the segment as it was attached (others may have filled it)
        return _segment_writes(task, result) if result >= 0 else []
    if special == "ioctl":
        size = ioctl_output_size(regs.arg(1)) or 0
        return _read(task, regs.arg(2), size) if result >= 0 else []
    if special == "fcntl":
        return _read(task, regs.arg(2), FCNTL_OUTPUT.get(regs.arg(1) & 0xFFFFFFFF, 0))
    if special == "prctl":
        option = regs.arg(0) & 0xFFFFFFFF
        if option == PR_GET_AUXV:
            return _read(task, regs.arg(1), min(result, regs.arg(2)))
        return _read(task, regs.arg(1), PRCTL_OUTPUT.get(option, 0))
    writes: list[MemWrite] = []
    for out in spec.outs:
        writes += _read(task, regs.arg(out.arg), _size(task, out, regs, result, state))
    return writes
