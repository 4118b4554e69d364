"""Packet readers: a table from packet name to a function that parses the rest of the
packet into a typed request, in the manner of h11's `_readers.py`.

A packet's name is its first character, except `b?` (two characters) and the q/Q/v
packets, whose name runs to the first `:`, `;` or `,`. A reader returns None for a
variant the stub does not implement (answered with the empty packet) and raises
`MalformedPacket` for bad syntax."""

from __future__ import annotations

import re
from collections.abc import Callable

from rrgdb.gdb import requests as rq
from rrgdb.gdb._wire import (
    MalformedPacket,
    hex_text,
    parse_hex_bytes,
    parse_hex_int,
    split_exact,
    unescape,
)

Reader = Callable[[bytes], rq.Request | None]

_NAME_END_RE = re.compile(rb"[:;,]")
_REGISTER_HEX_RE = re.compile(rb"(?:[0-9a-fA-F]{2}|xx)*")
_DECIMAL_RE = re.compile(rb"-?[0-9]{1,20}")


def parse_packet(payload: bytes) -> rq.Request:
    """Turn one packet body (framing and run-length encoding removed) into a request."""
    name, rest = _split_name(payload)
    reader = READERS.get(name)
    if reader is None:
        return rq.Unknown(payload)
    try:
        request = reader(rest)
    except MalformedPacket as error:
        return rq.Malformed(payload, str(error))
    return rq.Unknown(payload) if request is None else request


def _split_name(payload: bytes) -> tuple[bytes, bytes]:
    first = payload[:1]
    if first in (b"q", b"Q", b"v"):
        end = _NAME_END_RE.search(payload)
        cut = end.start() if end else len(payload)
    elif first == b"b":
        cut = 2
    else:
        cut = 1
    return payload[:cut], payload[cut:]


# -- field helpers ------------------------------------------------------------------


def parse_thread_id(text: bytes) -> rq.ThreadId:
    """`pPID.TID`, `pPID` (all its threads), or `TID`; each part hex, `-1` or `0`."""
    if text.startswith(b"p"):
        pid_text, dot, tid_text = text[1:].partition(b".")
        tid = _thread_number(tid_text) if dot else rq.ALL_THREADS
        return rq.ThreadId(_thread_number(pid_text), tid)
    return rq.ThreadId(None, _thread_number(text))


def _thread_number(text: bytes) -> int:
    return rq.ALL_THREADS if text == b"-1" else parse_hex_int(text)


def _ascii(text: bytes) -> str:
    if not text.isascii():
        raise MalformedPacket(f"non-ASCII name {bytes(text)[:40]!r}")
    return text.decode("ascii")


def _addr_length(text: bytes) -> tuple[int, int]:
    addr, length = split_exact(text, b",", 2)
    return parse_hex_int(addr), parse_hex_int(length)


def _after(prefix: bytes, text: bytes) -> bytes:
    if not text.startswith(prefix):
        raise MalformedPacket(f"expected {prefix!r} after the packet name")
    return text[len(prefix) :]


def _signal_set(text: bytes) -> frozenset[int]:
    return frozenset(parse_hex_int(s) for s in _after(b":", text).split(b";") if s)


def _read_catch_syscalls(rest: bytes) -> rq.Request:
    """`:0`, or `:1` then `;sysno` (hex) for each syscall to catch."""
    flag, *numbers = _after(b":", rest).split(b";")
    if flag == b"0" and not numbers:
        return rq.CatchSyscalls(False)
    if flag != b"1":
        raise MalformedPacket("QCatchSyscalls takes 0, or 1 and syscall numbers")
    return rq.CatchSyscalls(True, frozenset(parse_hex_int(n) for n in numbers))


def _no_arguments(request: rq.Request) -> Reader:
    def read(rest: bytes) -> rq.Request:
        if rest:
            raise MalformedPacket("this packet takes no arguments")
        return request

    return read


# -- readers ------------------------------------------------------------------------


def _read_write_registers(rest: bytes) -> rq.Request:
    if not _REGISTER_HEX_RE.fullmatch(rest):
        raise MalformedPacket("register data must be hex byte pairs")
    return rq.WriteRegisters(bytes(rest))


def _read_write_register(rest: bytes) -> rq.Request:
    number, value = split_exact(rest, b"=", 2)
    return rq.WriteRegister(parse_hex_int(number), parse_hex_bytes(value))


def _read_memory_write(rest: bytes, decode: Callable[[bytes], bytes]) -> rq.Request:
    where, data_text = split_exact(rest, b":", 2)
    addr, length = _addr_length(where)
    data = decode(data_text)
    if len(data) != length:
        raise MalformedPacket(f"length {length:#x} but {len(data):#x} bytes of data")
    return rq.WriteMemory(addr, data)


