"""Task: one ptraced thread — its registers, its memory, resuming it and waiting for it."""

from __future__ import annotations

import enum
import os
import signal
from dataclasses import dataclass

from rrgdb import native
from rrgdb.kernel.registers import Registers


class StopKind(enum.Enum):
    """Why a wait returned."""

    SYSCALL = "syscall"  # a syscall stop (TRACESYSGOOD)
    SIGNAL = "signal"  # signal-delivery stop (or a single-step SIGTRAP)
    EVENT = "event"  # PTRACE_EVENT_* stop
    EXITED = "exited"
    KILLED = "killed"  # died by a signal


@dataclass(frozen=True, slots=True)
class Stop:
    """A decoded wait status."""

    kind: StopKind
    status: int
    signo: int = 0
    event: int = 0

    @classmethod
    def decode(cls, status: int) -> Stop:
        if os.WIFEXITED(status):
            return cls(StopKind.EXITED, status)
        if os.WIFSIGNALED(status):
            return cls(StopKind.KILLED, status, signo=os.WTERMSIG(status))
        sig = os.WSTOPSIG(status)
        if sig == (signal.SIGTRAP | 0x80):
            return cls(StopKind.SYSCALL, status, signo=signal.SIGTRAP)
        event = status >> 16
        if event:
            return cls(StopKind.EVENT, status, signo=sig, event=event)
        return cls(StopKind.SIGNAL, status, signo=sig)

    @property
    def finished(self) -> bool:
        return self.kind in (StopKind.EXITED, StopKind.KILLED)


class TraceeGone(Exception):
    """The tracee died while rrgdb was operating on it."""


class Task:
    """A ptraced thread. All tracee memory and register access goes through here."""

    def __init__(self, tid: int, tgid: int | None = None) -> None:
        self.tid = tid
        self.tgid = tgid if tgid is not None else tid
        self._mem_fd: int | None = None
        self.alive = True

    # -- registers --------------------------------------------------------------------
    def regs(self) -> Registers:
        return Registers.from_bytes(native.get_regs(self.tid))

    def set_regs(self, regs: Registers) -> None:
        native.set_regs(self.tid, regs.to_bytes())

    def xstate(self) -> bytes:
        """The XSAVE area (x87, SSE, AVX state)."""
        return native.get_regset(self.tid, native.NT_X86_XSTATE)

    def set_xstate(self, data: bytes) -> None:
        native.set_regset(self.tid, native.NT_X86_XSTATE, data)

    def get_debugreg(self, index: int) -> int:
        return native.ptrace(native.PTRACE_PEEKUSER, self.tid, native.debugreg_offset(index)) \
            & 0xFFFFFFFFFFFFFFFF

    def set_debugreg(self, index: int, value: int) -> None:
        native.ptrace(native.PTRACE_POKEUSER, self.tid, native.debugreg_offset(index), value)

    # -- memory -----------------------------------------------------------------------
    def _mem(self) -> int:
        if self._mem_fd is None:
            self._mem_fd = os.open(f"/proc/{self.tid}/mem", os.O_RDWR | os.O_CLOEXEC)
        return self._mem_fd

    def reopen_memory(self) -> None:
        """Forget the /proc/pid/mem handle (the address space changed, e.g. after exec)."""
        if self._mem_fd is not None:
            os.close(self._mem_fd)
            self._mem_fd = None

    def read(self, addr: int, length: int) -> bytes:
        """Reads tracee memory; may be short at the end of a mapping."""
        if length <= 0:
            return b""
        try:
            return native.read_memory(self.tid, addr, length)
        except OSError:
            try:
                return os.pread(self._mem(), length, addr)
            except OSError:
                return b""

    def read_exact(self, addr: int, length: int) -> bytes:
        data = self.read(addr, length)
        if len(data) != length:
            raise OSError(f"cannot read {length} bytes at {addr:#x} in task {self.tid}")
        return data

    def read_u64(self, addr: int) -> int:
        return int.from_bytes(self.read_exact(addr, 8), "little")

    def read_u32(self, addr: int) -> int:
        return int.from_bytes(self.read_exact(addr, 4), "little")

    def read_cstring(self, addr: int, limit: int = 4096) -> bytes:
        out = b""
        while len(out) < limit:
            chunk = self.read(addr + len(out), min(256, 4096 - ((addr + len(out)) & 4095)))
            if not chunk:
                break
            nul = chunk.find(b"\0")
            if nul >= 0:
                return out + chunk[:nul]
            out += chunk
        return out

    def write(self, addr: int, data: bytes) -> None:
        """Writes tracee memory, read-only pages included (through /proc/pid/mem)."""
        if not data:
            return
        done = os.pwrite(self._mem(), data, addr)
        if done != len(data):
            raise OSError(f"short write of {len(data)} bytes at {addr:#x} in task {self.tid}")

    # -- execution --------------------------------------------------------------------
    def resume(self, request: int, sig: int = 0) -> None:
        native.ptrace(request, self.tid, 0, sig)

    def wait(self) -> Stop:
        _, status = native.waitpid(self.tid)
        stop = Stop.decode(status)
        if stop.finished:
            self.alive = False
        return stop

    def siginfo(self) -> bytes:
        return native.get_siginfo(self.tid)

    def set_siginfo(self, info: bytes) -> None:
        native.set_siginfo(self.tid, info)

    def event_msg(self) -> int:
        return native.get_event_msg(self.tid)

    def kill(self) -> None:
        """Ends the tracee (SIGKILL by pid) and reaps it."""
        if not self.alive:
            return
        try:
            os.kill(self.tid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            while True:
                _, status = native.waitpid(self.tid)
                if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                    break
                # e.g. the PTRACE_EVENT_EXIT stop that SIGKILL still produces
                native.ptrace(native.PTRACE_CONT, self.tid, 0, 0)
        except OSError:
            pass
        self.alive = False
        self.reopen_memory()

    def close(self) -> None:
        self.reopen_memory()
