"""memcached ``get`` requests sent and answered as an event loop's own I/O.

cache_serve answers cache hits on its event loop. A blocking multi-get
there stops the loop for a whole round trip: no other client's command is
read, parsed or answered meanwhile. Here each loop keeps one connection per
server (an asyncio protocol): a multi-get is written and the loop moves on;
memcached answers a connection's requests in order, so the answers are
matched to their requests by position, and several can be in flight.

Every request must be answered within the socket timeout: one connection
timer, re-armed only when it fires, checks the oldest request (a timer per
request costs a heap push and a cancel each). A late or broken answer fails
every request of the connection with it and closes it: the next request
reconnects, and a half-read answer is never matched to another request.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque

from pymemcache.exceptions import MemcacheUnexpectedCloseError, MemcacheUnknownError

END = b"END\r\n"


class GetConnection(asyncio.Protocol):
    """One connection to one memcached server on which ``get`` requests are pipelined."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiting: deque[tuple[asyncio.Future, float]] = deque()  # (answer, deadline), oldest first
        self._buffer = b""
        self._found: dict[str, bytes] = {}  # the values of the oldest request read so far
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def get(self, request: bytes) -> asyncio.Future:
        """Send a ``get`` request; the future gets ``{key: value}`` of the keys found."""
        answer = asyncio.get_running_loop().create_future()
        assert self.transport is not None  # connected (connection_made ran)
        self.transport.write(request)
        self._waiting.append((answer, time.monotonic() + self.timeout))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.timeout, self._check)
        return answer

    def data_received(self, data: bytes) -> None:
        buffer, pos, found = self._buffer + data if self._buffer else data, 0, self._found
        try:
            while True:
                eol = buffer.find(b"\r\n", pos)
                if eol < 0:
                    break
                if buffer.startswith(b"VALUE ", pos):
                    _, key, _, size = buffer[pos:eol].split(b" ", 4)[:4]
                    end = eol + 2 + int(size)
                    if len(buffer) < end + 2:
                        break  # the rest of the value is still on its way
                    found[key.decode()] = buffer[eol + 2 : end]
                    pos = end + 2
                elif eol == pos + 3 and buffer.startswith(END, pos):
                    pos = eol + 2
                    answer, _ = self._waiting.popleft()
                    if not answer.done():
                        answer.set_result(found)
                    found = {}
                else:
                    raise MemcacheUnknownError(buffer[pos:eol][:64])
        except (MemcacheUnknownError, ValueError, IndexError) as exc:
            self._fail(exc if isinstance(exc, MemcacheUnknownError) else MemcacheUnknownError(repr(exc)))
            return
        self._buffer, self._found = buffer[pos:], found

    def connection_lost(self, exc) -> None:
        self._fail(exc or MemcacheUnexpectedCloseError())

    def _check(self) -> None:
        """Fail the connection when its oldest request is overdue; else look again when it will be."""
        self._timer = None
        if not self._waiting or self.closed:
            return
        late = self._waiting[0][1] - time.monotonic()
        if late <= 0:
            self._fail(TimeoutError(f"memcached did not answer within {self.timeout} s"))
        else:
            self._timer = asyncio.get_running_loop().call_later(late, self._check)

    def _fail(self, exc: BaseException) -> None:
        """Answer every waiting request with ``exc`` and close: the stream is out of step."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiting:
            answer, _ = self._waiting.popleft()
            if not answer.done():
                answer.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


class GetConnections:
    """Each event loop's connections to the servers of one adapter, opened on first use."""

    def __init__(self, connect_timeout: float, timeout: float, ssl=None):
        self.connect_timeout, self.timeout, self.ssl = connect_timeout, timeout, ssl
        # A loop's connections die with it (tests run several servers, a loop each).
        self._by_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def get(self, server: str, requests: list[bytes]) -> dict:
        """Send every request to ``server`` at once; return the keys found by all of them."""
        connection = await self._connection(server)
        found: dict = {}
        for answer in [connection.get(request) for request in requests]:
            found.update(await answer)
        return found

    async def _connection(self, server: str) -> GetConnection:
        loop = asyncio.get_running_loop()
        connections = self._by_loop.setdefault(loop, {})
        opened = connections.get(server)
        if isinstance(opened, GetConnection) and not opened.closed:
            return opened
        if not isinstance(opened, asyncio.Future):  # none yet, closed, or its connect failed
            opened = connections[server] = loop.create_task(self._open(loop, server))
            opened.add_done_callback(lambda task: self._opened(connections, server, task))
        return await asyncio.shield(opened)  # one connect for every request that waits for it

    async def _open(self, loop, server: str) -> GetConnection:
        host, _, port = server.rpartition(":")
        async with asyncio.timeout(self.connect_timeout):
            if server.startswith("unix:") or server.startswith("/"):
                _, connection = await loop.create_unix_connection(
                    lambda: GetConnection(self.timeout), server.removeprefix("unix:")
                )
            else:
                _, connection = await loop.create_connection(
                    lambda: GetConnection(self.timeout), host.strip("[]"), int(port), ssl=self.ssl
                )
        return connection

    @staticmethod
    def _opened(connections: dict, server: str, task: asyncio.Task) -> None:
        if connections.get(server) is not task:
            return
        if task.cancelled() or task.exception() is not None:
            del connections[server]  # the next request connects again
        else:
            connections[server] = task.result()
