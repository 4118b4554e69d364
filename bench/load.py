"""Load test of the gdb server: many connections and many step/continue round trips
against one `rrgdb replay -s` process, with its memory and children measured in /proc.

    python bench/load.py                       # the full figures: 1000 cycles, 10 000 round trips
    python bench/load.py --cycles 50 --round-trips 500 --json

It compiles bench/syscall_heavy.c, records it, starts `python -m rrgdb replay -s 0 TRACE`
and then:

1. connection cycles: connect, gdb's handshake (qSupported, QStartNoAckMode, ?), a
   register read, and a disconnect that alternates between `D` (detach), `k` (kill) and
   simply closing the socket;
2. round trips on one connection: `s`, `vCont;s:p-1.-1`, `s`, `bs` repeated (three steps
   forward, one back), and every 500 round trips a `c` to the end of the recording
   followed by `vRun;` (back to the start).

It prints the server's VmRSS at start (before any connection), after a warm-up (the
first 10 % of the cycles), after the cycles and at the end, and the server's live
children before, during and after (each connection's replay is a child; none may
remain once its client is gone). The server is ended by pid (SIGINT) and must exit 0.
Exit status: 0 when no request failed, no child leaked and the server stopped cleanly.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PROGRAM_ITERATIONS = 2000


def rrgdb_env() -> dict[str, str]:
    """Our environment, plus the repository on PYTHONPATH if rrgdb is not installed."""
    probe = subprocess.run([sys.executable, "-c", "import rrgdb"], cwd="/",
                           capture_output=True, timeout=60)
    if probe.returncode == 0:
        return dict(os.environ)
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


# --------------------------------------------------------------------------- /proc


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def live_children(pid: int) -> list[int]:
    """Live (non-zombie) processes below pid, from /proc."""
    parents: dict[int, list[int]] = {}
    states: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        states[int(entry)] = fields[0]
        parents.setdefault(int(fields[1]), []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            if states.get(child) not in ("Z", "X"):
                found.append(child)
            stack.append(child)
    return sorted(found)


def wait_for_no_children(pid: int, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (children := live_children(pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return children


# --------------------------------------------------------------------------- protocol


def frame(body: bytes) -> bytes:
    return b"$%s#%02x" % (body, sum(body) % 256)


class Client:
    """Just enough of gdb: packets out, replies in, acks until no-ack mode."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        self.ack = True

    def close(self) -> None:
        self.sock.close()

    def reply(self) -> bytes:
        while True:
            match = re.search(rb"\$([^#]*)#[0-9a-fA-F]{2}", self.buffer)
            if match:
                self.buffer = self.buffer[match.end() :]
                if self.ack:
                    self.sock.sendall(b"+")
                body = match.group(1)
                if body.startswith(b"O") and body != b"OK":
                    continue
                return body
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the server closed the connection")
            self.buffer += data

    def request(self, body: bytes) -> bytes:
        self.sock.sendall(frame(body))
        return self.reply()

    def handshake(self) -> None:
        supported = self.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+")
        expect(b"PacketSize=" in supported, b"qSupported", supported)
        expect(self.request(b"QStartNoAckMode") == b"OK", b"QStartNoAckMode", b"")
        self.ack = False
        stop = self.request(b"?")
        expect(stop[:1] in (b"T", b"S"), b"?", stop)


class RequestFailed(Exception):
    pass


def expect(condition: bool, request: bytes, reply: bytes) -> None:
    if not condition:
        raise RequestFailed(f"{request!r} got {reply[:200]!r}")


# --------------------------------------------------------------------------- the run


def thread_states(pid: int) -> list[str]:
    """'name state wchan masks' of each thread of pid (why a process does not exit)."""
    states = []
    for task in sorted(Path(f"/proc/{pid}/task").iterdir()):
        try:
            stat = (task / "stat").read_text()
            wchan = (task / "wchan").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        masks = " ".join(line.replace("\t", "=") for line in (task / "status").read_text()
                         .splitlines() if line.startswith(("SigPnd", "SigBlk", "SigIgn")))
        states.append(f"{name} {stat[stat.rindex(')') + 2]} {wchan} {masks}")
    return states


