"""A fault-injecting HTTP proxy: put it between carebound and a FHIR server to test retries.

It forwards each request to the upstream server unless the schedule picks a fault for it:

========================  ==================================================================
fault                     what the client sees
========================  ==================================================================
``pass``                  the upstream's answer
``delay``                 the upstream's answer, ``delay_s`` late
``drop``                  the connection closed with no answer; the upstream never saw it
``error_500``             ``500`` (not forwarded)
``error_503``             ``503`` with ``Retry-After`` (not forwarded)
``too_many``              ``429`` with ``Retry-After`` (not forwarded)
``reset``                 forwarded (the upstream did the work), then the connection reset
                          half-way through the answer's body: a write whose reply is lost
========================  ==================================================================

The schedule is seeded, so a failing run replays exactly: request number ``n`` gets the same
fault for the same seed, whatever the timing. HTTP/1.1 is parsed with ``h11`` and the upstream is
reached with ``httpx``; the proxy runs its own event loop in a thread, so synchronous and async
tests use it alike::

    from carebound.testing import FaultProxy, FaultSchedule

    schedule = FaultSchedule(seed=7, rates={"error_503": 0.2, "reset": 0.1})
    with FaultProxy("http://127.0.0.1:8090", schedule) as proxy:
        ehr_base = f"{proxy.url}/ehr"   # point the connectors file here
        ...
    proxy.log                            # what each request got
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Self

import h11
import httpx

_MAX_BODY = 64 * 1024 * 1024
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
)


class Fault(StrEnum):
    """What the proxy does to one request."""

    PASS = "pass"
    DELAY = "delay"
    DROP = "drop"
    ERROR_500 = "error_500"
    ERROR_503 = "error_503"
    TOO_MANY = "too_many"
    RESET = "reset"


@dataclass(frozen=True)
class FaultSchedule:
    """Which fault request number ``n`` (from 0) gets: a script first, then seeded chance.

    ``rates`` maps faults to probabilities (their sum at most 1; the rest passes). ``script``
    fixes the first requests' faults, in order, before the rates apply.
    """

    seed: int = 0
    """Seed of the per-request draw: the same seed gives the same faults."""
    rates: Mapping[Fault | str, float] = field(default_factory=dict)
    """Probability of each fault per request."""
    script: Sequence[Fault | str] = ()
    """Faults of the first requests, in order (then ``rates``)."""
    delay_s: float = 0.2
    """How late a ``delay`` answer comes."""
    retry_after_s: int = 1
    """``Retry-After`` seconds sent with ``503`` and ``429``."""
    latency_s: float = 0.0
    """Latency added to every forwarded request (a slow network), faults or not."""

    def __post_init__(self) -> None:
        total = 0.0
        for name, rate in self.rates.items():
            Fault(name)  # an unknown name fails here, naming itself
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate of {name} must be within 0..1, got {rate}")
            total += rate
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault rates add up to {total:.3f}; at most 1 (the rest passes)")
        for name in self.script:
            Fault(name)

    def fault_for(self, n: int) -> Fault:
        """The fault of request number ``n``."""
        if n < len(self.script):
            return Fault(self.script[n])
        draw = random.Random(f"{self.seed}:{n}").random()
        for name, rate in sorted(self.rates.items(), key=lambda item: str(item[0])):
            if draw < rate:
                return Fault(name)
            draw -= rate
        return Fault.PASS


@dataclass(frozen=True)
class ProxiedRequest:
    """One request the proxy saw, and the fault it got."""

    n: int
    method: str
    target: str
    fault: Fault


class FaultProxy:
    """A reverse proxy to ``upstream`` that injects the schedule's faults (see module doc)."""

    def __init__(self, upstream: str, schedule: FaultSchedule | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.schedule = schedule or FaultSchedule()
        self.log: list[ProxiedRequest] = []
        """Every request seen, in arrival order."""
        self._count = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """The proxy's root URL: use it where the upstream's root URL would go."""
        if not self._port:
            raise RuntimeError("the proxy is not started: use it as a context manager or start()")
        return f"http://127.0.0.1:{self._port}"

    def set_schedule(self, schedule: FaultSchedule) -> None:
        """Use ``schedule`` from the next request on (numbering restarts at 0)."""
        with self._lock:
            self.schedule = schedule
            self._count = 0

    def start(self) -> None:
        """Listen on a free loopback port, in a thread of its own."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10) or not self._port:
            raise RuntimeError("the fault proxy did not start")

    def stop(self) -> None:
        """Stop listening and close every connection."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- inside the proxy's thread ---------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(60.0))
        self._server = loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, reuse_address=True)
        )
        self._port = int(self._server.sockets[0].getsockname()[1])
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._client is not None:
            await self._client.aclose()

    def _next(self, method: str, target: str) -> tuple[Fault, FaultSchedule]:
        with self._lock:
            n = self._count
            self._count += 1
            schedule = self.schedule
            fault = schedule.fault_for(n)
            self.log.append(ProxiedRequest(n, method, target, fault))
        return fault, schedule

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        self._writers.add(writer)
        try:
            while True:
                request = await self._read_request(conn, reader)
                if request is None:
                    return
                head, body = request
                keep_going = await self._answer(conn, writer, head, body)
                if not keep_going or conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            if not writer.is_closing():
                writer.close()

    @staticmethod
    async def _read_request(
        conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request, bytes] | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                if not data and head is None:
                    return None
                continue
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > _MAX_BODY:
                    raise h11.LocalProtocolError("request body too large", 413)
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                return head, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _answer(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, head: h11.Request, body: bytes
    ) -> bool:
        method = head.method.decode("ascii")
        target = head.target.decode("ascii")
        fault, schedule = self._next(method, target)
        if schedule.latency_s:
            await asyncio.sleep(schedule.latency_s)
        if fault is Fault.DROP:
            _abort(writer)
            return False
        if fault in {Fault.ERROR_500, Fault.ERROR_503, Fault.TOO_MANY}:
            status = {Fault.ERROR_500: 500, Fault.ERROR_503: 503, Fault.TOO_MANY: 429}[fault]
            extra = (
                [] if status == 500 else [(b"Retry-After", str(schedule.retry_after_s).encode())]
            )
            await _send(conn, writer, status, extra, _outcome(f"injected fault: {fault}"))
            return True
        if fault is Fault.DELAY:
            await asyncio.sleep(schedule.delay_s)
        assert self._client is not None
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in head.headers
            if name.decode("latin-1").lower() not in _HOP_BY_HOP
        ]
        try:
            upstream = await self._client.request(
                method, f"{self.upstream}{target}", headers=headers, content=body
            )
        except httpx.TransportError as err:
            await _send(
                conn, writer, 502, [], _outcome(f"upstream unreachable: {type(err).__name__}")
            )
            return True
        reply_headers = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in upstream.headers.multi_items()
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-encoding"
        ]
        if fault is Fault.RESET:
            content = upstream.content
            reply_headers.append((b"Content-Length", str(len(content)).encode()))
            writer.write(
                conn.send(h11.Response(status_code=upstream.status_code, headers=reply_headers))
            )
            writer.write(conn.send(h11.Data(data=content[: max(1, len(content) // 2)])))
            await writer.drain()
            _abort(writer)
            return False
        await _send(conn, writer, upstream.status_code, reply_headers, upstream.content)
        return True


async def _send(
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    status: int,
    headers: list[tuple[bytes, bytes]],
    content: bytes,
) -> None:
    headers = [*headers, (b"Content-Length", str(len(content)).encode())]
    if not any(name.lower() == b"content-type" for name, _ in headers):
        headers.append((b"Content-Type", b"application/fhir+json"))
    writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
    writer.write(conn.send(h11.Data(data=content)))
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()


def _outcome(text: str) -> bytes:
    return (
        b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient",'
        b'"details":{"text":"' + text.encode() + b'"}}]}'
    )


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), not a polite FIN: what a crashed peer looks like."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
