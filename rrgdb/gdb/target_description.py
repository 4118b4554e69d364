"""The x86-64 GNU/Linux target description gdb reads with qXfer:features:read, and the
register layout it implies for g/G/p/P, both generated from one register table.

Register values come from three sources: the 27-word `user_regs_struct`, the 512-byte
FXSAVE legacy region at the start of the XSAVE area, and the XSAVE AVX component (upper
halves of ymm0-15 at offset 576, zero when XSTATE_BV says the component is in its init
state). Registers whose source bytes are missing are sent as `xx` (unavailable)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

USER_REGS_SIZE = 27 * 8
FXSAVE_SIZE = 512
_XSTATE_BV_OFFSET = 512
_XSTATE_AVX_BIT = 1 << 2
_AVX_OFFSET = 576

# The fields of struct user_regs_struct (<sys/user.h>), in order.
USER_REGS_FIELDS = (
    "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip "
    "cs eflags rsp ss fs_base gs_base ds es fs gs"
).split()


class RegisterSource(enum.Enum):
    """Where a register's bytes live in the engine's register state."""

    USER_REGS = "user_regs"
    FXSAVE = "fxsave"
    XSAVE_AVX = "xsave_avx"


@dataclass(frozen=True, slots=True)
class Register:
    """One gdb register: its number, XML attributes and where its value comes from."""

    number: int
    name: str
    bitsize: int
    type: str
    feature: str
    source: RegisterSource
    offset: int
    source_size: int
    group: str | None = None

    @property
    def size(self) -> int:
        """Size in bytes in the g/p packets."""
        return self.bitsize // 8


@dataclass(frozen=True, slots=True)
class _Feature:
    annex: str
    name: str
    types: str


_CORE = _Feature(
    "64bit-core.xml",
    "org.gnu.gdb.i386.core",
    """  <flags id="i386_eflags" size="4">
    <field name="CF" start="0" end="0"/>
    <field name="" start="1" end="1"/>
    <field name="PF" start="2" end="2"/>
    <field name="AF" start="4" end="4"/>
    <field name="ZF" start="6" end="6"/>
    <field name="SF" start="7" end="7"/>
    <field name="TF" start="8" end="8"/>
    <field name="IF" start="9" end="9"/>
    <field name="DF" start="10" end="10"/>
    <field name="OF" start="11" end="11"/>
    <field name="NT" start="14" end="14"/>
    <field name="RF" start="16" end="16"/>
    <field name="VM" start="17" end="17"/>
    <field name="AC" start="18" end="18"/>
    <field name="VIF" start="19" end="19"/>
    <field name="VIP" start="20" end="20"/>
    <field name="ID" start="21" end="21"/>
  </flags>
""",
)
# No bfloat16 fields: gdb before 12 rejects them and then refuses the whole description.
_SSE = _Feature(
    "64bit-sse.xml",
    "org.gnu.gdb.i386.sse",
    """  <vector id="v4f" type="ieee_single" count="4"/>
  <vector id="v2d" type="ieee_double" count="2"/>
  <vector id="v16i8" type="int8" count="16"/>
  <vector id="v8i16" type="int16" count="8"/>
  <vector id="v4i32" type="int32" count="4"/>
  <vector id="v2i64" type="int64" count="2"/>
  <union id="vec128">
    <field name="v4_float" type="v4f"/>
    <field name="v2_double" type="v2d"/>
    <field name="v16_int8" type="v16i8"/>
    <field name="v8_int16" type="v8i16"/>
    <field name="v4_int32" type="v4i32"/>
    <field name="v2_int64" type="v2i64"/>
    <field name="uint128" type="uint128"/>
  </union>
  <flags id="i386_mxcsr" size="4">
    <field name="IE" start="0" end="0"/>
    <field name="DE" start="1" end="1"/>
    <field name="ZE" start="2" end="2"/>
    <field name="OE" start="3" end="3"/>
    <field name="UE" start="4" end="4"/>
    <field name="PE" start="5" end="5"/>
    <field name="DAZ" start="6" end="6"/>
    <field name="IM" start="7" end="7"/>
    <field name="DM" start="8" end="8"/>
    <field name="ZM" start="9" end="9"/>
    <field name="OM" start="10" end="10"/>
    <field name="UM" start="11" end="11"/>
    <field name="PM" start="12" end="12"/>
    <field name="FZ" start="15" end="15"/>
  </flags>
