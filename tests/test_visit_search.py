"""The pure parts of kernel/visit_search.py: which instructions a jump may replace, and
how they are moved into a stub so that they do the same there (capstone decodes the
result back). The stub running for real is tested by test_threads (threads_compute)."""

from __future__ import annotations

import struct

from capstone import CS_ARCH_X86, CS_MODE_64, Cs

from rrgdb.kernel.registers import NAMES, Registers
from rrgdb.kernel.visit_search import build_stub, window_at

PAD = bytes(16)
SITE = 0x555555555220
STUB = 0x555555000000


def disassemble(code: bytes, address: int) -> list[tuple[int, str, str]]:
    decoded = Cs(CS_ARCH_X86, CS_MODE_64).disasm(code, address)
    return [(i.address, i.mnemonic, i.op_str) for i in decoded]


def test_one_long_instruction_is_a_window_alone() -> None:
    window = window_at(bytes.fromhex("48c745f000000000") + PAD, SITE)  # movq $0, -0x10(%rbp)
    assert window is not None and window.length == 8 and not window.interior


def test_short_instructions_make_a_window_together() -> None:
    # mov %rax,%rdx; shl $0xd,%rdx: 3 + 4 bytes
    window = window_at(bytes.fromhex("4889c248c1e20d") + PAD, SITE)
    assert window is not None and window.length == 7
    assert window.interior == {SITE + 3}


def test_a_jump_may_only_end_a_window() -> None:
    assert window_at(bytes.fromhex("75f04889c2") + PAD, SITE) is None  # jne first, 2 bytes
    window = window_at(bytes.fromhex("4883e90175d2") + PAD, SITE)  # sub $1,%rcx; jne
    assert window is not None and window.length == 6


def test_calls_syscalls_and_time_reads_are_never_moved() -> None:
    for code in ("e800000000", "0f05909090", "0f31909090", "9c90909090", "cc90909090"):
        assert window_at(bytes.fromhex(code) + PAD, SITE) is None, code


def wanted() -> Registers:
    return Registers.from_bytes(struct.pack("<27Q", *range(0x100, 0x100 + len(NAMES))))


def test_moved_instructions_keep_their_targets() -> None:
    # sub $1,%rcx; jne back (rel8); then, alone, a rip-relative load
    code = bytes.fromhex("4883e90175d2")
    stub = build_stub(STUB, window_at(code + PAD, SITE), wanted(), ["rcx"], b"")
    moved = disassemble(stub.code[stub.resume - STUB:], stub.resume)
    assert [m for _, m, _ in moved[:3]] == ["sub", "jne", "jmp"]
    assert int(moved[1][2], 16) == SITE + 6 - 0x2E  # the jne's own target, now as rel32
    assert int(moved[2][2], 16) == SITE + 6  # back after the window
    load = bytes.fromhex("488b0511223344")  # mov 0x44332211(%rip),%rax
    stub = build_stub(STUB, window_at(load + PAD, SITE), wanted(), [], b"")
    (address, mnemonic, operands), *_ = disassemble(stub.code[stub.resume - STUB:], stub.resume)
    displacement = int(operands.split("rip + ")[1].rstrip("]"), 16)
    assert address + 7 + displacement == SITE + 7 + 0x44332211


def test_the_stub_compares_the_changing_registers_first_and_traps_on_a_match() -> None:
    stub = build_stub(STUB, window_at(bytes.fromhex("48c745f000000000") + PAD, SITE),
                      wanted(), ["rdx"], bytes(range(16)))
    listing = disassemble(stub.code, STUB)
    first = next(i for i, (_, m, _) in enumerate(listing) if m == "cmp")
    assert listing[first][2] == "rdx, rax"
    assert listing[first - 1][2] == f"rax, {wanted().rdx:#x}"
    compared = [ops.split(",")[0] for _, m, ops in listing if m == "cmp"]
    assert "r11" not in compared and len(set(compared[:15])) == 15
    # then the stack words, from rsp - 128 on, in a loop over the copy on the second page
    assert compared[15:] == ["rax"]
    assert ("lea", "rsi, [rsp - 0x80]") in [(m, ops) for _, m, ops in listing]
    assert ("mov", "ecx, 2") in [(m, ops) for _, m, ops in listing]
    assert stub.data == bytes(range(16))
    assert listing[-1][1] == "jmp"
    assert any(a + 1 == stub.trap and m == "int3" for a, m, _ in listing)


def test_the_stub_compares_the_watched_words_first() -> None:
    watched = struct.pack("<4Q", 0x601000, 7, 0x601008, 9)
    stub = build_stub(STUB, window_at(bytes.fromhex("48c745f000000000") + PAD, SITE),
                      wanted(), ["rdx"], bytes(range(16)), watched)
    listing = disassemble(stub.code, STUB)
    assert stub.data == bytes(range(16)) + struct.pack("<2Q", 7, 9)  # after the stack words
    first = next(i for i, (_, m, _) in enumerate(listing) if m == "cmp")
    for pair, (address, value_slot) in enumerate([(0x601000, STUB + 0x1000 + 64 + 16),
                                                  (0x601008, STUB + 0x1000 + 64 + 24)]):
        load, deref, (at, mnemonic, operands), jump = listing[first - 2 + 4 * pair:][:4]
        assert (load[1], load[2]) == ("movabs", f"rax, {address:#x}")
        assert (deref[1], deref[2]) == ("mov", "rax, qword ptr [rax]")
        assert mnemonic == "cmp" and operands.startswith("rax, qword ptr [rip + ")
        assert at + 7 + int(operands.split("+ ")[1].rstrip("]"), 16) == value_slot
        assert jump[1] == "jne"
    # then the registers, the changing one first, then the stack words
    assert listing[first + 7][2] == "rdx, rax"
