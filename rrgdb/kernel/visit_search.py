"""Finding the visit of an instruction at which a thread's registers have given values, at
the program's own speed.

Without a PMU, a moment between two events is found again by its state (DESIGN.md §6):
the first visit of its pc with the same registers and memory. Stopping at every visit
with an int3 costs a ptrace stop each, and a loop that changes its registers at every
turn visits its pc millions of times between two events. Instead, the instructions at pc
(a *window* of at least 5 bytes) are replaced by a jump to a *stub* that compares the
general registers with the wanted values and traps only when they all match; otherwise
it runs the displaced instructions (moved so that they do the same there) and jumps
back. The stub lives in a page of its own mapped near pc (a jump reaches ±2 GiB), shared
and anonymous so that memory_hash(), which hashes private writable mappings, never sees
it, and the kernel never merges it with a mapping of the program's.

A window of several instructions is only safe if nothing jumps into its middle: the
recorder, which chooses where a preempted thread stops, checks that while it steps the
thread there (record/preemption.py) and records the window's length; replay decodes
the same bytes and must find the same length.

The stub keeps everything it changes in its own page: rax and the flags it uses to
compare (lahf/seto, put back with sahf and an add that sets OF), so no byte of the
program's memory, not even below its stack pointer, differs from the recording.

Code in a writable mapping (a JIT's) may be written by the thread during the search: not
generated yet when the search starts, or rewritten (HotSpot writes a resolved method's
address into a `movabs` it then runs). Its pages are made read-only while the search
runs, so such a store faults before it lands on the jump: the search then puts the code
back, lets the store happen, and patches the window again as it now is (the_program_writes).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from rrgdb.kernel.address_space import MapsEntry, read_maps
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.remote_syscalls import (
    MAP_ANONYMOUS,
    MAP_FIXED_NOREPLACE,
    MAP_SHARED,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    inject,
)
from rrgdb.kernel.task import Task

JUMP_BYTES = 5  # jmp rel32
MAX_INSTRUCTION = 15
PAGE = 0x1000
STUB_BYTES = 2 * PAGE
SEGV_ACCERR = 2  # si_code of a SIGSEGV for a write to a page mapped without PROT_WRITE

# Register numbers in x86 encodings, and the order the stub compares them in when
# nothing better is known. r11 is left out: it holds rflags after a syscall, whose trap
# flag a single-stepped recording may have left set (Registers.comparable ignores it);
# the full comparison that follows a trap checks it.
_ENCODING = {"rax": 0, "rcx": 1, "rdx": 2, "rbx": 3, "rsp": 4, "rbp": 5, "rsi": 6, "rdi": 7,
             "r8": 8, "r9": 9, "r10": 10, "r12": 12, "r13": 13, "r14": 14, "r15": 15}
REGISTER_NAMES = tuple(_ENCODING)  # the registers a stub compares
STACK_BELOW, STACK_ABOVE = 128, 2048  # the stack bytes around rsp it compares then
MAX_WATCHED = 32  # the memory words (PreemptFrame.watched) it compares first, at most

# Instructions the recorder must not single-step: they enter the kernel, trap on purpose,
# read the time or the CPU's identity (which fault under PR_TSC_SIGSEGV and CPUID
# faulting: each is an event), or push the flags with the trap flag a single step sets.
_UNSTEPPABLE = frozenset({
    "syscall", "sysenter", "int", "int1", "int3", "into", "ud0", "ud1", "ud2", "hlt",
    "rdtsc", "rdtscp", "cpuid", "pushf", "pushfq", "xbegin", "xend", "xabort", "iretq",
    "iretd", "iret", "sysret", "sysretq", "sysexit",
})
# And those that cannot run from a stub either: a call pushes the stub's address, and
# these jumps have no 32-bit form.
_UNMOVABLE = _UNSTEPPABLE | {"loop", "loope", "loopne", "jrcxz", "jecxz", "call", "lcall",
                             "ljmp", "enter"}
_REPEAT_PREFIXES = frozenset({"rep", "repe", "repz", "repne", "repnz"})
_STRING_OPERATIONS = frozenset(f"{op}{size}" for op in ("movs", "stos", "lods", "scas", "cmps")
                               for size in "bwdq") | {"insb", "insw", "insd", "outsb",
                                                      "outsw", "outsd"}
_JCC_RANGE = range(0x70, 0x80)
_PREFIXES = frozenset({0x2E, 0x3E, 0xF2})  # branch hints and bnd: dropped when moved


@dataclass(frozen=True, slots=True)
class Instruction:
    """One decoded instruction: where it is, its bytes, and what moving it involves."""

    address: int
    code: bytes
    mnemonic: str
    jumps: bool  # a jump (relative or not) or a return
    target: int | None  # a relative jump's destination
    displacement_at: int | None  # offset of a rip-relative displacement in code
    repeats: bool = False  # a rep string instruction: a single step runs one iteration

    @property
    def end(self) -> int:
        return self.address + len(self.code)


@dataclass(frozen=True, slots=True)
class Window:
    """The whole instructions, at least JUMP_BYTES long, that a jump to a stub replaces."""

    instructions: tuple[Instruction, ...]

    @property
    def address(self) -> int:
        return self.instructions[0].address

    @property
    def length(self) -> int:
        return self.instructions[-1].end - self.address

    @property
    def interior(self) -> frozenset[int]:
        """The instructions after the first: nothing may jump to them."""
        return frozenset(i.address for i in self.instructions[1:])


@cache
def _disassembler() -> Any:
    from capstone import CS_ARCH_X86, CS_MODE_64, Cs  # 45 ms to import: only when needed

    disassembler = Cs(CS_ARCH_X86, CS_MODE_64)
    disassembler.detail = True
    return disassembler


def decode(code: bytes, address: int) -> Instruction | None:
    """The instruction at the start of code (at address), None if it is not one."""
    from capstone import CS_GRP_CALL, CS_GRP_JUMP, CS_GRP_RET
    from capstone.x86 import X86_OP_IMM, X86_OP_MEM, X86_REG_RIP

    for insn in _disassembler().disasm(code[:MAX_INSTRUCTION], address, 1):
        target = displacement_at = None
        jumps = insn.group(CS_GRP_JUMP) or insn.group(CS_GRP_RET)
        if jumps and len(insn.operands) == 1 and insn.operands[0].type == X86_OP_IMM:
            target = insn.operands[0].imm & 0xFFFFFFFFFFFFFFFF
        if any(op.type == X86_OP_MEM and op.mem.base == X86_REG_RIP for op in insn.operands):
            displacement_at = insn.disp_offset
        words = insn.mnemonic.split()
        mnemonic = "call" if insn.group(CS_GRP_CALL) else words[-1]
        return Instruction(address, bytes(insn.bytes), mnemonic, bool(jumps), target,
                           displacement_at,
                           words[0] in _REPEAT_PREFIXES and words[-1] in _STRING_OPERATIONS)
    return None


def steppable(insn: Instruction) -> bool:
    """Whether the recorder may single-step insn while it looks for a window."""
    return insn.mnemonic not in _UNSTEPPABLE


def movable(insn: Instruction) -> bool:
    """Whether insn may run from a stub instead of its place (and be single-stepped)."""
    return insn.mnemonic not in _UNMOVABLE and (
        insn.target is None or _jump_opcode(insn) is not None)


def _jump_opcode(insn: Instruction) -> bytes | None:
    """The opcode of a relative jump's rel32 form (None: a form rrgdb does not move)."""
    body = insn.code
    while body and body[0] in _PREFIXES:
        body = body[1:]
    if body[:1] in (b"\xeb", b"\xe9"):
        return b"\xe9"
    if body and body[0] in _JCC_RANGE:
        return bytes([0x0F, 0x80 + body[0] - 0x70])
    if len(body) > 1 and body[0] == 0x0F and 0x80 <= body[1] < 0x90:
        return body[:2]
    return None