""",
)
_LINUX = _Feature("64bit-linux.xml", "org.gnu.gdb.i386.linux", "")
_SEGMENTS = _Feature("64bit-segments.xml", "org.gnu.gdb.i386.segments", "")
_AVX = _Feature("64bit-avx.xml", "org.gnu.gdb.i386.avx", "")


def _register_rows(avx: bool) -> list[tuple[str, int, str, _Feature, RegisterSource, int, int]]:
    """(name, bitsize, type, feature, source, offset, source size), in gdb's order."""
    user = RegisterSource.USER_REGS
    fx = RegisterSource.FXSAVE

    def from_user(name: str, bitsize: int, type_: str, feature: _Feature = _CORE) -> tuple:
        return (name, bitsize, type_, feature, user, USER_REGS_FIELDS.index(name) * 8, 8)

    rows = [from_user(n, 64, "int64") for n in "rax rbx rcx rdx rsi rdi".split()]
    rows += [from_user("rbp", 64, "data_ptr"), from_user("rsp", 64, "data_ptr")]
    rows += [from_user(f"r{i}", 64, "int64") for i in range(8, 16)]
    rows += [from_user("rip", 64, "code_ptr"), from_user("eflags", 32, "i386_eflags")]
    rows += [from_user(n, 32, "int32") for n in "cs ss ds es fs gs".split()]
    rows += [(f"st{i}", 80, "i387_ext", _CORE, fx, 32 + 16 * i, 10) for i in range(8)]
    x87_control = [("fctrl", 0, 2), ("fstat", 2, 2), ("ftag", 4, 1), ("fiseg", 12, 2)]
    x87_control += [("fioff", 8, 4), ("foseg", 20, 2), ("fooff", 16, 4), ("fop", 6, 2)]
    rows += [(name, 32, "int", _CORE, fx, off, size) for name, off, size in x87_control]
    rows += [(f"xmm{i}", 128, "vec128", _SSE, fx, 160 + 16 * i, 16) for i in range(16)]
    rows += [("mxcsr", 32, "i386_mxcsr", _SSE, fx, 24, 4)]
    rows += [from_user("orig_rax", 64, "int", _LINUX)]
    rows += [from_user(n, 64, "int", _SEGMENTS) for n in ("fs_base", "gs_base")]
    if avx:
        avx_source = RegisterSource.XSAVE_AVX
        rows += [
            (f"ymm{i}h", 128, "uint128", _AVX, avx_source, _AVX_OFFSET + 16 * i, 16)
            for i in range(16)
        ]
    return rows


_GROUPS = {"fctrl": "float", "fstat": "float", "ftag": "float", "fiseg": "float",
           "fioff": "float", "foseg": "float", "fooff": "float", "fop": "float",
           "mxcsr": "vector", "orig_rax": "system"}  # fmt: skip


