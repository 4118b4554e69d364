"""Packet round-trip latency of ``rrgdb replay -s`` over loopback (issue 3's benchmark).

Run on demand from the repository root (not part of the test suite):

    python bench/gdb_latency.py                  # 300 g+m pairs, 200 Z0+c+stop cycles
    python bench/gdb_latency.py --pairs 1000 --cycles 500

It compiles a small loop program (two functions called alternately), records it, serves
the recording with ``python -m rrgdb replay -s PORT`` and talks raw RSP to it, framing the
packets by hand the way gdb does (acks until QStartNoAckMode, then none). It reports the
median (and 90th percentile) in microseconds of:

* a ``g`` + ``m`` pair: read all registers, then 64 bytes at the stack pointer — what gdb
  does after every stop and every reverse step;
* a ``Z0`` + ``c`` + stop cycle: insert a breakpoint on the function that runs next,
  continue, receive the stop reply, remove the breakpoint (``z0``). The two functions
  alternate, so no cycle starts on its own breakpoint.

The server is ended by pid when the script finishes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROGRAM = r"""
#include <stdio.h>
__attribute__((noinline)) int ping(int i) { return i * 3; }
__attribute__((noinline)) int pong(int i) { return i + 7; }
int main(int argc, char **argv)
{
    (void)argv;
    long n = 1000000L * argc, sum = 0;
    for (long i = 0; i < n; i++)
        sum += ping(i) + pong(i);
    printf("%ld\n", sum);
    return 0;
}
"""


def checksum(payload: bytes) -> bytes:
    return b"%02x" % (sum(payload) % 256)


class Client:
    """A minimal RSP client: frame, send, read one reply."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.ack = True

    def send(self, payload: bytes) -> None:
        escaped = bytearray()
        for byte in payload:
            if byte in b"#$}*":
                escaped += bytes([0x7D, byte ^ 0x20])
            else:
                escaped.append(byte)
        self.sock.sendall(b"$" + bytes(escaped) + b"#" + checksum(bytes(escaped)))

    def receive(self) -> bytes:
        while True:
            start = self.buffer.find(b"$")
            end = self.buffer.find(b"#", start + 1) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self.buffer) >= end + 3:
                payload = self.buffer[start + 1 : end]
                self.buffer = self.buffer[end + 3 :]
                if self.ack:
                    self.sock.sendall(b"+")
                return payload
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk

    def request(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.receive()

    def close(self) -> None:
        self.sock.close()


def unescape_rle(payload: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(payload):
        byte = payload[i]
        if byte == 0x7D:
            out.append(payload[i + 1] ^ 0x20)
            i += 2
        elif byte == 0x2A:
            out += out[-1:] * (payload[i + 1] - 29)
            i += 2
        else:
            out.append(byte)
            i += 1
    return bytes(out)


def symbol_address(binary: Path, name: str) -> int:
    out = subprocess.run(["nm", str(binary)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise SystemExit(f"{name} not found in {binary}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(trace: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    err_path = workdir / "server.err"
    with open(workdir / "server.out", "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rrgdb", "replay", "-s", str(port), str(trace)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    deadline = time.monotonic() + 60
    ready = f"target extended-remote 127.0.0.1:{port}".encode()
    while ready not in err_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise SystemExit(f"server did not start:\n{err_path.read_text()}")
        time.sleep(0.02)
    return proc, port, err_path


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def report(name: str, samples: list[float]) -> None:
    micros = sorted(s * 1e6 for s in samples)
    p90 = micros[int(len(micros) * 0.9) - 1] if len(micros) >= 10 else micros[-1]
    print(
        f"{name:<22} median {statistics.median(micros):9.1f} µs   p90 {p90:9.1f} µs"
        f"   n={len(micros)}"
    )


def register(regs: bytes, index: int) -> int:
    """General register ``index`` (gdb's x86-64 numbering) from a ``g`` reply."""
    return int.from_bytes(bytes.fromhex(regs[index * 16 : index * 16 + 16].decode()), "little")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=300, help="g+m pairs to time")
    parser.add_argument("--cycles", type=int, default=200, help="Z0+c+stop cycles to time")
    args = parser.parse_args()
    if shutil.which("gcc") is None:
        raise SystemExit("gcc is required")

    with tempfile.TemporaryDirectory(prefix="rrgdb-latency-") as tmp:
        workdir = Path(tmp)
        source = workdir / "pingpong.c"
        source.write_text(PROGRAM)
        binary = workdir / "pingpong"
        subprocess.run(["gcc", "-O1", "-g", "-no-pie", "-o", str(binary), str(source)], check=True)
        trace = workdir / "trace"
        subprocess.run(
            [sys.executable, "-m", "rrgdb", "record", "-o", str(trace), str(binary)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ping, pong = symbol_address(binary, "ping"), symbol_address(binary, "pong")

        proc, port, _ = start_server(trace, workdir)
        client = None
        try:
            client = Client(port)
            client.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+")
            if client.request(b"QStartNoAckMode") == b"OK":
                client.ack = False
            client.request(b"?")

            # get to the loop: the first ping
            assert client.request(b"Z0,%x,1" % ping) == b"OK"
            stop = client.request(b"c")
            assert stop.startswith(b"T05"), stop
            assert client.request(b"z0,%x,1" % ping) == b"OK"

            pairs = []
            for _ in range(args.pairs):
                started = time.perf_counter()
                regs = unescape_rle(client.request(b"g"))
                rsp = register(regs, 7)
                memory = client.request(b"m%x,40" % rsp)
                pairs.append(time.perf_counter() - started)
                assert not memory.startswith(b"E"), memory
            report("g + m pair", pairs)

            cycles = []
            targets = [pong, ping]
            for i in range(args.cycles):
                addr = targets[i % 2]
                started = time.perf_counter()
                assert client.request(b"Z0,%x,1" % addr) == b"OK"
                stop = client.request(b"c")
                assert client.request(b"z0,%x,1" % addr) == b"OK"
                cycles.append(time.perf_counter() - started)
                assert stop.startswith(b"T05"), stop
            report("Z0 + c + stop (+ z0)", cycles)
            client.send(b"k")
        finally:
            if client is not None:
                client.close()
            stop_server(proc)
    print(f"(rrgdb replay -s over loopback; {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