def window_at(code: bytes, address: int) -> Window | None:
    """The window starting at address given the code there (at least JUMP_BYTES +
    MAX_INSTRUCTION bytes of it): whole movable instructions, of which only the last may
    jump or return. None if there is none."""
    instructions: list[Instruction] = []
    offset = 0
    while offset < JUMP_BYTES:
        insn = decode(code[offset:], address + offset)
        if insn is None or not movable(insn):
            return None
        instructions.append(insn)
        offset += len(insn.code)
        if insn.jumps and offset < JUMP_BYTES:
            return None
    return Window(tuple(instructions))


def read_window(task: Task, address: int) -> Window | None:
    """window_at the code the task has at address."""
    return window_at(task.read(address, JUMP_BYTES + MAX_INSTRUCTION), address)


def _rel32(source_end: int, destination: int) -> bytes:
    delta = destination - source_end
    if not -(1 << 31) <= delta < (1 << 31):
        raise ValueError(f"{destination:#x} is out of a jump's reach from {source_end:#x}")
    return struct.pack("<i", delta)


def _moved(insn: Instruction, at: int) -> bytes:
    """insn's code to run at `at` with the same effect as at its own address."""
    code = insn.code
    if insn.target is not None:
        opcode = _jump_opcode(insn)
        assert opcode is not None  # movable()
        return opcode + _rel32(at + len(opcode) + 4, insn.target)
    if insn.displacement_at is not None:
        old = struct.unpack_from("<i", code, insn.displacement_at)[0]
        destination = insn.end + old
        new = bytearray(code)
        new[insn.displacement_at:insn.displacement_at + 4] = _rel32(at + len(code), destination)
        return bytes(new)
    return code