class Server:
    hung_threads: list[str] | None = None

    def __init__(self, trace: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rrgdb", "replay", "-s", "0", str(trace)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=env)
        self.log = b""
        self.port = 0
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in iter(self.proc.stderr.readline, b""):
                self.log += line
                match = re.search(rb"target extended-remote [^:]+:(\d+)", line)
                if match and not ready.is_set():
                    self.port = int(match.group(1))
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not ready.wait(60) or not self.port:
            self.stop()
            raise RuntimeError(f"the server did not start: {self.log.decode(errors='replace')}")

    def stop(self) -> int:
        """SIGINT by pid; SIGKILL by pid if it does not exit within 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.hung_threads = thread_states(self.proc.pid)
                self.proc.kill()
                self.proc.wait(timeout=30)
                self.reader.join(timeout=10)
                return -signal.SIGKILL
        self.reader.join(timeout=10)
        return self.proc.returncode


def connection_cycles(server: Server, cycles: int, report: dict) -> None:
    warmup = max(1, cycles // 10)
    for i in range(cycles):
        client = Client(server.port)
        try:
            client.handshake()
            registers = client.request(b"g")
            expect(len(registers) >= 1120, b"g", registers)
            if i == cycles // 2:  # the replay of a connected client is a child
                report["children_while_connected"] = len(live_children(server.proc.pid))
            how = i % 3
            if how == 0:
                expect(client.request(b"D") == b"OK", b"D", b"")
            elif how == 1:
                client.sock.sendall(frame(b"k"))
        finally:
            client.close()
        if i + 1 == warmup:
            report["rss_after_warmup_kib"] = rss_kib(server.proc.pid)


def round_trips(server: Server, count: int) -> dict[str, int]:
    pattern = [b"s", b"vCont;s:p-1.-1", b"s", b"bs"]
    done = {"forward_steps": 0, "reverse_steps": 0, "continues": 0, "restarts": 0}
    client = Client(server.port)
    try:
        client.handshake()
        for i in range(count):
            if i and i % 500 == 0:
                stop = client.request(b"c")
                expect(stop.startswith(b"T09"), b"c", stop)
                done["continues"] += 1
                stop = client.request(b"vRun;")
                expect(stop.startswith(b"T"), b"vRun;", stop)
                done["restarts"] += 1
                continue
            body = pattern[i % len(pattern)]
            stop = client.request(body)
            expect(stop.startswith(b"T05"), body, stop)
            done["reverse_steps" if body == b"bs" else "forward_steps"] += 1
        expect(client.request(b"D") == b"OK", b"D", b"")
    finally:
        client.close()
    return done


def run(cycles: int, trips: int, scratch: Path) -> dict:
    env = rrgdb_env()
    program = scratch / "syscall_heavy"
    subprocess.run(["gcc", "-O2", "-g", "-o", str(program), str(BENCH_DIR / "syscall_heavy.c")],
                   check=True, timeout=120)
    trace = scratch / "trace"
    subprocess.run([sys.executable, "-m", "rrgdb", "record", "-o", str(trace), "--",
                    str(program), str(PROGRAM_ITERATIONS)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    report: dict = {"cycles": cycles, "round_trips": trips, "error": None}
    server = Server(trace, env)
    pid = server.proc.pid
    report["server_pid"] = pid
    report["rss_start_kib"] = rss_kib(pid)
    report["children_before"] = len(live_children(pid))
    start = time.monotonic()
    try:
        connection_cycles(server, cycles, report)
        report["cycles_seconds"] = round(time.monotonic() - start, 2)
        report["children_after_cycles"] = len(wait_for_no_children(pid))
        report["rss_after_cycles_kib"] = rss_kib(pid)
        start = time.monotonic()
        report.update(round_trips(server, trips))
        report["round_trips_seconds"] = round(time.monotonic() - start, 2)
        report["children_after"] = len(wait_for_no_children(pid))
        report["rss_end_kib"] = rss_kib(pid)
    except (RequestFailed, OSError, EOFError) as error:
        report["error"] = f"{type(error).__name__}: {error}"
    finally:
        report["server_status"] = server.stop()
        report["server_tracebacks"] = server.log.count(b"Traceback")
        if server.hung_threads is not None:
            report["server_threads_when_it_did_not_stop"] = server.hung_threads
            report["server_log_tail"] = server.log[-600:].decode(errors="replace")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--round-trips", type=int, default=10000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rrgdb-load-") as scratch:
        report = run(args.cycles, args.round_trips, Path(scratch))
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:24} {value}")
    ok = (report["error"] is None and report.get("children_after") == 0
          and report.get("children_after_cycles") == 0 and report["server_status"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
