"""Where the instruction before a moment was, when the code itself tells.

Going back one instruction means single-stepping forward to the present from an earlier
start; without a PMU that start is a breakpoint's last hit. The best breakpoint is the
instruction that ran just before the present, or one shortly before it, and four cases
can be read off the code and the stack:

- a function's entry: the call whose return address tops the stack led there (directly,
  through a PLT stub or through a GOT slot);
- a point inside a function: that function's entry led there (the target of the call
  before the return address nearest the top of the stack, or at rbp+8);
- a return address just returned to (the slot the return popped still holds it): one of
  the called function's ret instructions led there (found by disassembling it);
- where a syscall left its thread: the two-byte syscall instruction just before;
- inside one of the syscall buffer's stubs: the `call *%reg` that entered it;
- any point of a function the file's symbols describe: the instruction before it in the
  code and the jumps and calls to it (found by disassembling the function).

Each candidate is checked against the bytes (and the mappings), so that a breakpoint lands
on an instruction boundary.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable

from rrgdb import syscallbuf
from rrgdb.kernel.address_space import PROT_EXEC, MapsEntry
from rrgdb.kernel.registers import Registers
from rrgdb.kernel.task import Task

_MASK = (1 << 64) - 1
_SYSCALL = b"\x0f\x05"
_ENDBR64 = b"\xf3\x0f\x1e\xfa"


def _u64(task: Task, addr: int) -> int | None:
    data = task.read(addr & _MASK, 8)
    return int.from_bytes(data, "little") if len(data) == 8 else None


def _stub_target(task: Task, stub: int) -> int | None:
    """Where the code at stub jumps, if it is a PLT-style `jmp *slot(%rip)`: the slot."""
    code = task.read(stub, 11)
    offset = 4 if code.startswith(_ENDBR64) else 0
    if code[offset:offset + 1] == b"\xf2":  # bnd
        offset += 1
    if code[offset:offset + 2] != b"\xff\x25" or len(code) < offset + 6:
        return None
    end = stub + offset + 6
    return _u64(task, end + int.from_bytes(code[offset + 2:offset + 6], "little", signed=True))


def _call_before(task: Task, ret: int) -> tuple[int, int] | None:
    """The call instruction a return address follows and the function it calls (past a
    PLT stub), for `call rel32` and `call *slot(%rip)`."""
    if ret < 6:
        return None
    code = task.read(ret - 6, 6)
    if len(code) != 6:
        return None
    if code[1] == 0xE8:
        callee = (ret + int.from_bytes(code[2:], "little", signed=True)) & _MASK
        return ret - 5, _stub_target(task, callee) or callee
    if code[:2] == b"\xff\x15":
        target = _u64(task, ret + int.from_bytes(code[2:], "little", signed=True))
        return None if target is None else (ret - 6, target)
    return None


def call_site(task: Task, pc: int, rsp: int) -> int | None:
    """The call instruction that entered the function at pc, if the return address on
    top of the stack follows a call to it."""
    ret = _u64(task, rsp)
    call = None if ret is None else _call_before(task, ret)
    return call[0] if call is not None and call[1] == pc else None


def stub_call_site(task: Task, regs: Registers) -> int | None:
    """The `call *%reg` that entered one of the syscall buffer's stubs in rrgdb's scratch
    page (a thread inside one, at a caught buffered call): the return address on top of
    the stack follows it."""
    if regs.rip not in syscallbuf.STUBS or (ret := _u64(task, regs.rsp)) is None:
        return None
    code = task.read(ret - 3, 3)
    if len(code) != 3 or code[2] & 0xF8 != 0xD0:
        return None
    if code[:2] == b"\x41\xff":  # (r8-r15)
        return ret - 3
    return ret - 2 if code[1] == 0xFF else None


STACK_SLOTS_SEARCHED = 32  # for the return address of the function the present is in
MAX_FUNCTION_BYTES = 1 << 20


def function_entry(task: Task, pc: int, rsp: int, rbp: int,
                   maps: list[MapsEntry]) -> int | None:
    """The entry of the function pc is inside (after its entry), found from a return
    address on the stack: the first slot from the top (then rbp+8) that holds an address
    in executable memory just after a call whose target is in pc's mapping, at most
    MAX_FUNCTION_BYTES before pc."""
    executable = [(m.start, m.end) for m in maps if m.prot & PROT_EXEC]
    home = next(((a, b) for a, b in executable if a <= pc < b), None)
    if home is None:
        return None
    stack = task.read(rsp, 8 * STACK_SLOTS_SEARCHED)
    slots = [int.from_bytes(stack[i:i + 8], "little") for i in range(0, len(stack) - 7, 8)]
    if rsp < rbp < rsp + MAX_FUNCTION_BYTES and (frame := _u64(task, rbp + 8)) is not None:
        slots.append(frame)
    for ret in slots:
        if not any(a <= ret - 6 and ret <= b for a, b in executable):
            continue
        call = _call_before(task, ret)
        if call is not None and home[0] <= call[1] < pc and pc - call[1] <= MAX_FUNCTION_BYTES:
            return call[1]
    return None


def returned_from(task: Task, pc: int, rsp: int) -> int | None:
    """The entry of the function that just returned to pc (past a PLT stub), if pc
    follows a call and the slot below rsp still holds pc."""
    if _u64(task, rsp - 8) != pc:
        return None
    call = _call_before(task, pc)
    return None if call is None else call[1]


SWEEP_BYTES = 4096  # of a function's code disassembled for its ret instructions
_NEXT_FUNCTION = (b"\xf3\x0f\x1e\xfa", b"\x55", b"\xcc", b"\x90", b"\x66", b"\x0f\x1f")


def returns_in(code: bytes, entry: int) -> list[int]:
    """The addresses of the ret instructions of the function whose code (as the program
    sees it: no breakpoint bytes) starts at entry, by a linear sweep up to the first ret
    followed by what starts a function or pads between functions."""
    from capstone import CS_ARCH_X86, CS_MODE_64, Cs  # 45 ms to import: only when needed

    found: list[int] = []
    previous_was_ret = False
    for insn in Cs(CS_ARCH_X86, CS_MODE_64).disasm(code, entry):
        if previous_was_ret and code[insn.address - entry:].startswith(_NEXT_FUNCTION):
            break
        previous_was_ret = insn.mnemonic.endswith("ret")  # ret, bnd ret, repz ret
        if previous_was_ret:
            found.append(insn.address)
    return found


def syscall_site(task: Task, pc: int) -> int | None:
    """The syscall instruction just before pc, where a syscall left its thread."""
    return pc - 2 if task.read(pc - 2, 2) == _SYSCALL else None


MAX_DISASSEMBLED = 1 << 16  # bytes of one function


@functools.lru_cache(maxsize=64)
def _file_functions(path: str) -> tuple[list[int], list[int], list[tuple[int, int, int]]]:
    """The starts and sizes of a file's functions (.symtab, else .dynsym) sorted by start,
    and its loadable segments (vaddr, file offset, file size)."""
    from elftools.common.exceptions import ELFError  # 60 ms to import: only when needed
    from elftools.elf.elffile import ELFFile

    functions: dict[int, int] = {}
    segments: list[tuple[int, int, int]] = []
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            segments = [(seg["p_vaddr"], seg["p_offset"], seg["p_filesz"])
                        for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"]
            for name in (".symtab", ".dynsym"):
                table = elf.get_section_by_name(name)
                if table is None or not hasattr(table, "iter_symbols"):
                    continue
                for sym in table.iter_symbols():
                    if (sym["st_info"]["type"] == "STT_FUNC" and sym["st_value"]
                            and sym["st_size"]):
                        functions[sym["st_value"]] = sym["st_size"]
                if functions:
                    break
    except (OSError, ELFError):
        return [], [], []
    starts = sorted(functions)
    return starts, [functions[a] for a in starts], segments


def preceding_instructions(pc: int, read_code: Callable[[int, int], bytes],
                           maps: list[MapsEntry]) -> set[int]:
    """The instructions that can run just before pc inside its function, if the mapped
    file's symbols describe it: the one before pc in the code, and the jumps and calls to
    pc. read_code(addr, length) gives the code as the program sees it (no breakpoints).
    Empty when the disassembly does not meet pc on an instruction boundary."""
    from capstone import CS_ARCH_X86, CS_MODE_64, Cs  # 45 ms to import: only when needed

    mapping = next((m for m in maps
                    if m.start <= pc < m.end and m.prot & PROT_EXEC and m.is_file), None)
    if mapping is None:
        return set()
    starts, sizes, segments = _file_functions(mapping.path)
    segment = next(((v, o) for v, o, n in segments if o <= mapping.offset < o + n), None)
    if segment is None:
        return set()
    bias = mapping.start - (segment[0] + mapping.offset - segment[1])
    index = bisect.bisect_right(starts, pc - bias) - 1
    if index < 0 or pc - bias >= starts[index] + sizes[index]:
        return set()
    entry = starts[index] + bias
    code = read_code(entry, min(sizes[index], MAX_DISASSEMBLED))
    found: set[int] = set()
    previous = None
    met = False
    for insn in Cs(CS_ARCH_X86, CS_MODE_64).disasm(code, entry):
        if insn.address == pc:
            met = True
            if previous is not None:
                found.add(previous)
        if insn.mnemonic.startswith(("j", "call")) and _target(insn.op_str) == pc:
            found.add(insn.address)
        previous = insn.address
    return found if met else set()


def _target(operand: str) -> int | None:
    """The address of a direct jump's or call's operand (capstone prints it in hex)."""
    try:
        return int(operand, 16) if operand.startswith("0x") else None
    except ValueError:
        return None
