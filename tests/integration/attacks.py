"""Tools for attacking the real ``churnml serve`` over 127.0.0.1: raw HTTP/1.1 on a socket
(to send what urllib refuses to: huge heads, chunked bodies, pipelined floods), and the
worker processes of a server (to read their memory)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import psutil


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def raw_exchange(url: str, request: bytes, *, timeout: float = 30) -> tuple[int, bytes]:
    """Send ``request`` as it is, read until the server closes or answers whole: (status,
    the whole response). A server that closes without answering gives status 0."""
    with socket.create_connection(address(url), timeout=timeout) as conn:
        try:
            conn.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        data = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            data += chunk
            if _complete(data):
                break
    if not data.startswith(b"HTTP/1.1 "):
        return 0, data
    return int(data[9:12]), data


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def pipelined_gets(url: str, paths: list[str], *, batch: int = 50) -> dict[int, int]:
    """GET every path on one keep-alive connection, ``batch`` requests in flight at a
    time; returns how many answers had each status."""
    statuses: dict[int, int] = {}
    with socket.create_connection(address(url), timeout=60) as conn:
        for start in range(0, len(paths), batch):
            chunk = paths[start : start + batch]
            conn.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for p in chunk))
            buffer = b""
            while buffer.count(b"HTTP/1.1 ") < len(chunk) or not _all_bodies(buffer):
                received = conn.recv(262144)
                if not received:
                    raise ConnectionError("the server closed a keep-alive connection")
                buffer += received
            for piece in buffer.split(b"HTTP/1.1 ")[1:]:
                status = int(piece[:3])
                statuses[status] = statuses.get(status, 0) + 1
    return statuses


def _all_bodies(buffer: bytes) -> bool:
    """The last response of a pipelined batch has its whole body."""
    last = buffer.rfind(b"HTTP/1.1 ")
    return _complete(buffer[last:])


def worker_processes(port: int) -> list[psutil.Process]:
    """The BentoML worker processes of the ``churnml serve --port PORT`` running here."""
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "serve" in cmdline and "--port" in cmdline and str(port) in cmdline:
            return [
                child
                for child in process.children(recursive=True)
                if "_bentoml_impl.worker.service" in " ".join(child.cmdline())
            ]
    return []


def rss_mb(processes: list[psutil.Process]) -> float:
    return sum(p.memory_info().rss for p in processes) / 2**20
