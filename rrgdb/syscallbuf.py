"""The syscall buffer shared with the preload library (stubs/preload.c; these numbers
mirror stubs/preload.h): where it lives, and how the recorder empties it and the replayer
refills it."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

from rrgdb import native
from rrgdb.kernel.address_space import PROT_EXEC, SYSCALL_BUFFER_ADDR, read_maps
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.remote_syscalls import (
    RETURN_STUB,
    TRAPPING_STUB,
    UNTRACED_STUB,
    replaying_stub,
)
from rrgdb.kernel.task import Task
from rrgdb.syscall_numbers import NUMBERS

BUFFER_ADDR = SYSCALL_BUFFER_ADDR
POS = BUFFER_ADDR  # u32: bytes of records written (record) or consumed (replay)
IN_REPLAY = BUFFER_ADDR + 4
DISABLED = BUFFER_ADDR + 5
SEQ = BUFFER_ADDR + 8  # u32: buffered calls so far
TRAP_AT = BUFFER_ADDR + 12  # u32: calls from this ordinal on are traced
LOCKED = BUFFER_ADDR + 6  # u8: a buffered call is between its start and its record
RETURNS = BUFFER_ADDR + 7  # u8: the library calls RETURN_STUB as a replayed call returns
SIGMASK = BUFFER_ADDR + 16  # u64: the mask buffered rt_sigprocmask calls left, or NO_MASK
FIELDS = 24  # bytes of the header's fields above
STDIO_FDS = BUFFER_ADDR + FIELDS  # bit n: fd n is rrgdb's stdout or stderr (stdio_fd())
STDIO_FD_LIMIT = 1024  # the fds that table covers (the library traces calls on the others)
RECORDS = STDIO_FDS + STDIO_FD_LIMIT // 8
NO_MASK = 2**64 - 1
_NO_MASK_BYTES = NO_MASK.to_bytes(8, "little")
PREFIX = 8  # a FlushFrame's data: trap_at (u32), reserved (u32), then the records
RECORD_HEADER = struct.Struct("<qII")  # a record: result, number, size; output, 8-aligned
# where a buffered call stands at a trapping stub's syscall stop -> whether it is the return
CATCH_STOPS = {UNTRACED_STUB + 2: False, RETURN_STUB + 2: True}
STUBS = range(UNTRACED_STUB, RETURN_STUB + 0x10)  # the code trap_calls() rewrites
# where no int3 may go: inside an instruction of one of the stubs' two forms (their first
# bytes start an instruction in both)
STUB_INSIDES = frozenset(range(UNTRACED_STUB + 1, UNTRACED_STUB + 0x10)) | frozenset(
    range(RETURN_STUB + 1, RETURN_STUB + 0x10))
PR_SET_SECCOMP = 22
ABANDONED = -512  # ERESTARTSYS, which user space never sees: "retry this call traced"
_RESTART_CODES = {-512, -513, -514, -516}  # ERESTARTSYS, -NOINTR, -NOHAND, _RESTARTBLOCK
HOOK_SEARCH = 4096  # bytes above the stack pointer in a buffered call that hold the hook's
#                    frame (the library's frames below it take ~420 bytes at most)
TRAMPOLINE_SIZE = 128  # stubs/patch.c: the slots the patched sites jump to
#: how the code entering the hook starts, in a trampoline slot and in hooked() alike:
#: lea -128(%rsp),%rsp (past the red zone); lea <resume>(%rip),%r11; push %r11; ...; call
HOOK_ENTRY = bytes.fromhex("488d642480") + bytes.fromhex("4c8d1d")
TRAMPOLINE_CALL_END = 24  # bytes from that lea to the end of the call, in a trampoline
WRAPPER_CALL_END = 19  # and in hooked()
SITE_LENGTHS = (7, 8, 10)  # stubs/patch.c: MOV, CMP and XOR sites, from jump to resume
JMP_REL32 = 0xE9


def preload_library() -> Path:
    """The library `rrgdb record` preloads (built beside the native extension)."""
    return Path(native.__file__).parent / "librrgdb_preload.so"


def pending_bytes(task: Task) -> int:
    """How many bytes of records the buffer holds (0 when the process has no buffer)."""
    raw = task.read(POS, 4)
    return int.from_bytes(raw, "little") if len(raw) == 4 else 0


def calls_made(task: Task) -> int | None:
    """How many buffered calls the task's process has made (the library's count, which
    flushes leave as it is; None when the process has no buffer)."""
    raw = task.read(SEQ, 4)
    return int.from_bytes(raw, "little") if len(raw) == 4 else None


def trap_at(task: Task) -> int | None:
    """The ordinal from which buffered calls are traced (None: no buffer)."""
    raw = task.read(TRAP_AT, 4)
    return int.from_bytes(raw, "little") if len(raw) == 4 else None


def take_records(task: Task) -> bytes | None:
    """Record side: what a FlushFrame holds (trap_at, then the records written since the
    last stop), None when the process has no buffer; the buffer is emptied."""
    header = task.read(BUFFER_ADDR, FIELDS)  # one read per stop
    if len(header) != FIELDS:
        return None
    size = int.from_bytes(header[:4], "little")
    records = task.read_exact(RECORDS, size) if size else b""
    if size:
        task.write(POS, b"\0\0\0\0")
    if header[SIGMASK - BUFFER_ADDR:] != _NO_MASK_BYTES:
        task.write(SIGMASK, _NO_MASK_BYTES)  # the kernel has it; replay's buffer forgets it too
    return header[TRAP_AT - BUFFER_ADDR:SIGMASK - BUFFER_ADDR] + bytes(4) + records


def put_records(task: Task, data: bytes) -> None:
    """Replay side: the records the library will use before the thread's next stop."""
    task.write(TRAP_AT, data[:4])
    task.write(RECORDS, data[PREFIX:])
    task.write(POS, b"\0\0\0\0")


