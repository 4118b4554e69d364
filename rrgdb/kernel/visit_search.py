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
program's memory, not even below its stack pointer, differs from the recording. Where
the program sets the status flags before reading them (flags_dead), it first compares
one word's low half with a single cmp that saves nothing, so that a visit that differs
there costs 5 instructions instead of 15 (build_stub).

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
_FROM_RSP = 512  # the stack bytes above rsp where its first compare may read a word

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
# The status flags (their eflags bits) and what instructions do to them, for flags_dead:
# an instruction not listed here is taken to read them.
CF, PF, AF, ZF, SF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x800
STATUS_FLAGS = CF | PF | AF | ZF | SF | OF
_FLAGS_SET = {  # those an instruction leaves with a defined value ("undefined" is not one)
    **dict.fromkeys(("add", "sub", "cmp", "neg", "adc", "sbb"), STATUS_FLAGS),
    **dict.fromkeys(("inc", "dec"), STATUS_FLAGS & ~CF),
    **dict.fromkeys(("and", "or", "xor", "test"), STATUS_FLAGS & ~AF),
}
_JCC_READS = {"jo": OF, "jno": OF, "jb": CF, "jae": CF, "je": ZF, "jne": ZF, "jbe": CF | ZF,
              "ja": CF | ZF, "js": SF, "jns": SF, "jp": PF, "jnp": PF, "jl": SF | OF,
              "jge": SF | OF, "jle": ZF | SF | OF, "jg": ZF | SF | OF}
_FLAGS_READ = {**_JCC_READS, "adc": CF, "sbb": CF}
_FLAGS_UNTOUCHED = frozenset({
    "mov", "movabs", "movzx", "movsx", "movsxd", "lea", "nop", "endbr64", "push", "pop",
    "not", "bswap", "cdqe", "cqo", "cdq", "cwde", "jmp", "movd", "movq", "movaps", "movups",
    "movapd", "movupd", "movdqa", "movdqu", "movss", "movsd",
})
FLAGS_LOOKAHEAD = 64  # the instructions flags_dead decodes at most
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


def flags_dead(code_at: Callable[[int], bytes | None], address: int) -> bool:
    """Whether the status flags at address are set (with defined values) before any
    instruction reads them, on every path from there: followed through direct jumps and
    both ways of conditional ones, within FLAGS_LOOKAHEAD instructions; an instruction
    the analysis does not know (a call, a return, an indirect jump, pushf, setcc, ...)
    or code_at cannot give (None: not code that stays as it is) counts as a read.
    code_at(pc) gives the code at pc (at least MAX_INSTRUCTION bytes)."""
    paths = [(address, STATUS_FLAGS)]  # (pc, the flags not set yet on the way there)
    seen: set[tuple[int, int]] = set()
    while paths:
        pc, unset = paths.pop()
        if (pc, unset) in seen:
            continue  # a loop that reads none of them on its way round
        seen.add((pc, unset))
        code = code_at(pc) if len(seen) <= FLAGS_LOOKAHEAD else None
        insn = decode(code, pc) if code is not None else None
        if insn is None:
            return False
        mnemonic = insn.mnemonic
        if _FLAGS_READ.get(mnemonic, 0) & unset:
            return False
        if mnemonic not in _FLAGS_READ and mnemonic not in _FLAGS_SET and (
                mnemonic not in _FLAGS_UNTOUCHED):
            return False
        unset &= ~_FLAGS_SET.get(mnemonic, 0)
        if not unset:
            continue
        if insn.jumps and insn.target is None:
            return False  # indirect: who knows where to
        if mnemonic == "jmp":
            paths.append((insn.target, unset))
        elif mnemonic in _JCC_READS:
            paths += [(insn.target, unset), (insn.end, unset)]
        else:
            paths.append((insn.end, unset))
    return True


