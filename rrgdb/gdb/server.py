"""The trio transport: accepts gdb connections and drives Connection and Dispatcher.

Each connection runs in its own nursery: a reader task feeds bytes to the sans-IO
`Connection` (answering acks, turning 0x03 into `DebugTarget.interrupt()`), and the
connection's main task sends each request to the engine thread and writes the reply.
All DebugTarget calls except `interrupt` run in one long-lived `EngineThread`, because
the kernel ties tracees to the thread that attached them. One gdb at a time: a second
client gets an error message and is closed. Nothing a client sends stops the server.

gdb waits 2 s for the ack of a packet (then sends it again, and takes the answer to the
copy as the answer to its next packet) and 3 x 2 s for a reply. Starting a replay takes
longer on a loaded machine, or with `-g EVENT` far into a trace, so the first
connection's target is made before the server is announced (as rr gets to its event
before printing the gdb command line), a connection's packets are acked as they arrive,
while its target is still being made, and a slow reply is preceded by a `+` a second,
which gdb skips while it waits for the reply."""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import outcome
import trio

from rrgdb.gdb import replies as rp
from rrgdb.gdb import requests as rq
from rrgdb.gdb.dispatch import Dispatcher
from rrgdb.gdb.protocol import Connection, Interrupt, ProtocolError
from rrgdb.gdb.target import DebugTarget

log = logging.getLogger(__name__)

T = TypeVar("T")
TargetFactory = Callable[[], DebugTarget]

_BUSY_MESSAGE = b"E.rrgdb: another debugger is already connected to this replay"
_RECEIVE_SIZE = 65536
_RECONNECT_GRACE_SECONDS = 3.0
_SHUTDOWN_CLOSE_SECONDS = 5.0
_KEEPALIVE_SECONDS = 1.0


