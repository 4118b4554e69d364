"""The gdb server against hostile or careless clients, over a real replay.

* Hypothesis-generated packets (known names with random arguments) and random byte
  streams never stop the server: after each fuzz connection a well-formed handshake on a
  new connection still works, and the tracee of the fuzz connection is gone.
* Malformed packets get ``E`` replies and the connection goes on.
* A client that hangs up in the middle of a long ``c`` or reverse search leaves no
  tracee behind, and the server serves the next client.
* A second client is refused with a readable message while the first is connected.
* ^C (0x03) during a long continue returns a stop quickly.

Every test checks the server's children in /proc; the autouse fixture checks the rest.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import describe, record
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_robustness_support import (
    ReplayServer,
    compile_c,
    frame,
    live_descendants,
    replay_server,
    wait_until,
)

FUZZ_EXAMPLES = int(os.environ.get("RRGDB_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("robust-protocol")
    return {name: compile_c(name, out) for name in ("many_syscalls", "long_compute")}


def recorded_trace(tmp_path_factory: pytest.TempPathFactory, cmd: list[str]) -> Path:
    trace = tmp_path_factory.mktemp("trace") / "trace"
    result = record(cmd, trace)
    assert result.returncode == 0, describe(result)
    return trace


@pytest.fixture(scope="module")
def short_trace(programs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 300 events: every connection to it starts fast."""
    return recorded_trace(tmp_path_factory, [str(programs["many_syscalls"]), "200"])


