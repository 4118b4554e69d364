"""The sans-IO core of the GDB Remote Serial Protocol, in the style of h11.

`Connection.receive_data(bytes)` turns whatever arrived from gdb into typed requests (and
`Interrupt` for the 0x03 byte); `Connection.send(reply)` turns a typed reply into the
bytes to write. The connection handles framing, checksums, `+`/`-` acknowledgements and
their retransmissions, `QStartNoAckMode`, run-length decoding and the features negotiated
in qSupported. It does no I/O and knows nothing of sockets, threads or event loops.

Peer misbehaviour the connection cannot recover from raises `ProtocolError`; arbitrary
input raises nothing else. Packets whose arguments are wrong are not errors here: they
become `Malformed` requests, which the stub answers with `E01`."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from rrgdb.gdb._readers import parse_packet
from rrgdb.gdb._wire import MalformedPacket, checksum, frame, rle_decode
from rrgdb.gdb.replies import OK, Dialect, Reply, Supported
from rrgdb.gdb.requests import Malformed, QuerySupported, Request, StartNoAckMode

PACKET_SIZE = 0x100000
"""The largest packet gdb may send us (advertised as `PacketSize`)."""

_INTERRUPT = 0x03
_NACK = 0x2D  # '-'
_MEANINGFUL_RE = re.compile(rb"[$\x03-]")  # outside packets, everything else is ignored
_CHECKSUM_RE = re.compile(rb"[0-9a-fA-F]{2}")


class ProtocolError(Exception):
    """The peer broke the protocol so badly that the connection cannot go on."""


@dataclass(frozen=True, slots=True)
class Interrupt:
    """gdb's out-of-band 0x03 byte: stop the running target and send its stop reply."""


Event = Request | Interrupt


class Connection:
    """The protocol state of one gdb connection (stub side).

    Call `receive_data` with each chunk read from the socket, then write
    `data_to_send()` (acks and retransmissions); answer every request whose
    `expects_reply` is true with exactly one `send(reply)`, in order."""

    def __init__(self, max_packet_bytes: int = 2 * PACKET_SIZE) -> None:
        self._buffer = bytearray()
        self._output = bytearray()
        self._max_packet_bytes = max_packet_bytes
        self._ack_mode = True
        self._last_sent: bytes | None = None
        self._awaiting: deque[Request] = deque()
        self._dialect = Dialect()
        self._failed = False

    @property
    def ack_mode(self) -> bool:
        """Whether packets are still acknowledged with `+`/`-`."""
        return self._ack_mode

    @property
    def dialect(self) -> Dialect:
        """The features negotiated in qSupported."""
        return self._dialect

    @property
    def awaiting_reply(self) -> Request | None:
        """The oldest request not yet answered, if any."""
        return self._awaiting[0] if self._awaiting else None

    def receive_data(self, data: bytes) -> list[Event]:
        """Consume bytes from gdb; return the complete requests and interrupts they hold."""
        if self._failed:
            raise ProtocolError("the connection already failed")
        self._buffer += data
        events: list[Event] = []
        try:
            while (event := self._next_event()) is not None:
                if event is not _NOTHING:
                    events.append(event)
        except ProtocolError:
            self._failed = True
            raise
        return events

    def data_to_send(self) -> bytes:
        """Bytes the protocol itself must write: acks and retransmitted replies."""
        output = bytes(self._output)
        self._output.clear()
        return output

    def send(self, reply: Reply) -> bytes:
        """The framed bytes of `reply`, which answers the oldest pending request
        (unless it is output sent while the target runs)."""
        framed = frame(reply.encode(self._dialect))
        if reply.completes_request:
            if not self._awaiting:
                raise RuntimeError(f"{reply!r} sent while no request awaits a reply")
            self._after_reply(self._awaiting.popleft(), reply)
        if self._ack_mode:
            self._last_sent = framed
        return framed

    def _after_reply(self, request: Request, reply: Reply) -> None:
        if isinstance(request, StartNoAckMode) and reply == OK:
            self._ack_mode = False
            self._last_sent = None
        elif isinstance(request, QuerySupported) and isinstance(reply, Supported):
            agreed = {
                f
                for f in ("multiprocess", "swbreak", "hwbreak", "exec-events")
                if request.offers(f) and reply.offers(f)
            }
            self._dialect = Dialect(
                multiprocess="multiprocess" in agreed,
                swbreak="swbreak" in agreed,
                hwbreak="hwbreak" in agreed,
                exec_events="exec-events" in agreed,
            )

    def _next_event(self) -> Event | _Nothing | None:
        """The next event in the buffer, `_NOTHING` if bytes were consumed without one,
        or None when more data is needed."""
        buffer = self._buffer
        marker = _MEANINGFUL_RE.search(buffer)
        if marker is None:
            buffer.clear()
            return None
        start = marker.start()
        kind = buffer[start]
        if kind == _INTERRUPT:
            del buffer[: start + 1]
            return Interrupt()
        if kind == _NACK:
            del buffer[: start + 1]
            if self._ack_mode and self._last_sent is not None:
                self._output += self._last_sent
            return _NOTHING
        del buffer[:start]
        end = buffer.find(b"#", 1)
        # A '$' before the end means the previous packet was cut short: start again there.
        restart = buffer.find(b"$", 1, end if end > 0 else len(buffer))
        if restart > 0:
            del buffer[:restart]
            return _NOTHING
        if end < 0:
            if len(buffer) > self._max_packet_bytes:
                raise ProtocolError(f"packet longer than {self._max_packet_bytes} bytes")
            return None
        if len(buffer) < end + 3:
            return None
        payload = bytes(buffer[1:end])
        check = bytes(buffer[end + 1 : end + 3])
        del buffer[: end + 3]
        return self._accept(payload, check)

    def _accept(self, payload: bytes, check: bytes) -> Request | _Nothing:
        if not _CHECKSUM_RE.fullmatch(check) or int(check, 16) != checksum(payload):
            if not self._ack_mode:
                raise ProtocolError(f"bad checksum {check!r} on {payload[:40]!r} in no-ack mode")
            self._output += b"-"
            return _NOTHING
        if self._ack_mode:
            self._output += b"+"
        try:
            request = parse_packet(rle_decode(payload))
        except MalformedPacket as error:
            request = Malformed(payload, str(error))
        if request.expects_reply:
            self._awaiting.append(request)
            # gdb has the previous reply: a '-' from now on is its timeout while it waits
            # for this one, and resending the previous reply would answer this request.
            self._last_sent = None
        return request


class _Nothing:
    """Marker: bytes were consumed but produced no event."""


_NOTHING = _Nothing()