def _read_breakpoint(
    make: Callable[[rq.BreakpointKind, int, int], rq.Request],
) -> Reader:
    def read(rest: bytes) -> rq.Request | None:
        # Target-side conditions and commands (`;X…`) are not advertised; ignore them.
        kind, addr, size = split_exact(rest.partition(b";")[0], b",", 3)
        number = parse_hex_int(kind)
        if number > max(rq.BreakpointKind):
            return None
        return make(rq.BreakpointKind(number), parse_hex_int(addr), parse_hex_int(size))

    return read


def _read_resume(make: type[rq.Continue] | type[rq.Step], with_signal: bool) -> Reader:
    def read(rest: bytes) -> rq.Request:
        signal = None
        if with_signal:
            signal_text, _, rest = rest.partition(b";")
            signal = parse_hex_int(signal_text)
        addr = parse_hex_int(rest) if rest else None
        return make(signal=signal, addr=addr)

    return read


def _read_vcont_action(token: bytes) -> rq.VContAction:
    head, colon, thread_text = token.partition(b":")
    thread = parse_thread_id(thread_text) if colon else None
    letter, argument = _ascii(head[:1]), head[1:]
    if letter in ("c", "s", "t"):
        if argument:
            raise MalformedPacket(f"vCont action {letter} takes no argument")
        return rq.VContAction(letter, thread=thread)
    if letter in ("C", "S"):
        return rq.VContAction(letter, signal=parse_hex_int(argument), thread=thread)
    if letter == "r":
        start, end = _addr_length(argument)
        return rq.VContAction(letter, thread=thread, step_range=(start, end))
    raise MalformedPacket(f"unknown vCont action {bytes(head)!r}")


def _read_vcont(rest: bytes) -> rq.Request:
    tokens = _after(b";", rest).split(b";")
    return rq.VCont(tuple(_read_vcont_action(token) for token in tokens))


def _read_set_thread(rest: bytes) -> rq.Request:
    operation = rest[:1]
    if operation not in (b"g", b"c"):
        raise MalformedPacket(f"unknown H operation {bytes(operation)!r}")
    return rq.SetThread(operation.decode(), parse_thread_id(rest[1:]))


def _read_optional_pid(make: Callable[[int | None], rq.Request], separator: bytes) -> Reader:
    def read(rest: bytes) -> rq.Request:
        return make(parse_hex_int(_after(separator, rest)) if rest else None)

    return read


def _read_run(rest: bytes) -> rq.Request:
    filename, *arguments = _after(b";", rest).split(b";")
    return rq.Run(hex_text(filename), tuple(hex_text(a) for a in arguments))


def _read_supported(rest: bytes) -> rq.Request:
    if not rest:
        return rq.QuerySupported(())
    features = _after(b":", rest).split(b";")
    return rq.QuerySupported(tuple(_ascii(f) for f in features if f))


def _read_xfer(rest: bytes) -> rq.Request | None:
    obj, operation, remainder = split_exact(_after(b":", rest), b":", 3)
    if operation == b"read":
        annex, window = split_exact(remainder, b":", 2)
        offset, length = _addr_length(window)
        return rq.XferRead(_ascii(obj), _ascii(annex), offset, length)
    if operation == b"write":
        annex, offset, data = split_exact(remainder, b":", 3)
        return rq.XferWrite(_ascii(obj), _ascii(annex), parse_hex_int(offset), unescape(data))
    return None


def _read_get_tls_address(rest: bytes) -> rq.Request:
    thread, offset, load_module = split_exact(_after(b":", rest), b",", 3)
    return rq.GetTlsAddress(parse_thread_id(thread), parse_hex_int(offset),
                            parse_hex_int(load_module))


def _read_symbol(rest: bytes) -> rq.Request:
    value, name = split_exact(_after(b":", rest), b":", 2)
    return rq.QuerySymbol(parse_hex_int(value) if value else None, hex_text(name) if name else None)


def _read_monitor(rest: bytes) -> rq.Request:
    return rq.MonitorCommand(hex_text(_after(b",", rest)))


def _read_rr_command(rest: bytes) -> rq.Request:
    fields = _after(b":", rest).split(b":")
    if len(fields) < 2 or not fields[0] or not _DECIMAL_RE.fullmatch(fields[1]):
        raise MalformedPacket("qRRCmd needs a name and a decimal thread id")
    tid = int(fields[1])
    words = [_ascii(fields[0]), *(hex_text(argument) for argument in fields[2:])]
    return rq.MonitorCommand(" ".join(words), thread=None if tid < 0 else tid, rr_form=True)


