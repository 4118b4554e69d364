"""Every process rrgdb starts is ended on every exit path.

`replay -a`: normal end, a bad trace, SIGINT (KeyboardInterrupt) and SIGTERM mid-replay.
`replay -s`: a bad trace, a port already in use, detach, SIGINT (KeyboardInterrupt) and
SIGTERM while a client is connected and a continue runs, with a checkpoint (a second
process) alive. `record`'s SIGKILL and SIGTERM paths are in test_robustness_traces.py and
test_robustness_recording.py.

After each, /proc must show no process below the rrgdb process (checked explicitly here,
and for everything pytest started by the autouse leak check).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import describe, record, replay, rrgdb_lines, run_rrgdb
from test_robustness_support import (
    ReplayServer,
    alive,
    compile_c,
    end_process,
    live_descendants,
    rrgdb_popen,
    wait_until,
)


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A replay that takes a few seconds (20 000 traced getpgid calls)."""
    out = tmp_path_factory.mktemp("robust-lifecycle")
    program = compile_c("many_syscalls", out)
    result = record([str(program), "20000"], out / "trace")
    assert result.returncode == 0, describe(result)
    return out / "trace"


def all_gone(pids: list[int], timeout: float = 5) -> None:
    wait_until(lambda: not any(alive(pid) for pid in pids), timeout,
               f"processes {[pid for pid in pids if alive(pid)]} to end")


def test_replay_alone_ends_its_tracee(trace: Path) -> None:
    result = replay(trace)
    assert result.returncode == 0, describe(result)


def test_replay_of_a_bad_trace_starts_nothing(tmp_path: Path) -> None:
    (tmp_path / "header").write_bytes(b"not a trace")
    for args in (["replay", "-a", tmp_path], ["replay", "-s", "0", tmp_path]):
        result = run_rrgdb(args, timeout=60)
        assert result.returncode == 2, describe(result)
        assert len(rrgdb_lines(result.stderr)) == 1, describe(result)
        assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_replay_alone_ends_the_tracee(trace: Path, sig: int) -> None:
    proc = rrgdb_popen(["replay", "-a", trace], stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: live_descendants(proc.pid), 30, "the replayed process")
        time.sleep(0.3)
        tracees = live_descendants(proc.pid)
        assert tracees, "the replay ended too early to be interrupted"
        status = end_process(proc, sig)
    finally:
        end_process(proc, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=30)
    all_gone(tracees)
    assert status != 0, f"an interrupted replay must not report success: {stderr!r}"
    if sig == signal.SIGINT:
        assert b"Traceback" not in stderr, stderr.decode(errors="replace")


def test_replay_server_on_a_port_in_use(trace: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_rrgdb(["replay", "-s", str(port), trace], timeout=60)
    assert result.returncode == 2, describe(result)
    assert rrgdb_lines(result.stderr) and b"cannot listen" in result.stderr, describe(result)
    assert b"Traceback" not in result.stderr


def test_detach_ends_the_replay_and_the_server_goes_on(trace: Path) -> None:
    server = ReplayServer(trace)
    try:
        for _ in range(2):
            with server.client() as client:
                client.handshake()
                assert "Checkpoint 1" in bytes.fromhex(
                    client.request(b"qRcmd," + b"checkpoint".hex().encode()).decode()).decode()
                children = live_descendants(server.pid)
                assert len(children) >= 2, "expected the replay and its checkpoint"
                assert client.request(b"D") == b"OK"
            all_gone(children)
    finally:
        status = server.stop(signal.SIGINT)
    assert status == 0, server.output()
    assert "Traceback" not in server.output(), server.output()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_server_during_a_continue_ends_everything(trace: Path,
                                                                  sig: int) -> None:
    server = ReplayServer(trace)
    try:
        with server.client() as client:
            client.handshake()
            client.request(b"qRcmd," + b"checkpoint".hex().encode())
            client.send(b"vCont;c")
            time.sleep(0.3)
            children = live_descendants(server.pid)
            assert len(children) >= 2, children
            status = server.stop(sig, timeout=20)
    finally:
        server.stop(signal.SIGKILL)
    all_gone(children)
    if sig == signal.SIGINT:
        assert status == 0, server.output()
        assert "Traceback" not in server.output(), server.output()
    else:
        assert status in (-signal.SIGTERM, 128 + signal.SIGTERM), server.output()