class RegisterLayout:
    """The registers gdb sees, their order in `g` packets, and the XML describing them."""

    def __init__(self, avx: bool) -> None:
        self.avx = avx
        self.registers = tuple(
            Register(number, name, bits, type_, feature.annex, source, offset, size,
                     _GROUPS.get(name))
            for number, (name, bits, type_, feature, source, offset, size)
            in enumerate(_register_rows(avx))
        )  # fmt: skip
        self._features = [_CORE, _SSE, _LINUX, _SEGMENTS] + ([_AVX] if avx else [])

    @property
    def g_size(self) -> int:
        """Bytes in a full register dump (hex characters in a `g` reply = twice this)."""
        return sum(r.size for r in self.registers)

    def register(self, number: int) -> Register | None:
        """The register gdb calls `number`, if there is one."""
        return self.registers[number] if 0 <= number < len(self.registers) else None

    # -- reading --------------------------------------------------------------------

    def encode_g(self, user_regs: bytes, xsave: bytes) -> bytes:
        """The `g` reply payload: every register as hex, `xx` for unavailable bytes."""
        _check_user_regs(user_regs)
        return b"".join(_encode_one(r, user_regs, xsave) for r in self.registers)

    def encode_p(self, number: int, user_regs: bytes, xsave: bytes) -> bytes | None:
        """The `p` reply payload for register `number`, or None if there is none."""
        _check_user_regs(user_regs)
        register = self.register(number)
        return None if register is None else _encode_one(register, user_regs, xsave)

    # -- writing ----------------------------------------------------------------------

    def decode_g(self, data: bytes, user_regs: bytes, xsave: bytes) -> tuple[bytes, bytes]:
        """Apply a `G` packet's hex data; registers sent as `xx` or cut off keep their value."""
        _check_user_regs(user_regs)
        state = (bytearray(user_regs), bytearray(xsave))
        position = 0
        for register in self.registers:
            chunk = data[position : position + 2 * register.size]
            position += 2 * register.size
            if len(chunk) == 2 * register.size and b"x" not in chunk:
                _store(register, bytes.fromhex(chunk.decode("ascii")), state)
        return bytes(state[0]), bytes(state[1])

    def decode_p(
        self, number: int, value: bytes, user_regs: bytes, xsave: bytes
    ) -> tuple[bytes, bytes]:
        """Apply a `P` write of raw little-endian `value` to register `number`."""
        _check_user_regs(user_regs)
        register = self.register(number)
        if register is None or len(value) != register.size:
            raise ValueError(f"no {len(value)}-byte register number {number}")
        state = (bytearray(user_regs), bytearray(xsave))
        _store(register, value, state)
        return bytes(state[0]), bytes(state[1])

    # -- XML ---------------------------------------------------------------------------

    def feature_documents(self) -> dict[str, bytes]:
        """Annex name → XML document: `target.xml` and the feature files it includes."""
        includes = "".join(f'<xi:include href="{f.annex}"/>\n' for f in self._features)
        documents = {
            "target.xml": (
                '<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n'
                "<target>\n<architecture>i386:x86-64</architecture>\n"
                f"<osabi>GNU/Linux</osabi>\n{includes}</target>\n"
            ).encode()
        }
        for feature in self._features:
            regs = "".join(_reg_element(r) for r in self.registers if r.feature == feature.annex)
            documents[feature.annex] = (
                '<?xml version="1.0"?>\n<!DOCTYPE feature SYSTEM "gdb-target.dtd">\n'
                f'<feature name="{feature.name}">\n{feature.types}{regs}</feature>\n'
            ).encode()
        return documents


def host_has_avx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this machine's CPU and kernel expose AVX state (flags avx and xsave)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return {"avx", "xsave"} <= flags
    return False


def _reg_element(register: Register) -> str:
    group = f' group="{register.group}"' if register.group else ""
    return (
        f'  <reg name="{register.name}" bitsize="{register.bitsize}" type="{register.type}"'
        f'{group} regnum="{register.number}"/>\n'
    )


def _check_user_regs(user_regs: bytes) -> None:
    if len(user_regs) != USER_REGS_SIZE:
        raise ValueError(f"user_regs_struct is {USER_REGS_SIZE} bytes, got {len(user_regs)}")


def _encode_one(register: Register, user_regs: bytes, xsave: bytes) -> bytes:
    value = _load(register, user_regs, xsave)
    return b"xx" * register.size if value is None else value.hex().encode()


