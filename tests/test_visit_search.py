"""kernel/visit_search.py: which instructions a jump may replace, how they are moved into
a stub so that they do the same there (capstone decodes the result back), where the
status flags may be set, and a stub running in a real traced loop (also tested by
test_threads, threads_compute)."""

from __future__ import annotations

import signal
import struct
from collections.abc import Callable
from pathlib import Path

from capstone import CS_ARCH_X86, CS_MODE_64, Cs
from conftest import traced_at_label

from rrgdb import native
from rrgdb.kernel.registers import NAMES, Registers
from rrgdb.kernel.remote_syscalls import map_scratch_page
from rrgdb.kernel.visit_search import (
    CF,
    STACK_BELOW,
    STATUS_FLAGS,
    ZF,
    build_stub,
    flags_dead,
    open_search,
    read_stack,
    window_at,
)

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


def code_at_site(code: bytes) -> Callable[[int], bytes | None]:
    """flags_dead's reader of code placed at SITE (None elsewhere)."""
    return lambda pc: code[pc - SITE:] + PAD if SITE <= pc < SITE + len(code) else None


# a load, an add and a store of a count on the stack, then a jump back (gcc -O2 of a
# volatile local's n++ loop)
STACK_COUNTER = bytes.fromhex("488b442408" "4883c001" "4889442408" "ebf2")


def test_the_flags_are_dead_where_an_add_sets_them_before_any_read() -> None:
    assert flags_dead(code_at_site(STACK_COUNTER), SITE + 9)  # at the store
    assert flags_dead(code_at_site(STACK_COUNTER), SITE)  # at the load
    # add; store; jne back: at the store the jne reads the add's ZF
    assert not flags_dead(code_at_site(bytes.fromhex("4883c001" "4889442408" "75f5")), SITE + 4)


def test_the_flags_are_followed_per_flag_round_loops_and_both_ways() -> None:
    # store; dec %ecx (all but CF); jne back (ZF); then cmp (all): CF is set on the way out
    loop = bytes.fromhex("4889442408" "ffc9" "75f7" "4883f801" "c3")
    assert flags_dead(code_at_site(loop), SITE)
    # the same with jb (CF, which dec leaves as it was) instead of jne
    assert not flags_dead(code_at_site(loop[:7] + b"\x72" + loop[8:]), SITE)


def test_unknown_instructions_and_changing_code_count_as_reads() -> None:
    call = bytes.fromhex("4889442408" "e800000000" "4883c001")
    assert not flags_dead(code_at_site(call), SITE)  # a call: who knows what it reads
    assert not flags_dead(code_at_site(bytes.fromhex("4889442408" "0f94c0")), SITE)  # sete
    assert not flags_dead(lambda pc: None, SITE)  # writable code: it may change


def test_where_the_flags_are_dead_one_cmp_tells_most_visits_apart() -> None:
    window = window_at(STACK_COUNTER[9:] + PAD, SITE + 9)
    regs = wanted()
    regs.rsp = 0x7FFFFFFFE610
    counter = regs.rsp + 8
    stack = bytes(STACK_BELOW + 64)
    watched = struct.pack("<2Q", counter, 0x11B4DE53A)
    stub = build_stub(STUB, window, regs, ["rax"], stack, watched, may_set_flags=True)
    listing = disassemble(stub.code, STUB)
    # no register saved: a cmp of the count's low half from rsp, on to the candidate
    # path (the full comparison) if equal, else straight to the moved store and back
    assert listing[0][1:] == ("cmp", "dword ptr [rsp + 8], 0x1b4de53a")
    assert listing[1][1] == "je" and stub.sets_flags
    assert listing[2] == (stub.resume, "mov", "qword ptr [rsp + 8], rax")
    assert listing[3][1:] == ("jmp", f"{SITE + 14:#x}")
    candidate = int(listing[1][2], 16)
    assert candidate == listing[4][0] and listing[4][2].startswith("qword ptr [rip + ")
    assert listing[-1][1:] == ("jmp", f"{stub.resume:#x}")  # a visit that differs after all
    # a global near the code, rip-relative; else the first changing register
    near = SITE + 0x2E38
    stub = build_stub(STUB, window, regs, ["rax"], stack, struct.pack("<2Q", near, 5),
                      may_set_flags=True)
    at, mnemonic, operands = disassemble(stub.code, STUB)[0]
    assert mnemonic == "cmp" and operands.endswith(", 5")
    assert at + 10 + int(operands.split("rip + ")[1].split("]")[0], 16) == near
    stub = build_stub(STUB, window, regs, ["rdx"], stack, b"", may_set_flags=True)
    assert disassemble(stub.code, STUB)[0][1:] == ("cmp", f"edx, {regs.rdx:#x}")
    # a stack word far above rsp is not read from rsp (at another rsp, that could be
    # past the top of a signal's alternate stack), nor a register compared instead
    # (where words are watched, the registers come back at many turns): as before
    far = struct.pack("<2Q", regs.rsp + 1024, 5)
    stub = build_stub(STUB, window, regs, ["rdx"], bytes(STACK_BELOW + 2048), far,
                      may_set_flags=True)
    assert disassemble(stub.code, STUB)[0][1] == "mov" and not stub.sets_flags
    # where they are live, the stub saves them first, as before
    stub = build_stub(STUB, window, regs, ["rax"], stack, watched)
    assert disassemble(stub.code, STUB)[0][1] == "mov" and not stub.sets_flags


def test_a_visit_that_differs_passes_the_stub_in_five_instructions(tmp_path: Path) -> None:
    """tests/programs/stack_counter_loop.c, stopped at its store (the count of turns on the
    stack, rax one more): a search for the visit 1000 turns on. Behind the full
    comparison a turn ran 15 instructions of the stub, saving and restoring rax and the
    flags (such a loop replayed 9x slower than it ran); now 5 (jmp, cmp, je, the store,
    jmp back), and the stub still traps at the very visit."""
    with traced_at_label("stack_counter_loop", tmp_path) as task:
        map_scratch_page(task, replay=True)  # (where the search's mmap is injected)
        now = task.regs()
        counter = now.rsp + 8
        wanted = now.copy()
        wanted.rax = now.rax + 1000
        stack = bytearray(read_stack(task, now))
        stack[STACK_BELOW + 8:STACK_BELOW + 16] = struct.pack("<Q", wanted.rax - 1)
        search = open_search(task, now.rip, 5, wanted, ["rax"], bytes(stack),
                             struct.pack("<2Q", counter, wanted.rax - 1))
        assert search is not None and search.stub is not None and search.stub.sets_flags
        try:
            search.install()
            steps = 0
            while task.regs().rip != now.rip + 5:
                task.resume(native.PTRACE_SINGLESTEP)
                assert task.wait().signo == signal.SIGTRAP
                steps += 1
            assert steps == 5
            task.resume(native.PTRACE_CONT)
            assert task.wait().signo == signal.SIGTRAP
            trapped = task.regs()
            assert search.trapped(trapped)
            # the cmp left "equal" in the flags; the program's own (the add's: not zero)
            # are the recorded ones, as nothing reads them before the next add
            assert trapped.eflags & (ZF | CF) == ZF and not now.eflags & ZF
            at = search.program_registers(trapped, wanted)
            assert not at.differences(wanted), at.differences(wanted)
            assert at.eflags & STATUS_FLAGS == now.eflags & STATUS_FLAGS
            assert task.read_u64(counter) == wanted.rax - 1
        finally:
            search.close()