class _Assembler:
    """The stub's code, in the few encodings it needs, at its final address."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.code = bytearray()
        self.fixups: list[tuple[int, str]] = []  # (offset of a rel32, label)
        self.labels: dict[str, int] = {}

    @property
    def here(self) -> int:
        return self.base + len(self.code)

    def emit(self, data: bytes) -> None:
        self.code += data

    def rip_relative(self, opcode: bytes, slot: int) -> None:
        """An instruction whose only operand after opcode is [rip + rel32] to slot."""
        self.emit(opcode + _rel32(self.here + len(opcode) + 4, slot))

    def jump(self, opcode: bytes, label: str) -> None:
        self.emit(opcode)
        self.fixups.append((len(self.code), label))
        self.emit(b"\0\0\0\0")

    def label(self, name: str) -> None:
        self.labels[name] = self.here

    def finish(self) -> bytes:
        for offset, name in self.fixups:
            self.code[offset:offset + 4] = _rel32(self.base + offset + 4, self.labels[name])
        return bytes(self.code)


@dataclass(frozen=True, slots=True)
class _Stub:
    page: int
    code: bytes  # its first page
    data: bytes  # the recorded stack words, then the watched values, at _STACK_COPY
    trap: int  # the address just after its int3
    resume: int  # where the displaced instructions start


# The stub's code starts its first page; what it saves, the recorded stack words and the
# watched words it compares are on the second: a store near code being run is taken for
# self-modifying code and costs the CPU a pipeline flush.
_SAVED_RAX, _SAVED_FLAGS = PAGE, PAGE + 8
_SAVED_RSI, _SAVED_RDI, _SAVED_RCX = PAGE + 16, PAGE + 24, PAGE + 32
_STACK_COPY = PAGE + 64
assert STACK_BELOW + STACK_ABOVE + 8 * MAX_WATCHED <= STUB_BYTES - _STACK_COPY


def read_stack(task: Task, regs: Registers) -> bytes:
    """The stack words around rsp (STACK_BELOW bytes below it, the red zone, and up to
    STACK_ABOVE above) that a stub compares once the registers match: the locals of
    code that keeps its state in memory (gcc -O0), or in its callers' frames (a JIT's
    loop counter some frames up), are there."""
    data = task.read(regs.rsp - STACK_BELOW, STACK_BELOW + STACK_ABOVE)
    return data[:len(data) & ~7]


def build_stub(page: int, window: Window, wanted: Registers, order: list[str],
               stack: bytes, watched: bytes = b"") -> _Stub:
    """The stub at page for window: traps when the watched words ((address, value) u64
    pairs, which tell apart the visits whose registers are the same: compared first),
    the registers in order (then the others) and the stack words (read_stack) are all as
    wanted; else runs the window's instructions and jumps back after them. The stack
    words and the watched values are kept on the second page."""
    a = _Assembler(page)
    saved_rax, saved_flags = page + _SAVED_RAX, page + _SAVED_FLAGS
    a.rip_relative(b"\x48\x89\x05", saved_rax)  # mov [saved_rax], rax
    a.emit(b"\x9f\x0f\x90\xc0")  # lahf; seto al
    a.rip_relative(b"\x66\x89\x05", saved_flags)  # mov [saved_flags], ax
    value_slot = page + _STACK_COPY + len(stack)  # the values follow the stack words
    for index, (address, _) in enumerate(struct.iter_unpack("<QQ", watched)):
        a.emit(b"\x48\xb8" + struct.pack("<Q", address))  # mov rax, imm64
        a.emit(b"\x48\x8b\x00")  # mov rax, [rax]
        a.rip_relative(b"\x48\x3b\x05", value_slot + 8 * index)  # cmp rax, [value]
        a.jump(b"\x0f\x85", "differs")  # jne
    names = [n for n in order if n in _ENCODING] + [n for n in _ENCODING if n not in order]
    for name in names:
        a.emit(b"\x48\xb8" + struct.pack("<Q", getattr(wanted, name)))  # mov rax, imm64
        if name == "rax":
            a.rip_relative(b"\x48\x3b\x05", saved_rax)  # cmp rax, [saved_rax]
        else:
            number = _ENCODING[name]
            rex = 0x49 if number >= 8 else 0x48
            a.emit(bytes([rex, 0x39, 0xC0 | (number & 7)]))  # cmp reg, rax
        a.jump(b"\x0f\x85", "differs")  # jne
    if stack:
        _compare_stack(a, page, len(stack) // 8)

    def restore() -> None:
        a.rip_relative(b"\x66\x8b\x05", saved_flags)  # mov ax, [saved_flags]
        a.emit(b"\x04\x7f\x9e")  # add al, 0x7f (OF back); sahf (SF ZF AF PF CF back)
        a.rip_relative(b"\x48\x8b\x05", saved_rax)  # mov rax, [saved_rax]

    restore()
    a.emit(b"\xcc")
    trap = a.here
    a.label("differs")
    restore()
    resume = a.here
    for insn in window.instructions:
        a.emit(_moved(insn, a.here))
    a.emit(b"\xe9" + _rel32(a.here + 5, window.address + window.length))  # jmp back
    code = a.finish()
    assert len(code) <= _SAVED_RAX, "the stub's code must stay on its first page"
    values = b"".join(value for _, value in struct.iter_unpack("<Q8s", watched))
    return _Stub(page, code, stack + values, trap, resume)


def _compare_stack(a: _Assembler, page: int, words: int) -> None:
    """Stub code comparing the words from rsp - STACK_BELOW with the recorded ones (at
    _STACK_COPY), in a loop through rsi, rdi and rcx, which it saves and restores; on to
    "differs" at the first that differs."""
    saved = [(b"\x35", page + _SAVED_RSI), (b"\x3d", page + _SAVED_RDI),
             (b"\x0d", page + _SAVED_RCX)]  # modrm of rsi, rdi, rcx with [rip + rel32]
    for modrm, slot in saved:
        a.rip_relative(b"\x48\x89" + modrm, slot)  # mov [slot], reg
    a.emit(b"\x48\x8d\x74\x24" + struct.pack("<b", -STACK_BELOW))  # lea rsi, [rsp - 128]
    a.rip_relative(b"\x48\x8d\x3d", page + _STACK_COPY)  # lea rdi, [copy]
    a.emit(b"\xb9" + struct.pack("<I", words))  # mov ecx, words
    a.label("next word")
    a.emit(b"\x48\x8b\x06\x48\x3b\x07")  # mov rax, [rsi]; cmp rax, [rdi]
    a.jump(b"\x0f\x85", "compared")  # jne (ZF clear)
    a.emit(b"\x48\x83\xc6\x08\x48\x83\xc7\x08\xff\xc9")  # add rsi, 8; add rdi, 8; dec ecx
    a.jump(b"\x0f\x85", "next word")  # jnz; falls through with ZF set: all equal
    a.label("compared")
    for modrm, slot in saved:
        a.rip_relative(b"\x48\x8b" + modrm, slot)  # mov reg, [slot] (the flags stay)
    a.jump(b"\x0f\x85", "differs")  # jne


class VisitSearch:
    """A window of a task's code patched to jump to a register-comparing stub while a
    search for a visit runs (made by open_search): install() before resuming the task,
    remove() when it stops for anything else than the stub's trap, close() at the end.
    In writable code the window is patched only while its code has the recorded window's
    length, and its pages are read-only while installed (the_program_writes)."""

    def __init__(self, task: Task, address: int, length: int, page: int,
                 build: Callable[[Window], _Stub], guarded: list[MapsEntry]) -> None:
        self.task = task
        self.address = address
        self.length = length
        self.page = page  # the stub's
        self._build = build
        self._guarded = guarded  # the writable mappings the window's pages are in
        self.stub: _Stub | None = None  # None: the code there is not the window (yet)
        self.original = b""
        self.installed = False
        self.refresh()

    def install(self) -> None:
        """Writes the jump to the stub over the window (the rest of it: int3s) and makes
        writable code read-only."""
        for start, end, prot in self._pages():
            inject(self.task, "mprotect", start, end - start, prot & ~PROT_WRITE)
        if self.stub is not None:
            jump = b"\xe9" + _rel32(self.address + 5, self.page)
            self.task.write(self.address, jump.ljust(self.length, b"\xcc"))
        self.installed = True

    def remove(self) -> None:
        """Puts the original instructions and protections back."""
        if self.installed:
            self.task.write(self.address, self.original)
            for start, end, prot in self._pages():
                inject(self.task, "mprotect", start, end - start, prot)
            self.installed = False

    def close(self) -> None:
        """Removes the jump and unmaps the stub."""
        if self.task.alive:
            self.remove()
            inject(self.task, "munmap", self.page, STUB_BYTES)

    def _pages(self) -> list[tuple[int, int, int]]:
        """(start, end, protection) of the window's pages in writable mappings."""
        first = self.address & ~(PAGE - 1)
        end = (self.address + self.length + PAGE - 1) & ~(PAGE - 1)
        return [(max(first, m.start), min(end, m.end), m.prot) for m in self._guarded
                if m.start < end and first < m.end]

    def the_program_writes(self, siginfo: bytes) -> bool:
        """Whether a SIGSEGV with this siginfo is the thread storing into the pages of
        writable code that install() made read-only: the store is to be made as recorded,
        once remove() put the code and its protection back (then refresh())."""
        code, = struct.unpack_from("<i", siginfo, 8)
        addr, = struct.unpack_from("<Q", siginfo, 16)
        return code == SEGV_ACCERR and any(p <= addr < end for p, end, _ in self._pages())

    def refresh(self) -> None:
        """Takes the code at the window as it is now: a stub for it if it is whole
        movable instructions of the recorded length, else none (nothing patched)."""
        self.original = self.task.read(self.address, self.length)
        window = read_window(self.task, self.address)
        self.stub = None
        if window is not None and window.length == self.length:
            self.stub = self._build(window)
            self.task.write(self.page, self.stub.code)
            self.task.write(self.page + _STACK_COPY, self.stub.data)

    def occupied(self, pc: int) -> bool:
        """Whether a thread at pc runs code that refresh() may rewrite: the window's
        interior or the stub's moved instructions."""
        return self.address < pc < self.address + self.length or (
            self.page <= pc < self.page + PAGE)

    def trapped(self, regs: Registers) -> bool:
        """Whether a SIGTRAP with these registers is the stub's: the registers matched."""
        return self.stub is not None and regs.rip == self.stub.trap

    @property
    def resume_address(self) -> int:
        """Where a task trapped in the stub goes on when the full state did not match."""
        assert self.stub is not None
        return self.stub.resume


