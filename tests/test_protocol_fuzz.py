"""Hypothesis fuzzing of the sans-IO layer: arbitrary input never raises anything but
ProtocolError, and the encodings round-trip."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rrgdb.gdb import replies as rp
from rrgdb.gdb import requests as rq
from rrgdb.gdb._readers import READERS, parse_packet, parse_thread_id
from rrgdb.gdb._wire import escape, frame, rle_decode, rle_encode, unescape
from rrgdb.gdb.protocol import Connection, Interrupt, ProtocolError
from rrgdb.gdb.target_description import USER_REGS_SIZE, RegisterLayout

# Bodies built from packet names and the characters packets are made of find far more
# parser paths than uniformly random bytes.
_NAMES = [name.decode() for name in READERS] + ["qXfer:features:read:", "vFile:open:"]
_PIECES = st.sampled_from(
    _NAMES + list("0123456789abcdefABCDEFxp-.,:;=}*#$\x03+ ") + ["-1", "p1.2", "\xff"]
)
packet_bodies = st.one_of(
    st.binary(max_size=64),
    st.lists(_PIECES, max_size=12).map(lambda parts: "".join(parts).encode("latin-1")),
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


@settings(max_examples=500)
@given(st.lists(st.one_of(st.binary(max_size=40), packet_bodies.map(frame)), max_size=8))
def test_arbitrary_streams_raise_only_protocol_error(pieces: list[bytes]) -> None:
    for ack_mode in (True, False):
        conn = Connection(max_packet_bytes=256)
        if not ack_mode:
            conn.receive_data(frame(b"QStartNoAckMode"))
            conn.send(rp.OK)
        try:
            for piece in pieces:
                for event in conn.receive_data(piece):
                    assert isinstance(event, rq.Request | Interrupt)
                conn.data_to_send()
        except ProtocolError:
            pass


@settings(max_examples=1000)
@given(packet_bodies)
def test_arbitrary_bodies_parse_to_a_request(body: bytes) -> None:
    request = parse_packet(body)
    assert isinstance(request, rq.Request)
    hash(request)


@settings(max_examples=300)
@given(packet_bodies.filter(lambda b: b"$" not in b and b"#" not in b), st.lists(st.integers()))
def test_framed_body_gives_exactly_one_request_however_it_is_split(
    body: bytes, cuts: list[int]
) -> None:
    conn = Connection()
    events = []
    for chunk in _chunks(frame(body), cuts):
        events += conn.receive_data(chunk)
    assert len(events) == 1 and isinstance(events[0], rq.Request)
    assert conn.data_to_send() == b"+"


@settings(max_examples=300)
@given(st.lists(st.sampled_from([b"g", b"?", b"m10,4", b"vCont;c:p1.-1", b"bs"]), max_size=6),
       st.lists(st.integers()))  # fmt: skip
def test_stream_splitting_does_not_change_events(bodies: list[bytes], cuts: list[int]) -> None:
    wire = b"+".join(frame(b) for b in bodies) + b"\x03"
    whole = Connection().receive_data(wire)
    conn = Connection()
    split = [e for chunk in _chunks(wire, cuts) for e in conn.receive_data(chunk)]
    assert split == whole
    assert len(whole) == len(bodies) + 1


@given(st.binary())
def test_escape_round_trip(data: bytes) -> None:
    escaped = escape(data)
    assert not set(escaped) & set(b"#$*")
    assert unescape(escaped) == data


@given(st.binary())
def test_rle_round_trip_on_escaped_data(data: bytes) -> None:
    escaped = escape(data)
    encoded = rle_encode(escaped)
    assert b"#" not in encoded and b"$" not in encoded
    assert rle_decode(encoded) == escaped


@given(st.binary(max_size=200))
def test_binary_write_round_trip_through_the_connection(data: bytes) -> None:
    body = b"X1000,%x:" % len(data) + rle_encode(escape(data))
    assert Connection().receive_data(frame(body)) == [rq.WriteMemory(0x1000, data)]


_thread_numbers = st.one_of(st.just(-1), st.integers(0, 2**32))


@given(st.one_of(st.none(), _thread_numbers), _thread_numbers)
def test_thread_id_round_trip(pid: int | None, tid: int) -> None:
    thread = rq.ThreadId(pid, tid)
    dialect = rp.Dialect(multiprocess=True)
    assert parse_thread_id(rp.format_thread_id(thread, dialect)) == thread


@given(
    st.binary(min_size=USER_REGS_SIZE, max_size=USER_REGS_SIZE),
    st.binary(min_size=832, max_size=832),
)
def test_register_encoding_is_stable_through_a_write(user_regs: bytes, xsave: bytes) -> None:
    layout = RegisterLayout(avx=True)
    g = layout.encode_g(user_regs, xsave)
    assert layout.encode_g(*layout.decode_g(g, user_regs, xsave)) == g
    assert layout.encode_g(*layout.decode_g(g, bytes(USER_REGS_SIZE), bytes(832))) == g
