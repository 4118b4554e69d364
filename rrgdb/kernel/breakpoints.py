"""Breakpoints and watchpoints of one address space: software breakpoints (int3 bytes
written into the code, hidden from memory reads) and hardware ones (x86 debug registers
DR0-DR3, configured through DR7, reported through DR6)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rrgdb.kernel.task import Task

INT3 = b"\xcc"
DR6, DR7 = 6, 7
DR6_STEP = 0x4000
DR6_HITS = 0xF
_LEN_BITS = {1: 0b00, 2: 0b01, 4: 0b11, 8: 0b10}


class WatchKind(enum.IntEnum):
    """What a hardware slot watches (gdb Z1..Z4)."""

    EXECUTE = 1
    WRITE = 2
    READ = 3
    ACCESS = 4


_RW_BITS = {WatchKind.EXECUTE: 0b00, WatchKind.WRITE: 0b01, WatchKind.READ: 0b11,
            WatchKind.ACCESS: 0b11}


@dataclass(frozen=True, slots=True)
class Watchpoint:
    """A debugger-visible watchpoint (possibly spread over several slots)."""

    kind: WatchKind
    addr: int
    length: int


class NoDebugRegisters(Exception):
    """All four debug registers are in use."""


def _write_if_mapped(task: Task, addr: int, data: bytes) -> None:
    """A breakpoint address may be unmapped at this moment (code mapped later, as seen
    from an early checkpoint): then there is nothing to write."""
    try:
        task.write(addr, data)
    except OSError:
        pass


def _aligned_pieces(addr: int, length: int) -> list[tuple[int, int]]:
    pieces = []
    end = addr + length
    while addr < end:
        for size in (8, 4, 2, 1):
            if addr % size == 0 and addr + size <= end:
                pieces.append((addr, size))
                addr += size
                break
    return pieces


class Breakpoints:
    """The breakpoints and watchpoints the debugger asked for, applied to a task."""

    def __init__(self) -> None:
        self.software: dict[int, bytes] = {}  # address -> original byte (when inserted)
        self.pending: set[int] = set()  # not written yet: unmapped, or suspended
        self.suspended = False  # int3s kept out of the code (see suspend())
        self._slots: list[tuple[Watchpoint, int, int]] = []  # (owner, addr, size) per DR

    # -- software ---------------------------------------------------------------------
    def insert(self, task: Task, addr: int) -> bool:
        """Writes an int3 at addr; False if nothing is mapped there yet. The breakpoint
        is then pending (as it is while suspended): reinsert() writes it once the code is
        mapped."""
        if addr in self.software:
            return True
        original = task.read(addr, 1)
        if len(original) != 1 or self.suspended:
            self.pending.add(addr)
            return len(original) == 1
        task.write(addr, INT3)
        self.software[addr] = original
        self.pending.discard(addr)
        return True

    def remove(self, task: Task, addr: int) -> None:
        self.pending.discard(addr)
        original = self.software.pop(addr, None)
        if original is not None and task.alive:
            _write_if_mapped(task, addr, original)

    def lift_one(self, task: Task, addr: int) -> None:
        """Takes one int3 out (to step over it); reinsert() puts it back."""
        task.write(addr, self.software[addr])

    def lift(self, task: Task) -> None:
        """Takes every int3 out of the code (before a checkpoint is forked)."""
        for addr, original in self.software.items():
            _write_if_mapped(task, addr, original)

    def reinsert(self, task: Task) -> None:
        """Writes every int3 again, re-reading original bytes (code may have been mapped),
        and the pending ones whose code is mapped now (none while suspended)."""
        if self.suspended:
            return
        for addr in list(self.pending):
            self.insert(task, addr)
        for addr in list(self.software):
            current = task.read(addr, 1)
            if len(current) != 1:
                continue
            if current != INT3:
                self.software[addr] = current
            _write_if_mapped(task, addr, INT3)

    def suspend(self, task: Task) -> None:
        """Takes every int3 out of the code and keeps them pending until resume(): while
        the preload library patches the code it reads (stubs/patch.c), as it did when
        recorded, with no int3 bytes there."""
        self.lift(task)
        self.forget_written()
        self.suspended = True

    def forget_written(self) -> None:
        """The code holds none of the int3s (lifted, or a fresh fork of a checkpoint):
        every breakpoint is pending until reinsert()."""
        self.pending.update(self.software)
        self.software.clear()

    def resume(self, task: Task) -> None:
        """Writes the suspended int3s back (over the code as it is now)."""
        self.suspended = False
        self.reinsert(task)

    def shadow(self, addr: int, data: bytes) -> bytes:
        """Memory as the program sees it: int3 bytes replaced by the original ones."""
        if not self.software:
            return data
        out = bytearray(data)
        for bp, original in self.software.items():
            if addr <= bp < addr + len(data):
                out[bp - addr] = original[0]
        return bytes(out)

    def update_shadow(self, addr: int, data: bytes) -> bytes:
        """For a debugger memory write: records new original bytes under breakpoints and
        returns the bytes to write (int3 kept in place)."""
        out = bytearray(data)
        for bp in self.software:
            if addr <= bp < addr + len(data):
                self.software[bp] = bytes([data[bp - addr]])
                out[bp - addr] = INT3[0]
        return bytes(out)

    # -- hardware ---------------------------------------------------------------------
    def add_watch(self, task: Task, watch: Watchpoint) -> None:
        pieces = [(watch.addr, 1)] if watch.kind is WatchKind.EXECUTE else \
            _aligned_pieces(watch.addr, watch.length)
        if len(self._slots) + len(pieces) > 4:
            raise NoDebugRegisters()
        self._slots += [(watch, a, s) for a, s in pieces]
        self.apply_debug_registers(task)

    def remove_watch(self, task: Task, watch: Watchpoint) -> None:
        if watch in self.watches:
            self._slots = [s for s in self._slots if s[0] != watch]
            self.apply_debug_registers(task)

    @property
    def watches(self) -> list[Watchpoint]:
        """The watchpoints set, in the order they were added."""
        return list(dict.fromkeys(owner for owner, _, _ in self._slots))

    def apply_debug_registers(self, task: Task) -> None:
        """Programs DR0-DR3 and DR7 of the task from the current watchpoints."""
        dr7 = 0
        task.set_debugreg(DR7, 0)
        for i, (watch, addr, size) in enumerate(self._slots):
            task.set_debugreg(i, addr)
            dr7 |= 1 << (2 * i)
            dr7 |= _RW_BITS[watch.kind] << (16 + 4 * i)
            if watch.kind is not WatchKind.EXECUTE:
                dr7 |= _LEN_BITS[size] << (18 + 4 * i)
        if dr7:
            task.set_debugreg(DR7, dr7)
        task.set_debugreg(DR6, 0)

    @staticmethod
    def forget_step(task: Task) -> bool:
        """After a single step rrgdb made for itself: clears DR6, unless a watchpoint
        fired during it (then False, and triggered() reports it). The step's bit left
        there would make the debugger's next breakpoint hit look like a step's end."""
        dr6 = task.get_debugreg(DR6)
        if dr6 & DR6_HITS:
            return False
        if dr6:
            task.set_debugreg(DR6, 0)
        return True

    def triggered(self, task: Task) -> tuple[Watchpoint | None, bool]:
        """After a SIGTRAP: (the watchpoint whose slot fired or None, single-step bit);
        clears DR6."""
        dr6 = task.get_debugreg(DR6)
        task.set_debugreg(DR6, 0)
        hit = None
        for i, (watch, _addr, _size) in enumerate(self._slots):
            if dr6 & (1 << i):
                hit = watch
                break
        return hit, bool(dr6 & DR6_STEP)
