"""A loopback TCP port that forwards to a server: a virtual IP that a
failover moves to another server, or a link that a test cuts.

Sockets are only shut down from outside the threads that use them (which
wakes those threads); each is closed once, by the last of its pair's two
pump threads, so no thread ever uses a descriptor number the process has
meanwhile given to another connection.
"""

from __future__ import annotations

import socket
import threading

from tests.faults.servers import free_port


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket):
        self.sockets, self.running, self.lock = (client, upstream), 2, threading.Lock()

    def shut(self) -> None:
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked in recv()
            except OSError:
                pass

    def pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        self.shut()
        with self.lock:
            self.running -= 1
            last = not self.running
        if last:
            for sock in self.sockets:
                sock.close()


class Forwarder:
    def __init__(self, target_port: int):
        self.port, self.target = free_port(), target_port
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._cut = False
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # shut down
            with self._lock:
                target, cut = self.target, self._cut
            try:
                if cut:
                    raise OSError("cut")
                upstream = socket.create_connection(("127.0.0.1", target), timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.append(pair)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=pair.pump, args=(source, sink), daemon=True).start()

    def _drop_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.shut()

    def move_to(self, port: int) -> None:
        """Send new connections to ``port``; drop the current ones (as a moved IP does)."""
        with self._lock:
            self.target = port
        self._drop_all()

    def cut(self) -> None:
        """Drop every connection and refuse new ones (a partitioned link)."""
        with self._lock:
            self._cut = True
        self._drop_all()

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self._acceptor.join(timeout=5)
        self._listener.close()
        self._drop_all()
