"""One memcached round trip with the other cores idle, and with one of them busy.

On a virtual machine a core that has nothing to do halts, and waking it
(for memcached's thread, then for the client's) can cost more than the
round trip itself. Single-threaded latency ratios (a hit against a raw
``cache.get``) then measure the machine's idle states as much as the
code: read them beside this. It times the two reads a pk hit and a raw
read are made of (a ``get`` of 4 keys and one of 1 key, raw socket,
pymemcache and pylibmc) against the memcached of the test settings, first
with nothing else running, then with one busy-looping process beside it
(bounded to the measurement).

    .venv/bin/python bench/idle_cores.py [HOST:PORT]
"""

from __future__ import annotations

import multiprocessing
import socket
import sys
import time

import pylibmc
import pymemcache

OPS, ROUNDS = 3000, 3
KEYS = [f"cachelayer-bench-idle-{i}" for i in range(4)]
VALUE = b"x" * 300  # about a row's payload; the counters are shorter


def best_us(call) -> float:
    """The best of ROUNDS rounds, in microseconds a call (the least disturbed)."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(OPS):
            call()
        best = min(best, (time.perf_counter() - started) / OPS * 1e6)
    return best


def raw_get(sock: socket.socket, keys: list[str]):
    request = ("get " + " ".join(keys) + "\r\n").encode()

    def call():
        sock.sendall(request)
        reply = sock.recv(65536)
        while not reply.endswith(b"END\r\n"):
            reply += sock.recv(65536)

    return call


def measure(host: str, port: int) -> dict[str, float]:
    libmc = pylibmc.Client([f"{host}:{port}"], behaviors={"tcp_nodelay": True})
    pymc = pymemcache.Client((host, port), no_delay=True)
    for key in KEYS:
        pymc.set(key, VALUE)
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return {
            "socket, 1 key": best_us(raw_get(sock, KEYS[:1])),
            "socket, 4 keys": best_us(raw_get(sock, KEYS)),
            "pymemcache get": best_us(lambda: pymc.get(KEYS[0])),
            "pymemcache get_many(4)": best_us(lambda: pymc.get_many(KEYS)),
            "pylibmc get": best_us(lambda: libmc.get(KEYS[0])),
            "pylibmc get_multi(4)": best_us(lambda: libmc.get_multi(KEYS)),
        }
    finally:
        sock.close()
        pymc.delete_many(KEYS)


def spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def main() -> None:
    host, _, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:11211").rpartition(":")
    idle = measure(host, int(port))
    started = time.monotonic()
    busy_neighbour = multiprocessing.Process(target=spin, args=(60.0,), daemon=True)
    busy_neighbour.start()
    try:
        busy = measure(host, int(port))
    finally:
        busy_neighbour.terminate()
        busy_neighbour.join(timeout=10)
    print(f"| read (us a call, best of {ROUNDS} x {OPS}) | other cores idle | one core busy beside |")
    print("| --- | ---: | ---: |")
    for name, value in idle.items():
        print(f"| {name} | {value:.1f} | {busy[name]:.1f} |")
    print(f"(busy half took {time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
