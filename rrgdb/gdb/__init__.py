"""rrgdb.gdb: the GDB Remote Serial Protocol side of rrgdb.

`protocol` is the sans-IO core (bytes ⇄ typed requests and replies), `requests` and
`replies` the typed packets, `target_description` the x86-64 register layout and XML."""

from rrgdb.gdb import replies, requests
from rrgdb.gdb.protocol import PACKET_SIZE, Connection, Event, Interrupt, ProtocolError
from rrgdb.gdb.target_description import RegisterLayout, host_has_avx

__all__ = [
    "PACKET_SIZE",
    "Connection",
    "Event",
    "Interrupt",
    "ProtocolError",
    "RegisterLayout",
    "host_has_avx",
    "replies",
    "requests",
]
