"""A loopback TCP port that forwards to a server: a virtual IP that a
failover moves to another server, or a link that a test cuts."""

from __future__ import annotations

import socket
import threading

from tests.faults.servers import free_port


class Forwarder:
    def __init__(self, target_port: int):
        self.port, self.target = free_port(), target_port
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
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
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            _shut(sock)

    def _drop_all(self) -> None:
        with self._lock:
            stale, self._open = self._open, []
        for sock in stale:
            _shut(sock)

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
        self._listener.close()
        self._drop_all()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked in recv()
    except OSError:
        pass
    sock.close()