def _source_blob(register: Register, user_regs: bytes, xsave: bytes) -> bytes | None:
    """The bytes holding `register`, or None if the engine did not supply them."""
    if register.source is RegisterSource.USER_REGS:
        return user_regs
    if len(xsave) < max(FXSAVE_SIZE, register.offset + register.source_size):
        return None
    return xsave


def _load(register: Register, user_regs: bytes, xsave: bytes) -> bytes | None:
    blob = _source_blob(register, user_regs, xsave)
    if blob is None:
        return None
    end = register.offset + register.source_size
    if register.source is RegisterSource.XSAVE_AVX and not _avx_in_use(xsave):
        return bytes(register.size)
    special = _SPECIAL_LOADS.get(register.name)
    raw = special(xsave) if special else blob[register.offset : end]
    return raw[: register.size].ljust(register.size, b"\0")


def _store(register: Register, value: bytes, state: tuple[bytearray, bytearray]) -> None:
    user_regs, xsave = state
    blob = _source_blob(register, user_regs, xsave)
    if blob is None:
        return  # the engine has no such state; like gdbserver, drop the write
    end = register.offset + register.source_size
    special = _SPECIAL_STORES.get(register.name)
    raw = special(value) if special else value[: register.source_size]
    blob[register.offset : end] = raw.ljust(register.source_size, b"\0")
    if register.source is RegisterSource.XSAVE_AVX:
        bv = int.from_bytes(xsave[_XSTATE_BV_OFFSET : _XSTATE_BV_OFFSET + 8], "little")
        xsave[_XSTATE_BV_OFFSET : _XSTATE_BV_OFFSET + 8] = (bv | _XSTATE_AVX_BIT).to_bytes(
            8, "little"
        )


def _avx_in_use(xsave: bytes) -> bool:
    bv = int.from_bytes(xsave[_XSTATE_BV_OFFSET : _XSTATE_BV_OFFSET + 8], "little")
    return bool(bv & _XSTATE_AVX_BIT)


# -- x87 tag word: FXSAVE keeps an abridged form (one "not empty" bit per physical
# register); gdb wants the full form (two bits each: valid, zero, special, empty), which
# gdbserver derives from the register contents exactly like this.


def _full_tag_word(fxsave: bytes) -> bytes:
    abridged = fxsave[4]
    top = (int.from_bytes(fxsave[2:4], "little") >> 11) & 7
    full = 0
    for physical in range(8):
        if abridged & (1 << physical):
            st = (physical - top) % 8
            tag = _x87_tag(fxsave[32 + 16 * st : 32 + 16 * st + 10])
        else:
            tag = 3  # empty
        full |= tag << (2 * physical)
    return full.to_bytes(2, "little")


def _x87_tag(raw: bytes) -> int:
    exponent = int.from_bytes(raw[8:10], "little") & 0x7FFF
    integer_bit = raw[7] & 0x80
    fraction_zero = int.from_bytes(raw[0:8], "little") & ((1 << 63) - 1) == 0
    if exponent == 0x7FFF:
        return 2  # special
    if exponent == 0:
        return 1 if fraction_zero and not integer_bit else 2  # zero, or denormal
    return 0 if integer_bit else 2  # valid, or unnormal


def _abridged_tag_word(value: bytes) -> bytes:
    full = int.from_bytes(value, "little")
    abridged = sum(1 << i for i in range(8) if (full >> (2 * i)) & 3 != 3)
    return bytes((abridged,))


def _fop(fxsave: bytes) -> bytes:
    return (int.from_bytes(fxsave[6:8], "little") & 0x7FF).to_bytes(2, "little")


_SPECIAL_LOADS: dict[str, Callable[[bytes], bytes]] = {"ftag": _full_tag_word, "fop": _fop}
_SPECIAL_STORES: dict[str, Callable[[bytes], bytes]] = {
    "ftag": _abridged_tag_word,
    "fop": lambda value: (int.from_bytes(value, "little") & 0x7FF).to_bytes(2, "little"),
}