@pytest.fixture(scope="module")
def long_trace(programs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 000 traced getpgid calls: a `c` to the end takes seconds."""
    return recorded_trace(tmp_path_factory, [str(programs["many_syscalls"]), "20000"])


@pytest.fixture(scope="module")
def compute_trace(programs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About a second of computation with no events in the middle."""
    return recorded_trace(tmp_path_factory, [str(programs["long_compute"]), "600000000"])


@pytest.fixture(scope="module")
def fuzz_server(short_trace: Path) -> Iterator[ReplayServer]:
    with replay_server(short_trace) as server:
        yield server


def assert_serves(server: ReplayServer) -> None:
    """A new client can connect and complete gdb's handshake and read registers."""
    assert server.proc.poll() is None, f"the server died:\n{server.output()}"
    with server.client(timeout=30) as client:
        client.handshake()
        assert len(client.request(b"g")) >= 560 * 2
        client.send(b"D")
        assert client.reply() == b"OK"
    wait_for_no_tracee(server)


def wait_for_no_tracee(server: ReplayServer, timeout: float = 10) -> None:
    wait_until(lambda: not live_descendants(server.pid), timeout,
               f"the server's tracees to go: {live_descendants(server.pid)}")


# ------------------------------------------------------------------ fuzzing

PACKET_NAMES = [
    b"?", b"g", b"G", b"m", b"M", b"X", b"x", b"p", b"P", b"c", b"s", b"C", b"S", b"vCont",
    b"vCont?", b"vCont;", b"bc", b"bs", b"Z0,", b"z0,", b"Z1,", b"Z2,", b"Z3,", b"Z4,", b"Z9,",
    b"H", b"Hg", b"Hc", b"T", b"qSupported:", b"qXfer:features:read:target.xml:",
    b"qXfer:auxv:read::", b"qXfer:exec-file:read::", b"qXfer:threads:read::",
    b"qXfer:memory-map:read::", b"qRcmd,", b"qRRCmd:", b"qfThreadInfo", b"qsThreadInfo",
    b"qC", b"qAttached", b"qSymbol::", b"qTStatus", b"qOffsets", b"QNonStop:",
    b"vFile:open:", b"vFile:pread:", b"vFile:fstat:", b"vFile:close:", b"vFile:setfs:",
    b"vFile:readlink:", b"vRun;", b"vKill;", b"QStartNoAckMode", b"QPassSignals:",
    b"qThreadExtraInfo,", b"vMustReplyEmpty", b"!", b"A", b"R", b"i", b"t", b"",
    b"qXfer:siginfo:read::", b"qGetTLSAddr:", b"QCatchSyscalls:1;", b"QCatchSyscalls:0",
]
# Long operations that cannot be interrupted are not the fuzzer's business (a search of
# the whole address space has its own test below).
SAFE_BODY = st.binary(max_size=80).filter(lambda b: not b.startswith(b"qSearch"))
hexish = st.text("0123456789abcdefABCDEF,;:.-p", max_size=40).map(str.encode)
packet_bodies = st.one_of(
    st.tuples(st.sampled_from(PACKET_NAMES), st.one_of(hexish, st.binary(max_size=40)))
    .map(b"".join),
    SAFE_BODY,
)
stream_parts = st.lists(
    st.one_of(
        packet_bodies.map(frame),  # well-framed packets
        st.binary(max_size=200),  # line noise, including $ # } * - + and 0x03
        packet_bodies.map(lambda b: b"$" + b + b"#zz"),  # bad checksums
        st.just(b"\x03"),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(parts=stream_parts, no_ack=st.booleans())
def test_fuzzed_packets_and_streams_never_stop_the_server(
    fuzz_server: ReplayServer, parts: list[bytes], no_ack: bool
) -> None:
    with fuzz_server.client(timeout=30) as client:
        if no_ack:
            client.handshake()
        for part in parts:
            try:
                client.send_raw(part)
            except OSError:
                break  # the server hung up (D, k or a protocol error): that is allowed
            client.drain(0.02)
        client.drain(0.2)
    assert_serves(fuzz_server)


def test_malformed_packets_get_error_replies_and_the_connection_survives(
    short_trace: Path,
) -> None:
    malformed = [
        b"m1,", b"mzz,4", b"m 10,4", b"m0x10,4", b"M10,2:zz", b"X1,5:ab", b"vCont;q",
        b"vCont;s:zz", b"Hgzz", b"Tzz", b"p-1", b"Pzz=00", b"Z0,zz,1", b"Z2,10", b"z0",
        b"qXfer:features:read:target.xml:zz", b"vFile:pread:zz", b"vFile:open:zz,0,0",
        b"qRcmd,zz", b"qSearch:memory:zz",
        b"qXfer:siginfo:read::zz", b"qGetTLSAddr:zz,0,0", b"qGetTLSAddr:p1.1,zz,0",
        b"qGetTLSAddr:p1.1,0,ffffffffffffffff", b"QCatchSyscalls:1;zz", b"QCatchSyscalls:2",
        b"m" + b"f" * 40 + b",4",  # an address far beyond 64 bits
        b"vFile:pread:0,10," + b"f" * 40,
    ]
    with replay_server(short_trace) as server:
        with server.client() as client:
            client.handshake()
            registers = client.request(b"g")
            for body in malformed:
                reply = client.request(body)
                assert reply[:1] == b"E" or reply.startswith(b"F-1"), (body, reply)
                # the connection is still in sync and the target still answers
                assert client.request(b"g") == registers, body
            client.send(b"D")
            assert client.reply() == b"OK"
        wait_for_no_tracee(server)
        assert_serves(server)
    assert "Traceback" not in server.output(), server.output()


def test_a_path_with_a_nul_byte_is_refused_cleanly(short_trace: Path) -> None:
    """vFile:open of "/etc/passwd\\0": an error reply, not an exception in the server."""
    with replay_server(short_trace) as server:
        with server.client() as client:
            client.handshake()
            reply = client.request(b"vFile:open:" + b"/etc/passwd\0".hex().encode() + b",0,0")
            assert reply.startswith(b"F-1,"), reply
        wait_for_no_tracee(server)
    assert "Traceback" not in server.output(), server.output()


# ------------------------------------------------------------------ disconnects


@pytest.mark.parametrize("command", [b"c", b"vCont;c"])
def test_a_client_that_hangs_up_during_a_continue_leaves_no_tracee(
    long_trace: Path, command: bytes
) -> None:
    with replay_server(long_trace) as server:
        with server.client() as client:
            client.handshake()
            client.send(command)
            time.sleep(0.3)
            assert live_descendants(server.pid), "the replay is not running"
        wait_for_no_tracee(server)
        assert_serves(server)
        server.stop(signal.SIGINT)
        assert server.proc.returncode == 0, server.output()
    assert "Traceback" not in server.output(), server.output()


def test_a_client_that_hangs_up_during_a_reverse_search_leaves_no_tracee(
    long_trace: Path,
) -> None:
    """`c` to the end, then `bc` (a reverse search through the whole history); hang up
    while it runs."""
    with replay_server(long_trace) as server:
        with server.client() as client:
            client.handshake()
            assert client.request(b"c").startswith(b"T09")
            client.send(b"bc")
            time.sleep(0.3)
        wait_for_no_tracee(server)
        assert_serves(server)


def test_a_search_of_the_whole_address_space_does_not_take_the_server_down(
    short_trace: Path,
) -> None:
    """qSearch:memory over 2^48 bytes, then the client hangs up: the server must still
    serve the next client (no engine call may run unboundedly once its client is gone)
    and SIGINT must still stop it."""
    with replay_server(short_trace) as server:
        with server.client() as client:
            client.handshake()
            client.send(b"qSearch:memory:0;ffffffffffff;5a5a5a5a5a5a5a5a5a5a")
            time.sleep(0.5)
        try:
            with server.client(timeout=15) as client:
                client.handshake()
        finally:
            start = time.monotonic()
            server.stop(signal.SIGINT, timeout=30)
            assert time.monotonic() - start < 15, "SIGINT took too long"


def test_a_second_client_is_refused_with_a_message(short_trace: Path) -> None:
    with replay_server(short_trace) as server:
        with server.client() as first:
            first.handshake()
            with server.client() as second:
                start = time.monotonic()
                reply = second.request(b"qSupported:multiprocess+")
                assert reply == b"E.rrgdb: another debugger is already connected to this replay"
                assert time.monotonic() - start < 10
                with pytest.raises((EOFError, ConnectionError)):
                    second.reply()
            # the first client is not disturbed
            assert first.request(b"qAttached") == b"1"
            assert first.request(b"s").startswith(b"T05")
        wait_for_no_tracee(server)
        assert_serves(server)
    assert "refused a second gdb connection" in server.output()


# ------------------------------------------------------------------ ^C


@pytest.mark.parametrize("trace_name", ["compute_trace", "long_trace"])
def test_ctrl_c_during_a_long_continue_returns_a_stop(
    trace_name: str, request: pytest.FixtureRequest
) -> None:
    trace = request.getfixturevalue(trace_name)
    with replay_server(trace) as server:
        with server.client() as client:
            client.handshake()
            start = time.monotonic()
            client.send(b"vCont;c")
            time.sleep(0.3)
            client.send_raw(b"\x03")
            stop = client.reply()
            elapsed = time.monotonic() - start
            assert stop.startswith(b"T"), stop
            assert not stop.startswith(b"T09"), f"ran to the end instead: {stop!r}"
            assert elapsed < 1.5, f"the stop came {elapsed:.1f} s after the continue"
            # the replay goes on from there
            assert client.request(b"s").startswith(b"T05")
            if trace_name == "long_trace":
                end = client.request(b"c")
                assert end.startswith(b"T09"), end
            client.send(b"D")
            assert client.reply() == b"OK"
        wait_for_no_tracee(server)


def test_reverse_execution_from_the_end_of_history(long_trace: Path) -> None:
    """After `c` reaches the end of the recording, `bs` and `bc` still work (gdb's
    `reverse-stepi` / `reverse-continue` at the end of a replay)."""
    with replay_server(long_trace) as server:
        with server.client() as client:
            client.handshake()
            assert client.request(b"c").startswith(b"T09")
            back = client.request(b"bs")
            assert back.startswith(b"T"), (back, server.output())
            back = client.request(b"bc")
            assert back.startswith(b"T") and b"replaylog:begin" in back, (back, server.output())
        wait_for_no_tracee(server)