class EngineThread:
    """The one thread that makes every DebugTarget call, fed through a queue."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="rrgdb-engine", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    async def call(self, function: Callable[..., T], *args: object) -> T:
        """Run `function(*args)` in the engine thread and return (or raise) its result.

        If the caller is cancelled the call still completes in the engine thread."""
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        result: list[outcome.Outcome] = []

        def job() -> None:
            result.append(outcome.capture(function, *args))
            try:
                trio.from_thread.run_sync(done.set, trio_token=token)
            except trio.RunFinishedError:
                pass

        self._jobs.put(job)
        await done.wait()
        return result[0].unwrap()

    def post(self, function: Callable[[], None]) -> None:
        """Run `function()` in the engine thread, without waiting for it."""
        self._jobs.put(function)

    def stop(self) -> None:
        """Let the thread end after the jobs already queued."""
        self._jobs.put(None)


async def serve(
    target_factory: TargetFactory,
    host: str = "127.0.0.1",
    port: int = 0,
    ready_callback: Callable[[int], None] | None = None,
) -> None:
    """Serve gdb on host:port until cancelled; each connection gets a fresh target from
    `target_factory` (called in the engine thread). `ready_callback(port)` runs once the
    socket listens (useful with port 0)."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    engine = EngineThread()
    server = _Server(target_factory, engine)
    try:
        await server.prepare()
        if ready_callback is not None:
            ready_callback(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(server.handle, listeners)
    finally:
        server.discard_prepared()
        engine.stop()


class _Server:
    """Admits one connection at a time."""

    def __init__(self, target_factory: TargetFactory, engine: EngineThread) -> None:
        self._target_factory = target_factory
        self._engine = engine
        self._in_use = trio.Lock()
        self._prepared: Dispatcher | None = None

    async def prepare(self) -> None:
        """Makes the first connection's target now (a failure is logged, and the
        connection tries again)."""
        try:
            self._prepared = await self._engine.call(self._new_dispatcher)
        except Exception:
            log.exception("could not start the replay")

    def discard_prepared(self) -> None:
        """Closes (in the engine thread) a prepared target no connection took."""
        if self._prepared is not None:
            self._engine.post(self._prepared.close)
            self._prepared = None

    def _new_dispatcher(self) -> Dispatcher:
        return Dispatcher(self._target_factory())

    async def _take_dispatcher(self) -> Dispatcher:
        """The prepared target's dispatcher, or a new one."""
        prepared, self._prepared = self._prepared, None
        if prepared is not None:
            return prepared
        return await self._engine.call(self._new_dispatcher)

    async def handle(self, stream: trio.SocketStream) -> None:
        # A gdb that reconnects (after `kill`) may arrive while the old session still
        # closes its replay: give that a moment before calling the server busy.
        acquired = False
        with trio.move_on_after(_RECONNECT_GRACE_SECONDS):
            await self._in_use.acquire()
            acquired = True
        if not acquired:
            await _refuse(stream)
            return
        try:
            await _Session(stream, self._engine, self._take_dispatcher).run()
        finally:
            self._in_use.release()


async def _refuse(stream: trio.SocketStream) -> None:
    """Answer the second client's first packet with a readable error, then hang up."""
    log.warning("refused a second gdb connection")
    conn = Connection()
    with trio.move_on_after(5):
        try:
            while conn.awaiting_reply is None:
                data = await stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    break
                conn.receive_data(data)
                await stream.send_all(conn.data_to_send())
            if conn.awaiting_reply is not None:
                # gdb prints "Remote failure reply: E.rrgdb: another debugger…".
                await stream.send_all(conn.send(rp.Raw(_BUSY_MESSAGE)))
        except (ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    await stream.aclose()


class _Session:
    """One gdb connection: a reader task and a request loop under one nursery."""

    def __init__(self, stream: trio.SocketStream, engine: EngineThread,
                 open_dispatcher: Callable[[], Awaitable[Dispatcher]]):
        self._stream = stream
        self._engine = engine
        self._open_dispatcher = open_dispatcher
        self._dispatcher: Dispatcher | None = None  # once the target is made
        self._conn = Connection()
        self._send_lock = trio.Lock()
        self._requests_in, self._requests_out = trio.open_memory_channel[rq.Request](256)

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_loop)  # acks gdb's packets meanwhile
                nursery.start_soon(self._keep_gdb_waiting)
                if await self._open():
                    await self._request_loop()
                nursery.cancel_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            log.info("gdb connection lost")
        finally:
            # When the whole server is stopping (^C), do not wait for ever on an engine
            # call that does not end: the process exits and PTRACE_O_EXITKILL takes
            # the tracees with it.
            stopping = trio.current_effective_deadline() == -math.inf
            with trio.CancelScope(shield=True) as cleanup:
                if stopping:
                    cleanup.deadline = trio.current_time() + _SHUTDOWN_CLOSE_SECONDS
                if self._dispatcher is not None:
                    if self._resume_running():
                        self._dispatcher.target.interrupt()
                    await self._engine.call(self._dispatcher.close)
                await self._stream.aclose()

    async def _open(self) -> bool:
        """Gets the connection's dispatcher and target; False if the replay failed."""
        try:
            dispatcher = await self._open_dispatcher()
        except Exception:
            log.exception("could not start the replay for a gdb connection")
            return False
        self._dispatcher = dispatcher
        token = trio.lowlevel.current_trio_token()

        def console(text: str) -> None:
            """Called in the engine thread during a long request: an `O` packet to gdb."""
            trio.from_thread.run(self._write_console, text, trio_token=token)

        set_console = getattr(dispatcher.target, "set_console", None)
        if set_console is not None:
            await self._engine.call(set_console, console)
        return True

    async def _write_console(self, text: str) -> None:
        try:
            await self._write(self._conn.send(rp.ConsoleOutput(text.encode())))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _keep_gdb_waiting(self) -> None:
        """A `+` every second while a request that is not a resume waits for its reply
        (the target being made, `run N`, a long `monitor` command): gdb skips bytes
        before a reply's `$`, and each one restarts its 2 s timeout."""
        while True:
            await trio.sleep(_KEEPALIVE_SECONDS)
            async with self._send_lock:
                awaiting = self._conn.awaiting_reply
                if awaiting is not None and not awaiting.resumes:
                    await self._stream.send_all(b"+")

    def _resume_running(self) -> bool:
        """Whether the target runs a resume gdb asked for (one it can interrupt)."""
        awaiting = self._conn.awaiting_reply
        return self._dispatcher is not None and awaiting is not None and awaiting.resumes

    async def _write(self, data: bytes) -> None:
        if data:
            async with self._send_lock:
                await self._stream.send_all(data)

    async def _read_loop(self) -> None:
        async with self._requests_in:
            while data := await self._stream.receive_some(_RECEIVE_SIZE):
                try:
                    events = self._conn.receive_data(data)
                except ProtocolError as error:
                    log.warning("closing the gdb connection: %s", error)
                    return
                await self._write(self._conn.data_to_send())
                for event in events:
                    if isinstance(event, Interrupt):
                        # Between resumes too: gdb resumes after each stop it does not
                        # show (a breakpoint whose condition is false, a step of `next`)
                        # and waits for the interrupt's stop, which the target then
                        # reports at its next resume (as gdbserver's SIGINT would).
                        if self._dispatcher is not None:
                            self._interrupt()
                    else:
                        await self._requests_in.send(event)
            if self._resume_running():
                self._interrupt()  # gdb hung up: stop what it asked for

    def _interrupt(self) -> None:
        assert self._dispatcher is not None
        self._dispatcher.target.interrupt()

    async def _request_loop(self) -> None:
        async with self._requests_out:
            async for request in self._requests_out:
                reply = await self._engine.call(self._answer, request)
                if reply is not None:
                    await self._write(self._conn.send(reply))
                if self._dispatcher is not None and self._dispatcher.closing:
                    return

    def _answer(self, request: rq.Request) -> rp.Reply | None:
        """Runs in the engine thread; an engine failure becomes an error reply."""
        assert self._dispatcher is not None
        try:
            return self._dispatcher.handle(request)
        except Exception:
            log.exception("error while answering %r", request)
            return rp.Error() if request.expects_reply else None
