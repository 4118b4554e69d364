"""The x86-64 target description and the g/G/p/P register layout built from it."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rrgdb.gdb.target_description import (
    FXSAVE_SIZE,
    USER_REGS_FIELDS,
    RegisterLayout,
    RegisterSource,
    host_has_avx,
)

XSAVE_SIZE = 832  # legacy region, header, AVX component


def user_regs(**values: int) -> bytes:
    return struct.pack("<27Q", *(values.get(name, 0) for name in USER_REGS_FIELDS))


def fxsave(**fields: bytes) -> bytearray:
    area = bytearray(XSAVE_SIZE)
    offsets = {"fcw": 0, "fsw": 2, "ftw": 4, "fop": 6, "fip": 8, "fdp": 16, "mxcsr": 24}
    for name, value in fields.items():
        area[offsets[name] : offsets[name] + len(value)] = value
    return area


def g_fields(layout: RegisterLayout, g: bytes) -> dict[str, bytes]:
    fields, position = {}, 0
    for register in layout.registers:
        fields[register.name] = g[position : position + 2 * register.size]
        position += 2 * register.size
    assert position == len(g)
    return fields


@pytest.mark.parametrize(("avx", "size", "count"), [(False, 560, 60), (True, 816, 76)])
def test_g_packet_size_matches_gdb(avx: bool, size: int, count: int) -> None:
    layout = RegisterLayout(avx)
    assert layout.g_size == size
    assert len(layout.registers) == count
    assert len(layout.encode_g(user_regs(), bytes(XSAVE_SIZE))) == 2 * size


def test_register_numbers_follow_gdb() -> None:
    layout = RegisterLayout(avx=True)
    names = [r.name for r in layout.registers]
    assert names[:17] == (
        "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip".split()
    )
    assert names[17:24] == "eflags cs ss ds es fs gs".split()
    assert names[24] == "st0" and names[32] == "fctrl" and names[39] == "fop"
    assert names[40] == "xmm0" and names[56] == "mxcsr"
    assert names[57:60] == ["orig_rax", "fs_base", "gs_base"]
    assert names[60] == "ymm0h" and names[75] == "ymm15h"
    assert [r.number for r in layout.registers] == list(range(76))


def test_general_registers_come_from_user_regs() -> None:
    layout = RegisterLayout(avx=False)
    regs = user_regs(rax=0x1122334455667788, rip=0x555555555130, eflags=0x246, cs=0x33,
                     orig_rax=2**64 - 1, fs_base=0x7FFFF7D8A740, rsp=0x7FFFFFFFE680)  # fmt: skip
    fields = g_fields(layout, layout.encode_g(regs, bytes(FXSAVE_SIZE)))
    assert fields["rax"] == b"8877665544332211"
    assert fields["rip"] == b"3051555555550000"
    assert fields["eflags"] == b"46020000"
    assert fields["cs"] == b"33000000"
    assert fields["orig_rax"] == b"ff" * 8
    assert fields["fs_base"] == b"40a7d8f7ff7f0000"
    assert fields["rsp"] == b"80e6ffffff7f0000"


def test_x87_and_sse_come_from_fxsave() -> None:
    layout = RegisterLayout(avx=False)
    area = fxsave(fcw=b"\x7f\x03", fsw=b"\x00\x38", ftw=b"\x80", fop=b"\xff\xff",
                  fip=b"\x10\x20\x30\x40\x34\x12", fdp=b"\x01\x02\x03\x04\x78\x56",
                  mxcsr=b"\x80\x1f\x00\x00")  # fmt: skip
    # fld1: top = 7, physical register 7 in use, st0 = 1.0
    area[32:42] = bytes.fromhex("0000000000000080ff3f")
    area[160:176] = bytes(range(16))  # xmm0
    fields = g_fields(layout, layout.encode_g(user_regs(), bytes(area[:FXSAVE_SIZE])))
    assert fields["fctrl"] == b"7f030000"
    assert fields["fstat"] == b"00380000"
    assert fields["ftag"] == b"ff3f0000"  # physical 7 valid (00), the rest empty (11)
    assert fields["fop"] == b"ff070000"  # 11 bits
    assert fields["fioff"] == b"10203040"
    assert fields["fiseg"] == b"34120000"
    assert fields["fooff"] == b"01020304"
    assert fields["foseg"] == b"78560000"
    assert fields["mxcsr"] == b"801f0000"
    assert fields["st0"] == b"0000000000000080ff3f"
    assert fields["xmm0"] == bytes(range(16)).hex().encode()


@pytest.mark.parametrize(
    ("st0", "tag"),
    [
        ("0000000000000080ff3f", 0),  # 1.0: valid
        ("00000000000000000000", 1),  # +0: zero
        ("00000000000000c0ff7f", 2),  # NaN: special
        ("01000000000000000000", 2),  # denormal: special
        ("0000000000000000ff3f", 2),  # unnormal: special
    ],
)
def test_full_tag_word_classifies_the_top_register(st0: str, tag: int) -> None:
    layout = RegisterLayout(avx=False)
    area = fxsave(fsw=b"\x00\x38", ftw=b"\x80")
    area[32:42] = bytes.fromhex(st0)
    ftag = g_fields(layout, layout.encode_g(user_regs(), bytes(area)))["ftag"]
    assert int.from_bytes(bytes.fromhex(ftag.decode()), "little") == 0x3FFF | (tag << 14)


def test_empty_x87_stack_has_all_tags_empty() -> None:
    layout = RegisterLayout(avx=False)
    ftag = g_fields(layout, layout.encode_g(user_regs(), bytes(FXSAVE_SIZE)))["ftag"]
    assert ftag == b"ffff0000"


def test_avx_upper_halves_follow_xstate_bv() -> None:
    layout = RegisterLayout(avx=True)
    area = fxsave()
    area[576:592] = b"\xab" * 16  # ymm0h
    area[576 + 15 * 16 : 576 + 16 * 16] = b"\xcd" * 16  # ymm15h
    init_state = g_fields(layout, layout.encode_g(user_regs(), bytes(area)))
    assert init_state["ymm0h"] == b"00" * 16
    area[512] = 0b111  # XSTATE_BV: x87, SSE, AVX
    in_use = g_fields(layout, layout.encode_g(user_regs(), bytes(area)))
    assert in_use["ymm0h"] == b"ab" * 16
    assert in_use["ymm15h"] == b"cd" * 16


def test_missing_extended_state_is_unavailable() -> None:
    layout = RegisterLayout(avx=True)
    fields = g_fields(layout, layout.encode_g(user_regs(rip=1), b""))
    assert fields["st0"] == b"xx" * 10 and fields["xmm15"] == b"xx" * 16
    assert fields["ymm3h"] == b"xx" * 16
    assert fields["rip"] == b"0100000000000000"
    only_fxsave = g_fields(layout, layout.encode_g(user_regs(), bytes(FXSAVE_SIZE)))
    assert only_fxsave["xmm0"] == b"00" * 16 and only_fxsave["ymm0h"] == b"xx" * 16


def test_wrong_user_regs_size_is_a_bug() -> None:
    with pytest.raises(ValueError):
        RegisterLayout(avx=False).encode_g(bytes(100), b"")


def test_p_reads_one_register() -> None:
    layout = RegisterLayout(avx=True)
    regs = user_regs(rip=0x401000)
    assert layout.encode_p(16, regs, b"") == b"0010400000000000"
    assert layout.encode_p(40, regs, b"") == b"xx" * 16
    assert layout.encode_p(76, regs, b"") is None
    assert layout.encode_p(-1, regs, b"") is None


def test_lookup_gives_source_offset_and_size() -> None:
    layout = RegisterLayout(avx=True)
    rip = layout.register(16)
    assert (rip.source, rip.offset, rip.source_size, rip.size) == (
        RegisterSource.USER_REGS, 16 * 8, 8, 8,
    )  # fmt: skip
    xmm1 = layout.register(41)
    assert (xmm1.source, xmm1.offset, xmm1.size) == (RegisterSource.FXSAVE, 176, 16)
    ymm1h = layout.register(61)
    assert (ymm1h.source, ymm1h.offset) == (RegisterSource.XSAVE_AVX, 592)


def test_g_round_trip() -> None:
    layout = RegisterLayout(avx=True)
    regs = struct.pack("<27Q", *(i * 0x0101010101010101 for i in range(27)))
    area = bytearray(range(256)) * 3 + bytearray(XSAVE_SIZE - 768)
    area[512:520] = (0b111).to_bytes(8, "little")
    g = layout.encode_g(regs, bytes(area))
    new_regs, new_area = layout.decode_g(g, user_regs(), bytes(XSAVE_SIZE))
    assert layout.encode_g(new_regs, new_area) == g


def test_g_write_skips_unavailable_and_missing_registers() -> None:
    layout = RegisterLayout(avx=False)
    regs = user_regs(rax=5, rbx=6)
    g = b"xx" * 8 + b"0700000000000000"  # rax unavailable, rbx = 7, the rest cut off
    new_regs, _ = layout.decode_g(g, regs, b"")
    assert new_regs == user_regs(rax=5, rbx=7)


def test_p_write_updates_its_source() -> None:
    layout = RegisterLayout(avx=True)
    regs, area = layout.decode_p(
        17, b"\x46\x02\x00\x00", user_regs(eflags=2**64 - 1), bytes(XSAVE_SIZE)
    )
    assert regs == user_regs(eflags=0x246)
    _, area = layout.decode_p(34, b"\xff\x3f\x00\x00", regs, area)  # ftag: physical 7 valid
    assert area[4] == 0x80
    _, area = layout.decode_p(60, b"\x01" * 16, regs, area)  # ymm0h sets XSTATE_BV.AVX
    assert area[576:592] == b"\x01" * 16 and area[512] & 4
    with pytest.raises(ValueError):
        layout.decode_p(16, b"\x00", regs, area)


def test_feature_documents_are_well_formed_and_match_the_layout() -> None:
    layout = RegisterLayout(avx=True)
    documents = layout.feature_documents()
    target = documents["target.xml"].decode()
    assert "<architecture>i386:x86-64</architecture>" in target
    assert "<osabi>GNU/Linux</osabi>" in target
    includes = [line.split('"')[1] for line in target.splitlines() if "xi:include" in line]
    assert includes == ["64bit-core.xml", "64bit-sse.xml", "64bit-linux.xml",
                        "64bit-segments.xml", "64bit-avx.xml"]  # fmt: skip
    regs = []
    for annex in includes:
        feature = ET.fromstring(documents[annex])
        assert feature.get("name").startswith("org.gnu.gdb.i386.")
        regs += [
            (int(r.get("regnum")), r.get("name"), int(r.get("bitsize")))
            for r in feature.iter("reg")
        ]
    assert regs == [(r.number, r.name, r.bitsize) for r in layout.registers]


def test_without_avx_there_is_no_avx_feature() -> None:
    documents = RegisterLayout(avx=False).feature_documents()
    assert "64bit-avx.xml" not in documents
    assert b"avx" not in documents["target.xml"]


def test_host_has_avx(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 xsave avx avx2\n")
    assert host_has_avx(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu sse2\n")
    assert not host_has_avx(cpuinfo)
    assert not host_has_avx(tmp_path / "missing")