def writable_code(task: Task, address: int, length: int) -> list[MapsEntry]:
    """The writable mappings holding some of the code [address, address + length)."""
    return [m for m in read_maps(task.tid)
            if m.prot & PROT_WRITE and m.start < address + length and address < m.end]


def open_search(task: Task, address: int, length: int, wanted: Registers, order: list[str],
                stack: bytes, watched: bytes) -> VisitSearch | None:
    """A search for the visit of address with the wanted registers (compared in this
    order first), stack words and watched words, behind a window of the recorded length
    there; its stub
    mapped and written (in writable code, once the code there has that length); None if
    no free address is within a jump's reach of the window."""
    page = _map_near(task, address)
    if page is None:
        return None

    def build(window: Window) -> _Stub:
        return build_stub(page, window, wanted, order, stack, watched)

    return VisitSearch(task, address, length, page, build,
                       writable_code(task, address, length))


def _map_near(task: Task, address: int) -> int | None:
    """Fresh shared read-write-execute pages (STUB_BYTES) within a jump's reach of
    address, in the free gap between mappings nearest to it."""
    reach = (1 << 31) - 2 * STUB_BYTES
    low, high = max(address - reach, 1 << 16), min(address + reach, 1 << 47)
    candidates = []
    previous_end = 1 << 16
    for entry in [*read_maps(task.tid), None]:
        start = entry.start if entry is not None else 1 << 47
        gap_start, gap_end = max(previous_end, low), min(start, high)
        if gap_end - gap_start >= STUB_BYTES:
            # the free pages nearest to address in this gap
            page = min(max(address & ~(PAGE - 1), gap_start), gap_end - STUB_BYTES)
            candidates.append(page)
        if entry is not None:
            previous_end = max(previous_end, entry.end)
    prot = PROT_READ | PROT_WRITE | PROT_EXEC
    for page in sorted(candidates, key=lambda p: abs(p - address))[:4]:
        mapped = inject(task, "mmap", page, STUB_BYTES, prot,
                        MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, 0xFFFFFFFFFFFFFFFF, 0)
        if mapped == page:
            return page
        if 0 < mapped < 1 << 47:  # a kernel that took it as a hint only
            inject(task, "munmap", mapped, STUB_BYTES)
    return None