def fixed_code(task: Task) -> Callable[[int], bytes | None]:
    """A reader of the task's code for flags_dead: the MAX_INSTRUCTION bytes at an address
    in an executable mapping that is not writable (code that stays as it is), else None."""
    mappings = [(m.start, m.end) for m in read_maps(task.tid)
                if m.prot & PROT_EXEC and not m.prot & PROT_WRITE]
    read: dict[int, bytes | None] = {}

    def code_at(pc: int) -> bytes | None:
        if pc not in read:
            inside = any(start <= pc < end for start, end in mappings)
            read[pc] = task.read(pc, MAX_INSTRUCTION) if inside else None
        return read[pc]

    return code_at


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
    sets_flags: bool = False  # its first comparison sets the status flags (flags_dead)


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
               stack: bytes, watched: bytes = b"", may_set_flags: bool = False) -> _Stub:
    """The stub at page for window: traps when the watched words ((address, value) u64
    pairs, which tell apart the visits whose registers are the same: compared first),
    the registers in order (then the others) and the stack words (read_stack) are all as
    wanted; else runs the window's instructions and jumps back after them. The stack
    words and the watched values are kept on the second page.

    If the status flags may be set at the window (flags_dead), it first compares the low
    half of one watched word (or else of the first register in order) with a single
    cmp, which saves and restores nothing: a visit that differs there goes straight on
    to the window's instructions (5 instructions a visit instead of 15; a loop of one
    load, add and store ran 5-10x slower than natively behind the full comparison, 2x
    now). The flags the program has at a trap are then unknown (see
    VisitSearch.program_registers)."""
    a = _Assembler(page)
    filtered = may_set_flags and _compare_low_half(a, wanted, order, stack, watched)
    if filtered:
        a.jump(b"\x0f\x84", "candidate")  # je
        a.label("resume")
        _move_back(a, window)
        a.label("candidate")
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
    if filtered:
        a.jump(b"\xe9", "resume")
    else:
        a.label("resume")
        _move_back(a, window)
    code = a.finish()
    assert len(code) <= _SAVED_RAX, "the stub's code must stay on its first page"
    values = b"".join(value for _, value in struct.iter_unpack("<Q8s", watched))
    return _Stub(page, code, stack + values, trap, a.labels["resume"], filtered)


def _move_back(a: _Assembler, window: Window) -> None:
    """The window's instructions moved to the stub, then a jump back after the window."""
    for insn in window.instructions:
        a.emit(_moved(insn, a.here))
    a.emit(b"\xe9" + _rel32(a.here + 5, window.address + window.length))  # jmp back


def _compare_low_half(a: _Assembler, wanted: Registers, order: list[str], stack: bytes,
                      watched: bytes) -> bool:
    """Emits a cmp of the low 32 bits of the first watched word that an instruction can
    address without a register, or, if there are no watched words, of the first register
    in order, with its wanted value (the flags say equal: a candidate); False if there is
    neither (where words are watched, the registers come back at many turns: a cmp of one
    would pass at those and only add to them). A watched word is addressed rip-relative,
    by its absolute address below 2 GiB, or, in the stack recorded around rsp and less
    than _FROM_RSP above it, from rsp: at a visit with another rsp the registers differ
    anyway, and the read stays within the frames above that rsp (a signal handler's on
    an alternate stack: the kernel's frame, over 1 KiB)."""
    for address, value in struct.iter_unpack("<QQ", watched):
        low = struct.pack("<I", value & 0xFFFFFFFF)
        from_rip = address - (a.here + 10)
        from_rsp = address - wanted.rsp
        if -(1 << 31) <= from_rip < 1 << 31:
            a.emit(b"\x81\x3d" + struct.pack("<i", from_rip) + low)  # cmp [rip + d], imm32
        elif address < 1 << 31:
            a.emit(b"\x81\x3c\x25" + struct.pack("<i", address) + low)  # cmp [d], imm32
        elif -STACK_BELOW <= from_rsp <= min(len(stack) - STACK_BELOW, _FROM_RSP) - 8:
            a.emit(b"\x81\xbc\x24" + struct.pack("<i", from_rsp) + low)  # cmp [rsp + d]
        else:
            continue
        return True
    name = next((n for n in order if n in _ENCODING), None)
    if name is None or watched:
        return False
    number = _ENCODING[name]
    low = struct.pack("<I", getattr(wanted, name) & 0xFFFFFFFF)
    rex = b"\x41" if number >= 8 else b""
    a.emit(rex + bytes([0x81, 0xF8 | (number & 7)]) + low)  # cmp r32, imm32
    return True


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

    def program_registers(self, trapped: Registers, wanted: Registers) -> Registers:
        """The registers of a thread the stub trapped (trapped), as the program has them
        at the window: rip there, and the status flags, if the stub's first comparison set
        them, taken as wanted (the program's own were lost there, and are set before
        anything reads them: they differ from the recording nowhere it could tell)."""
        regs = trapped.copy()
        regs.rip = self.address
        if self.stub is not None and self.stub.sets_flags:
            regs.eflags = regs.eflags & ~STATUS_FLAGS | wanted.eflags & STATUS_FLAGS
        return regs

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
    may_set_flags = flags_dead(fixed_code(task), address)

    def build(window: Window) -> _Stub:
        return build_stub(page, window, wanted, order, stack, watched, may_set_flags)

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