def take_replayed(task: Task) -> tuple[int, int | None]:
    """Replay side, at the stop after a flush: how many bytes of records the library used,
    and the signal mask its buffered rt_sigprocmask calls left (None: they changed none);
    the buffer is emptied of both, as the recorder's was (one read, one write)."""
    header = bytearray(task.read_exact(BUFFER_ADDR, FIELDS))
    used = int.from_bytes(header[:4], "little")
    mask = int.from_bytes(header[SIGMASK - BUFFER_ADDR:], "little")
    header[:4] = bytes(4)
    header[SIGMASK - BUFFER_ADDR:] = _NO_MASK_BYTES
    task.write(BUFFER_ADDR, bytes(header))
    return used, None if mask == NO_MASK else mask


def undo_mask_change(task: Task, regs: Registers) -> None:
    """Record side, at a signal stop inside a buffered call: if it is an rt_sigprocmask
    that has just returned (the signal came as it returned, perhaps one it unblocked), the
    old mask is put back and the call returns ABANDONED, so the library makes it again
    traced, where the held-back signal is delivered before the call returns (POSIX), as
    replay can place it. The old mask is where the library asked the kernel to write it
    (the oset argument, rdx: the record, or the caller's own memory)."""
    if (regs.rip == UNTRACED_STUB + 2 and regs.syscallno == NUMBERS["rt_sigprocmask"]
            and regs.result == 0):
        native.set_sigmask(task.tid, task.read_u64(regs.rdx))
        _abandon(task, regs)


def trap_soon(task: Task) -> bool:
    """Record side, with a signal held back: the library's next buffered call (and every
    one after it) becomes a traced syscall, where the signal can be delivered. The
    ordinal reaches the trace with the next FlushFrame, so replay traces the same call.
    Returns whether it changed anything."""
    raw = task.read(SEQ, 4)
    if len(raw) == 4 and trap_at(task) == 0xFFFFFFFF:
        task.write(TRAP_AT, raw)
        return True
    return False


def stop_trapping(task: Task) -> None:
    """Record side, once no held-back signal waits: buffered calls are buffered again
    (trap_soon undone). The next FlushFrame carries the reset to replay, which applies it
    before the calls of its stretch, as here."""
    if trap_at(task) not in (None, 0xFFFFFFFF):
        task.write(TRAP_AT, b"\xff\xff\xff\xff")


