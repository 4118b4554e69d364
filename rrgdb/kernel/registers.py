"""Registers: the x86-64 user_regs_struct of one thread, as ptrace reads and writes it."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

_LAYOUT = struct.Struct("<27Q")

NAMES = (
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx",
    "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds",
    "es", "fs", "gs",
)
INDEX = {name: i for i, name in enumerate(NAMES)}
ARG_NAMES = ("rdi", "rsi", "rdx", "r10", "r8", "r9")
_ARG_INDEX = tuple(INDEX[n] for n in ARG_NAMES)
# Bits of eflags that ptrace stops and single-stepping set differently (TF, RF), and the
# registers that hold them: eflags, and r11, which holds rflags after a syscall (or the
# syscall buffer's hook).
_EFLAGS_VOLATILE = 0x100 | 0x10000
_FLAG_HOLDERS = (INDEX["eflags"], INDEX["r11"])


def _signed(value: int) -> int:
    return value - (1 << 64) if value & (1 << 63) else value


class Registers:
    """A mutable copy of a thread's general registers, with named access."""

    __slots__ = ("values",)

    def __init__(self, values: list[int]) -> None:
        self.values = values

    @classmethod
    def from_bytes(cls, raw: bytes) -> Registers:
        return cls(list(_LAYOUT.unpack(raw)))

    def to_bytes(self) -> bytes:
        return _LAYOUT.pack(*self.values)

    def copy(self) -> Registers:
        return Registers(list(self.values))

    if TYPE_CHECKING:  # each name of NAMES is a property (below), an int
        def __getattr__(self, name: str) -> int: ...
        def __setattr__(self, name: str, value: int) -> None: ...

    @property
    def syscallno(self) -> int:
        """The syscall number at a syscall stop (orig_rax, signed)."""
        return _signed(self.values[INDEX["orig_rax"]])

    @property
    def result(self) -> int:
        """rax as a signed value (a syscall's result)."""
        return _signed(self.values[INDEX["rax"]])

    def arg(self, n: int) -> int:
        """The n-th syscall argument (0-based)."""
        return self.values[_ARG_INDEX[n]]

    def args(self) -> tuple[int, ...]:
        v = self.values
        return tuple(v[i] for i in _ARG_INDEX)

    def set_arg(self, n: int, value: int) -> None:
        self.values[_ARG_INDEX[n]] = value & 0xFFFFFFFFFFFFFFFF

    def comparable(self) -> Registers:
        """A copy without the flag bits that ptrace stops and single-stepping set
        differently: what two runs reaching the same moment have in common."""
        same = self.copy()
        for i in _FLAG_HOLDERS:
            same.values[i] &= ~_EFLAGS_VOLATILE
        return same

    def differences(self, other: Registers) -> list[str]:
        """Names of registers that differ from other (comparable()), as
        'name: mine != other'."""
        mine, theirs = self.comparable().values, other.comparable().values
        return [f"{NAMES[i]} {a:#x} != {b:#x}"
                for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b]

    def __repr__(self) -> str:
        named = zip(NAMES, self.values, strict=True)
        return "Registers(" + ", ".join(f"{n}={v:#x}" for n, v in named) + ")"


def _register(index: int) -> property:
    """Named access to one register: a property per name (a __getattr__ fallback costs
    ~0.7 µs a read, and the engine reads and writes registers at every stop)."""

    def get(self: Registers) -> int:
        return self.values[index]

    def set(self: Registers, value: int) -> None:
        self.values[index] = value & 0xFFFFFFFFFFFFFFFF

    return property(get, set)


for _index, _name in enumerate(NAMES):
    setattr(Registers, _name, _register(_index))
