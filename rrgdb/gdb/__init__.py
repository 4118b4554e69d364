"""rrgdb.gdb: the GDB Remote Serial Protocol side of rrgdb.

`protocol` is the sans-IO core (bytes ⇄ typed requests and replies), `requests` and
`replies` the typed packets, `target_description` the x86-64 register layout and XML,
`target` the DebugTarget interface the engine implements, `dispatch` the pure
request → target → reply layer, and `server` the trio transport."""

from rrgdb.gdb import replies, requests
from rrgdb.gdb.dispatch import Dispatcher
from rrgdb.gdb.protocol import PACKET_SIZE, Connection, Event, Interrupt, ProtocolError
from rrgdb.gdb.server import serve
from rrgdb.gdb.target import DebugTarget, Direction, RegisterState, ResumeAction, StopEvent
from rrgdb.gdb.target_description import RegisterLayout, host_has_avx

__all__ = [
    "PACKET_SIZE",
    "Connection",
    "DebugTarget",
    "Direction",
    "Dispatcher",
    "Event",
    "Interrupt",
    "ProtocolError",
    "RegisterLayout",
    "RegisterState",
    "ResumeAction",
    "StopEvent",
    "host_has_avx",
    "replies",
    "requests",
    "serve",
]