def mark_stdio_fds(task: Task, fds: dict[int, bool]) -> bytes | None:
    """Record side, at the exit of a traced call that made, replaced or closed fds: marks
    each fd of fds whose value is True as rrgdb's stdout or stderr in the buffer's table
    (the library then keeps writes to it traced, and replay prints them) and clears the
    others. Returns the whole new table when it changed, for the call's frame, so that
    replay's table is the same (None: unchanged, or the process has no buffer or does not
    buffer: a vfork child, whose table is its parent's, leaves it as the parent has it
    when its buffer comes back)."""
    size = STDIO_FD_LIMIT // 8
    header = task.read(BUFFER_ADDR, FIELDS + size)  # (one read: DISABLED, then the table)
    if len(header) != FIELDS + size or header[DISABLED - BUFFER_ADDR]:
        return None
    raw = header[FIELDS:]
    table = bytearray(raw)
    for fd, stdio in fds.items():
        if 0 <= fd < STDIO_FD_LIMIT:
            if stdio:
                table[fd // 8] |= 1 << fd % 8
            else:
                table[fd // 8] &= ~(1 << fd % 8)
    if table == raw:
        return None
    task.write(STDIO_FDS, bytes(table))
    return bytes(table)


def disable(task: Task) -> None:
    """Stops buffering in the task's process (threads or vfork share the buffer)."""
    if task.read(DISABLED, 1):
        task.write(DISABLED, b"\x01")


def buffering(task: Task) -> bool:
    """Whether the task's process has a buffer that disable() has not switched off."""
    return task.read(DISABLED, 1) == b"\x00"


def enable(task: Task) -> None:
    """Buffering again in a process whose buffer no other process shares any more (a vfork
    parent once its child has exec'd or exited)."""
    task.write(DISABLED, b"\x00")


def mark_replay(task: Task) -> None:
    """Tells the library of a replayed process to take results from the buffer."""
    task.write(IN_REPLAY, b"\x01")


def in_call(task: Task) -> bool:
    """Whether the task is inside a buffered call (between its start and its record)."""
    return task.read(LOCKED, 1) == b"\x01"


def blocked_in_call(tid: int) -> bool:
    """Record side, while tid runs: whether it sleeps in the kernel in a buffered call
    (/proc/TID/syscall names a syscall made at the untraced stub). Such a thread holds
    its process's turn without running user code: the recorder stops it at once, and
    abandon_if_blocked turns the call into a traced one."""
    try:
        with open(f"/proc/{tid}/syscall", "rb") as f:
            fields = f.read().split()
    except OSError:
        return False  # gone meanwhile
    # "running", "-1 SP PC" (stopped outside a syscall) or "NR ARG*6 SP PC"
    return len(fields) == 9 and int(fields[8], 16) == UNTRACED_STUB + 2


def abandon_if_blocked(task: Task, regs: Registers) -> None:
    """Record side, at a stop inside a buffered call: if the call was blocked in the
    kernel (stopped at the untraced stub with a restart code), it returns ABANDONED
    instead of restarting; the library records that and makes the call again as a
    traced syscall, where signals can be delivered and the wait is seen (the role of
    rr's desched events)."""
    if (regs.rip == UNTRACED_STUB + 2 and regs.syscallno >= 0
            and regs.result in _RESTART_CODES):
        _abandon(task, regs)


def _abandon(task: Task, regs: Registers) -> None:
    """The buffered call the task stopped in returns ABANDONED: the library makes it again
    as a traced syscall."""
    regs.rax = ABANDONED
    regs.orig_rax = -1  # not in a syscall any more: the kernel does not restart it
    task.set_regs(regs)


def buffered_call(task: Task, pc: int, rsp: int, read_code: Callable[[int, int], bytes]
                  ) -> tuple[int, int] | None:
    """Inside a buffered call (the thread at pc and rsp in the preload library's code):
    where the code that made it entered the buffer's code (call_site) and the address it
    resumes at once the call is done. Read off the hook's frame: the nearest pair of
    words above rsp that are a return address after a call of the hook and the resume
    address that call pushed; None if there is none. read_code reads code as the program
    has it (without the debugger's int3s)."""
    maps = read_maps(task.tid)
    path = next((m.path for m in maps if m.start <= pc < m.end), None)
    # (the trampolines are a mapping of their own: the library's set-up mprotects them)
    library = [(m.start, m.end) for m in maps if m.path == path and m.prot & PROT_EXEC]
    stack = task.read(rsp, HOOK_SEARCH)
    words = [int.from_bytes(stack[i:i + 8], "little") for i in range(0, len(stack) - 7, 8)]
    for return_address, resume in zip(words, words[1:], strict=False):
        if any(start <= return_address < end for start, end in library):
            site = call_site(read_code, return_address, resume)
            if site is not None:
                return site, resume
    return None


def call_site(read_code: Callable[[int, int], bytes], return_address: int, resume: int
              ) -> int | None:
    """Where the code that made a buffered call entered the buffer's code, from the hook's
    return address and the caller's resume address: the jump of a patched site (in libc)
    to its trampoline, or the start of the hook's call in an exported wrapper (hooked()),
    where the stack is still as the wrapper's unwind information says. None if
    return_address does not follow such a call."""
    slot = return_address - TRAMPOLINE_CALL_END
    if slot % TRAMPOLINE_SIZE == 0 and _enters_hook(read_code, slot, resume):
        for length in SITE_LENGTHS:
            code = read_code(resume - length, 5)
            if (len(code) == 5 and code[0] == JMP_REL32
                    and resume - length + 5 + int.from_bytes(code[1:], "little", signed=True)
                    == slot):
                return resume - length
        return slot
    start = return_address - WRAPPER_CALL_END
    return start if _enters_hook(read_code, start, resume) else None


def _enters_hook(read_code: Callable[[int, int], bytes], at: int, resume: int) -> bool:
    """Whether the code at `at` starts a call of the hook that resumes at resume."""
    code = read_code(at, len(HOOK_ENTRY) + 4)
    end = at + len(code)
    return (len(code) == len(HOOK_ENTRY) + 4 and code.startswith(HOOK_ENTRY)
            and end + int.from_bytes(code[-4:], "little", signed=True) == resume)


def answered_calls(data: bytes) -> list[int]:
    """The syscall numbers of the calls the buffer answered, by the records of a
    FlushFrame's data (an abandoned record is not one: its call was made again, traced)."""
    numbers, at = [], PREFIX
    while at + RECORD_HEADER.size <= len(data):
        result, number, size = RECORD_HEADER.unpack_from(data, at)
        if result != ABANDONED:
            numbers.append(number)
        at += max(size + 7 & ~7, RECORD_HEADER.size)
    return numbers


def current_call(task: Task) -> tuple[int, int]:
    """Replay side, inside a buffered call: (number, recorded result) of the record the
    library is using (the one at pos)."""
    pos = int.from_bytes(task.read_exact(POS, 4), "little")
    result, number, _ = RECORD_HEADER.unpack(task.read_exact(RECORDS + pos, RECORD_HEADER.size))
    return number, result


def reports_returns(task: Task) -> bool:
    """Whether the process's library calls RETURN_STUB as each replayed call returns (one
    built before it did not: its buffered calls cannot be caught)."""
    return task.read(RETURNS, 1) == b"\x01"


def calls_trap(task: Task) -> bool:
    """Whether the stubs are in the form trap_calls(task, True) gave them."""
    return task.read(UNTRACED_STUB, 2) == TRAPPING_STUB[:2]


def trap_calls(task: Task, trap: bool) -> None:
    """Replay side: makes the scratch page's two stubs make a syscall (trap), so that
    under PTRACE_SYSEMU each buffered call stops at its entry (UNTRACED_STUB + 2: rax
    -ENOSYS, orig_rax its number) and as it returns, its outputs written (RETURN_STUB + 2),
    or gives them back the form that makes none. Either way they leave the same registers
    once the replayer sets rax back to orig_rax at those stops (what the library passed)."""
    for stub in (UNTRACED_STUB, RETURN_STUB):
        task.write(stub, TRAPPING_STUB if trap else replaying_stub(stub))
