"""The asyncio TCP front end of ``manage.py cache_serve``.

The event loop reads and writes sockets and answers the ``get`` commands
the cache alone can answer, batched across clients (fastreads.py); every
other command runs on the server's few database workers (worker.py). A
command runs only once its line and its whole data block have arrived, so a
client that stalls or goes away mid-command never causes a partial write,
and holds nothing but its socket. No client can hold the server: one address gets at most
``max_peer_connections`` of the ``max_connections`` slots, a client silent
for ``idle_timeout`` seconds is dropped, and a binary-protocol request is
refused at once (memcached's binary "unknown command") instead of waiting
for a text line that never comes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import cast

from cachelayer.protocol import auth, parser
from cachelayer.protocol.deadlines import Deadline, Deadlines
from cachelayer.protocol.fastreads import FastReads
from cachelayer.protocol.flushes import DelayedFlushes
from cachelayer.protocol.session import ServerStats, Session
from cachelayer.protocol.worker import Seat, WorkerPool

MAX_LINE = 64 * 1024  # longest command line (a get of ~250 maximal keys)
SWALLOW_CHUNK = 64 * 1024  # read size while discarding an oversized value
BINARY_HEADER_WAIT = 0.5  # seconds a binary request's 24-byte header may take before the hang-up
STOP_TIMEOUT = 10  # seconds the database workers get to commit and close at shutdown


class Hangup(Exception):
    """Answer ``reply`` (if any) and close the connection: the stream cannot be resynchronised."""

    def __init__(self, reply: bytes = b""):
        super().__init__(reply)
        self.reply = reply


class Server:
    """Serve exposed containers over the memcached text protocol."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 11211,
        max_connections: int = 1024,
        item_size_max: int = 1024 * 1024,
        batch_size: int = 1,
        commit_interval: float = 0.5,
        read_timeout: float = 30.0,
        max_peer_connections: int = 256,
        idle_timeout: float = 300.0,
        db_workers: int = 4,
        auth_file: str | None = None,
    ):
        self.host, self.port = host, port
        self.max_connections, self.item_size_max = max_connections, item_size_max
        self.max_peer_connections, self.idle_timeout = max_peer_connections, idle_timeout or None
        self.batch_size, self.commit_interval = batch_size, commit_interval
        self.read_timeout = read_timeout
        self.credentials = auth.credentials(auth_file)  # None: no login (loopback only)
        self.stats = ServerStats()
        self.pool = WorkerPool(db_workers, batch_size, commit_interval)
        self.flushes = DelayedFlushes(self.pool)
        self._server: asyncio.Server | None = None
        self._clients = Deadlines(self.idle_timeout, read_timeout)
        self._handlers: set[asyncio.Task] = set()
        self._peers: Counter = Counter()  # peer address -> open connections
        # Reads the cache alone answers run on the loop, batched across clients;
        # not with write batches (a connection must read its open batch's writes).
        self.fast_reads = FastReads() if batch_size <= 1 else None

    async def start(self) -> None:
        """Listen; ``self.port`` is the bound port afterwards (useful with port 0)."""
        auth.check_bind(self.host, self.credentials)
        self._server = await asyncio.start_server(self._handle, self.host, self.port, limit=MAX_LINE)
        self.port = self._server.sockets[0].getsockname()[1]
        self._clients.start()
        self.flushes.start()

    async def close(self) -> None:
        """Stop listening, drop pending delayed flushes, hang up on every client
        (their batches commit), wait for them, and stop the database workers."""
        assert self._server is not None  # start() ran
        self._server.close()
        self.flushes.close()
        self._clients.stop()
        for writer in self._clients.writers():
            writer.close()
        if self._handlers:
            await asyncio.wait(self._handlers)
        await self._server.wait_closed()
        self.pool.stop()
        await asyncio.to_thread(self.pool.join, STOP_TIMEOUT)

    def _admit(self, peer: str) -> bool:
        """Return whether a new connection from address ``peer`` gets a slot."""
        return (
            self.stats.counts["curr_connections"] < self.max_connections
            and self._peers[peer] < self.max_peer_connections
        )

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats, peer = self.stats, writer.get_extra_info("peername")[0]
        if not self._admit(peer):
            stats.incr("rejected_connections")
            writer.write(parser.TOO_MANY_CONNECTIONS)
            writer.close()
            return
        stats.incr("curr_connections")
        stats.incr("total_connections")
        self._peers[peer] += 1
        deadline = self._clients.add(writer)
        self._handlers.add(cast(asyncio.Task, asyncio.current_task()))  # a handler runs in its own task
        seat = Seat(self.pool)
        try:
            await self._converse(
                reader, writer, deadline, seat, Session(self.stats, seat, self.flushes, self.credentials)
            )
        except Hangup as hangup:
            writer.write(hangup.reply)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away, mid-command or not: nothing was run for it
        finally:
            stats.incr("curr_connections", -1)
            self._peers[peer] -= 1
            if not self._peers[peer]:
                del self._peers[peer]
            self._clients.discard(writer)
            self._handlers.discard(asyncio.current_task())
            await seat.close()
            writer.close()

    async def _converse(self, reader, writer, deadline: Deadline, seat: Seat, session: Session) -> None:
        while True:
            line = await self._read_line(reader, deadline)
            if line is None:
                return
            try:
                command = parser.parse(line)
                data = await self._read_block(reader, deadline, command.length) if command.has_data else None
            except parser.ProtocolError as error:  # answered; the stream is still in step
                writer.write(error.reply)
                await writer.drain()
                continue
            if command.name == "quit":
                return
            reply = None
            if self.fast_reads is not None and command.name in ("get", "gets"):
                reply = await self.fast_reads.get(session, command, with_cas=command.name == "gets")
            if reply is None:
                reply = await seat.run(session.execute, command, data)
            if not command.noreply:
                writer.write(reply)
                await writer.drain()

    async def _read_line(self, reader: asyncio.StreamReader, deadline: Deadline) -> bytes | None:
        """Return the next command line, or None at end of stream (or once dropped as idle).

        Once a command's first byte arrived the rest must follow within
        ``read_timeout``; a binary request (its first byte) is answered and dropped.
        """
        deadline.set(self.idle_timeout)  # memcached's idle_timeout closes without a word
        first = await reader.read(1)
        deadline.clear()
        if not first:
            return None
        if first == b"\n":
            return first
        if first[0] == parser.BINARY_REQUEST:
            raise Hangup(await self._binary_refusal(reader, first))
        deadline.set(self.read_timeout, parser.BAD_FORMAT)
        try:
            return first + await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise Hangup(parser.LINE_TOO_LONG) from None
        except asyncio.IncompleteReadError:
            return None  # gone (or dropped) mid-line: nothing to run
        finally:
            deadline.clear()

    async def _binary_refusal(self, reader: asyncio.StreamReader, first: bytes) -> bytes:
        """Return the reply to a binary request: "unknown command" once its header is in."""
        try:
            async with asyncio.timeout(BINARY_HEADER_WAIT):
                return parser.binary_refusal(first + await reader.readexactly(parser.BINARY_HEADER.size - 1))
        except (TimeoutError, asyncio.IncompleteReadError):
            return b""  # not even a header: just hang up

    async def _read_block(self, reader: asyncio.StreamReader, deadline: Deadline, length: int) -> bytes:
        """Return a data block; refuse an oversized (swallowed) or unterminated one."""
        if length > self.item_size_max:
            await self._swallow(reader, deadline, length + 2)
            raise parser.ProtocolError(parser.TOO_LARGE)
        deadline.set(self.read_timeout, parser.BAD_CHUNK)
        try:
            block = await reader.readexactly(length + 2)
        finally:
            deadline.clear()
        if not block.endswith(b"\r\n"):
            raise parser.ProtocolError(parser.BAD_CHUNK)
        return block[:-2]

    async def _swallow(self, reader: asyncio.StreamReader, deadline: Deadline, remaining: int) -> None:
        """Discard an oversized value as it arrives, never holding it in memory."""
        try:
            while remaining > 0:
                deadline.set(self.read_timeout, parser.TOO_LARGE)  # per chunk, as it arrives
                chunk = await reader.read(min(remaining, SWALLOW_CHUNK))
                if not chunk:
                    raise asyncio.IncompleteReadError(b"", remaining)
                remaining -= len(chunk)
        finally:
            deadline.clear()


async def serve(ready=None, stop: asyncio.Event | None = None, **options) -> None:
    """Run a Server until ``stop`` is set (forever when None); ``ready(server)`` once listening."""
    server = Server(**options)
    await server.start()
    if ready is not None:
        ready(server)
    try:
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        await server.close()