def _read_search(rest: bytes) -> rq.Request:
    addr, length, pattern = split_exact(_after(b":memory:", rest), b";", 3)
    return rq.SearchMemory(parse_hex_int(addr), parse_hex_int(length), unescape(pattern))


def _read_non_stop(rest: bytes) -> rq.Request:
    mode = _after(b":", rest)
    if mode not in (b"0", b"1"):
        raise MalformedPacket("QNonStop takes 0 or 1")
    return rq.SetNonStop(mode == b"1")


def _read_file_open(arguments: bytes) -> rq.Request:
    path, flags, mode = split_exact(arguments, b",", 3)
    return rq.FileOpen(hex_text(path), parse_hex_int(flags), parse_hex_int(mode))


def _read_file_pread(arguments: bytes) -> rq.Request:
    fd, count, offset = split_exact(arguments, b",", 3)
    return rq.FilePread(parse_hex_int(fd), parse_hex_int(count), parse_hex_int(offset))


_FILE_READERS: dict[bytes, Reader] = {
    b"setfs": lambda a: rq.FileSetFs(parse_hex_int(a)),
    b"open": _read_file_open,
    b"pread": _read_file_pread,
    b"close": lambda a: rq.FileClose(parse_hex_int(a)),
    b"fstat": lambda a: rq.FileFstat(parse_hex_int(a)),
}


def _read_file(rest: bytes) -> rq.Request | None:
    operation, arguments = split_exact(_after(b":", rest), b":", 2)
    reader = _FILE_READERS.get(operation)
    return reader(arguments) if reader else None


READERS: dict[bytes, Reader] = {
    b"?": _no_arguments(rq.StopReason()),
    b"!": _no_arguments(rq.EnableExtendedMode()),
    b"g": _no_arguments(rq.ReadRegisters()),
    b"G": _read_write_registers,
    b"p": lambda rest: rq.ReadRegister(parse_hex_int(rest)),
    b"P": _read_write_register,
    b"m": lambda rest: rq.ReadMemory(*_addr_length(rest)),
    b"x": lambda rest: rq.ReadMemory(*_addr_length(rest), binary=True),
    b"M": lambda rest: _read_memory_write(rest, parse_hex_bytes),
    b"X": lambda rest: _read_memory_write(rest, unescape),
    b"Z": _read_breakpoint(rq.InsertBreakpoint),
    b"z": _read_breakpoint(rq.RemoveBreakpoint),
    b"c": _read_resume(rq.Continue, with_signal=False),
    b"C": _read_resume(rq.Continue, with_signal=True),
    b"s": _read_resume(rq.Step, with_signal=False),
    b"S": _read_resume(rq.Step, with_signal=True),
    b"bc": _no_arguments(rq.ReverseContinue()),
    b"bs": _no_arguments(rq.ReverseStep()),
    b"H": _read_set_thread,
    b"T": lambda rest: rq.ThreadAlive(parse_thread_id(rest)),
    b"k": _no_arguments(rq.Kill()),
    b"D": _read_optional_pid(rq.Detach, b";"),
    b"qSupported": _read_supported,
    b"qC": _no_arguments(rq.QueryCurrentThread()),
    b"qfThreadInfo": _no_arguments(rq.ThreadInfoFirst()),
    b"qsThreadInfo": _no_arguments(rq.ThreadInfoNext()),
    b"qThreadExtraInfo": lambda rest: rq.ThreadExtraInfo(parse_thread_id(_after(b",", rest))),
    b"qAttached": _read_optional_pid(rq.QueryAttached, b":"),
    b"qGetTLSAddr": _read_get_tls_address,
    b"qSymbol": _read_symbol,
    b"qOffsets": _no_arguments(rq.QueryOffsets()),
    b"qTStatus": _no_arguments(rq.QueryTraceStatus()),
    b"qXfer": _read_xfer,
    b"qRcmd": _read_monitor,
    b"qRRCmd": _read_rr_command,
    b"qSearch": _read_search,
    b"QStartNoAckMode": _no_arguments(rq.StartNoAckMode()),
    b"QNonStop": _read_non_stop,
    b"QPassSignals": lambda rest: rq.PassSignals(_signal_set(rest)),
    b"QProgramSignals": lambda rest: rq.ProgramSignals(_signal_set(rest)),
    b"QCatchSyscalls": _read_catch_syscalls,
    b"vMustReplyEmpty": _no_arguments(rq.MustReplyEmpty()),
    b"vCont?": _no_arguments(rq.VContQuery()),
    b"vCont": _read_vcont,
    b"vRun": _read_run,
    b"vKill": lambda rest: rq.KillProcess(parse_hex_int(_after(b";", rest))),
    b"vFile": _read_file,
}
