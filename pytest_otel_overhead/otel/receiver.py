"""An OTLP/HTTP receiver on the loopback interface, for ``exporter="otlp"`` without an ``endpoint``.

It runs in a process of its own: decoding protobuf and decompressing payloads is the collector's
work, and the engine charges the CPU time of every thread of the test process to the arm that
runs, so a receiver thread inside that process would count as telemetry overhead.

The receiver listens on 127.0.0.1 only, on a port the OS picks, and answers OTLP/HTTP as a collector
does (HTTP/1.1 keep-alive, protobuf bodies, gzip or deflate). Each exporting pipeline sends a
header naming itself; per name the receiver counts requests, spans, metric points, log records and
bytes on the wire and after decompression, and applies that pipeline's backend behaviour: a delay
before every answer, and a share of requests answered 503, spread evenly (the first one fails) so
that runs repeat.

The parent starts it lazily (:func:`shared_receiver`) and stops it with :func:`stop_shared_receiver`
at the end of the session (and at exit, as a fallback). The child also exits when its stdin closes,
so it cannot outlive a parent that was killed.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import math
import os
import selectors
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_BODY_BYTES",
    "PIPELINE_HEADER",
    "Receiver",
    "ReceiverError",
    "ReceiverStats",
    "shared_receiver",
    "stop_shared_receiver",
]

HOST = "127.0.0.1"
PIPELINE_HEADER = "x-otel-overhead-pipeline"
CONTROL_PATH = "/_otel_overhead/"
START_TIMEOUT_S = 60.0  # a cold interpreter importing protobuf on a loaded 2-core runner
CONTROL_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
MAX_BODY_BYTES = 64 * 1024 * 1024
"""Largest request body accepted, as sent and after decompression; a larger one is answered 413.

Exporters send batches of a few MiB at most. The cap bounds the receiver's memory: a small gzip
body can inflate a thousandfold, so bodies are decompressed step by step and given up on at the cap.
"""


class ReceiverError(RuntimeError):
    """The embedded receiver could not be started or did not answer."""


@dataclass(frozen=True)
class ReceiverStats:
    """What the receiver saw from one pipeline."""

    requests: int = 0
    rejected: int = 0  # answered 503 by the configured error rate
    malformed: int = 0
    spans: int = 0
    metric_points: int = 0
    log_records: int = 0
    bytes_wire: int = 0
    bytes_raw: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReceiverStats:
        return cls(**{name: int(data.get(name, 0)) for name in cls.__dataclass_fields__})


# --- The server, in the child process -------------------------------------------------------------


SIGNALS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}


class _Tag:
    """Behaviour of one pipeline (one header value) and its counters per signal."""

    def __init__(self) -> None:
        self.latency_s = 0.0
        self.error_rate = 0.0
        self.signals: dict[str, dict[str, int]] = {}

    def counts(self, signal: str) -> dict[str, int]:
        counts = self.signals.get(signal)
        if counts is None:
            counts = self.signals[signal] = dict.fromkeys(ReceiverStats.__dataclass_fields__, 0)
        return counts

    def should_reject(self, signal: str) -> bool:
        # Evenly spread: request n (from 0) fails when ceil((n+1)·rate) passes a whole number.
        n = self.counts(signal)["requests"]
        return math.ceil((n + 1) * self.error_rate - 1e-9) > math.ceil(n * self.error_rate - 1e-9)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tags: dict[str, _Tag] = {}

    def tag(self, name: str) -> _Tag:
        tag = self.tags.get(name)
        if tag is None:
            tag = self.tags[name] = _Tag()
        return tag


def _count_items(path: str, raw: bytes) -> dict[str, int]:
    # Imported here: the parent process never needs protobuf for the receiver.
    if path == "/v1/traces":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        traces = ExportTraceServiceRequest.FromString(raw)
        return {"spans": sum(len(ss.spans) for rs in traces.resource_spans for ss in rs.scope_spans)}
    if path == "/v1/metrics":
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

        metrics = ExportMetricsServiceRequest.FromString(raw)
        points = 0
        for rm in metrics.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    if kind is not None:
                        points += len(getattr(metric, kind).data_points)
        return {"metric_points": points}
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    logs = ExportLogsServiceRequest.FromString(raw)
    return {"log_records": sum(len(sl.log_records) for rl in logs.resource_logs for sl in rl.scope_logs)}


_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer around the deflate data


class _BodyTooLarge(ValueError):
    """A request body larger than ``MAX_BODY_BYTES`` once decompressed."""


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    """Decompress without ever holding more than ``limit + 1`` bytes of output.

    Gzip bodies may hold several members one after another (and zero padding), as ``gzip.decompress``
    accepts them; a zlib (deflate) body is one stream.
    """
    parts: list[bytes] = []
    size = 0
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits)
        part = inflater.decompress(rest, limit + 1 - size)
        size += len(part)
        if size > limit:
            raise _BodyTooLarge(f"more than {limit} bytes once decompressed")
        if not inflater.eof:
            raise ValueError("truncated compressed body")
        parts.append(part)
        rest = inflater.unused_data.lstrip(b"\0") if wbits == _GZIP_WBITS else b""
        if not rest:
            return b"".join(parts)


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return _inflate(body, _GZIP_WBITS, MAX_BODY_BYTES)
    if encoding == "deflate":
        return _inflate(body, zlib.MAX_WBITS, MAX_BODY_BYTES)
    if encoding in ("", "identity"):
        return body
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as exporters expect of a collector
    timeout = 120  # an idle keep-alive connection is closed after this long
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(
        self, status: int, body: bytes = b"", content_type: str = "application/x-protobuf", *, close: bool = False
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:  # the request's body was not read: the connection cannot carry another request
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes | None:
        """The request body, or ``None`` after answering a missing, malformed or too large length."""
        length = self.headers.get("Content-Length")
        if length is None:
            self._reply(411, close=True)
            return None
        length = length.strip()
        if not (length.isascii() and length.isdigit()):
            self._reply(400, close=True)
            return None
        if len(length) > len(str(MAX_BODY_BYTES)) or int(length) > MAX_BODY_BYTES:
            self._reply(413, close=True)
            return None
        return self.rfile.read(int(length))

    def do_POST(self) -> None:
        body = self._body()
        if body is None:
            return
        if self.path.startswith(CONTROL_PATH):
            self._control(self.path[len(CONTROL_PATH) :], json.loads(body or b"{}"))
            return
        signal = SIGNALS.get(self.path)
        if signal is None:
            self._reply(404)
            return
        state = self.server.state
        name = self.headers.get(PIPELINE_HEADER, "")
        with state.lock:
            tag = state.tag(name)
            reject = tag.should_reject(signal)
            counts = tag.counts(signal)
            counts["requests"] += 1
            counts["bytes_wire"] += len(body)
            latency = tag.latency_s
        try:
            raw = _decompress(body, self.headers.get("Content-Encoding", "").strip().lower())
            items = _count_items(self.path, raw)
        except Exception as error:  # a collector answers 400 to a payload it cannot decode, 413 to one too large
            with state.lock:
                counts["malformed"] += 1
            self._reply(413 if isinstance(error, _BodyTooLarge) else 400)
            return
        with state.lock:
            counts["bytes_raw"] += len(raw)  # with bytes_wire, before any wait: an exporter may give up waiting
        if latency > 0:
            time.sleep(latency)
        with state.lock:
            if reject:
                counts["rejected"] += 1
            else:
                for key, value in items.items():
                    counts[key] += value
        # An empty Export*ServiceResponse encodes to zero bytes.
        self._reply(503 if reject else 200)

    def _control(self, command: str, args: dict[str, Any]) -> None:
        state = self.server.state
        name = str(args.get("tag", ""))
        with state.lock:
            if command == "configure":
                tag = state.tag(name)
                tag.latency_s = float(args.get("latency_s", 0.0))
                tag.error_rate = float(args.get("error_rate", 0.0))
                answer: dict[str, Any] = {}
            elif command == "stats":
                answer = {signal: dict(counts) for signal, counts in state.tag(name).signals.items()}
            elif command == "release":
                state.tags.pop(name, None)
                answer = {}
            else:
                self._reply(404)
                return
        self._reply(200, json.dumps(answer).encode(), "application/json")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # the process exits right after; open keep-alive connections die with it

    def __init__(self) -> None:
        super().__init__((HOST, 0), _Handler)
        self.state = _State()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-request is no news; stderr must stay quiet


def _serve() -> None:
    server = _Server()

    def watch_parent() -> None:
        # stdin closes when the parent stops us or dies: either way, stop serving.
        sys.stdin.buffer.read()
        server.shutdown()

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    sys.stdout.write(f"listening {server.server_address[1]}\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


# --- The parent's handle ------------------------------------------------------------------------


class Receiver:
    """A running receiver process and its address."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self._process = process
        self.port = port

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    @classmethod
    def start(cls, timeout: float = START_TIMEOUT_S) -> Receiver:
        package_parent = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest_otel_overhead.otel.receiver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        assert process.stdout is not None
        line = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if selector.select(timeout):
                line = process.stdout.readline()
        words = line.decode(errors="replace").split()
        if len(words) == 2 and words[0] == "listening" and words[1].isdigit():
            return cls(process, int(words[1]))
        receiver = cls(process, 0)
        detail = receiver._stop(0.0).strip().splitlines()
        reason = detail[-1] if detail else f"no answer within {timeout:g} s"
        raise ReceiverError(f"the embedded OTLP receiver did not start: {reason}")

    def _call(self, command: str, **args: Any) -> dict[str, Any]:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=CONTROL_TIMEOUT_S)
        try:
            connection.request(
                "POST", CONTROL_PATH + command, body=json.dumps(args), headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            body = response.read()
        except OSError as error:
            raise ReceiverError(f"the embedded OTLP receiver did not answer: {error}") from None
        finally:
            connection.close()
        if response.status != 200:
            raise ReceiverError(f"the embedded OTLP receiver answered {response.status} to {command}")
        answer: dict[str, Any] = json.loads(body)
        return answer

    def configure(self, tag: str, *, latency_s: float = 0.0, error_rate: float = 0.0) -> None:
        self._call("configure", tag=tag, latency_s=latency_s, error_rate=error_rate)

    def stats(self, tag: str) -> dict[str, ReceiverStats]:
        """Per signal ("traces", "metrics", "logs") that was sent, what the receiver counted."""
        return {signal: ReceiverStats.from_dict(counts) for signal, counts in self._call("stats", tag=tag).items()}

    def release(self, tag: str) -> None:
        self._call("release", tag=tag)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        self._stop(timeout)

    def _stop(self, timeout: float) -> str:
        """Close stdin (the child's signal to exit), wait, kill if need be; return its stderr."""
        process = self._process
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
            process.stdin = None  # communicate() must not flush it again
        try:
            _, err = process.communicate(timeout=max(timeout, 0.01))
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        return (err or b"").decode(errors="replace")


_shared: Receiver | None = None
_shared_lock = threading.Lock()
_atexit_registered = False


def shared_receiver() -> Receiver:
    """The session's receiver, started on first use (and again if it has died)."""
    global _shared, _atexit_registered
    with _shared_lock:
        if _shared is None or not _shared.running:
            if _shared is not None:
                _shared.stop(0.0)
            _shared = Receiver.start()
            if not _atexit_registered:
                atexit.register(stop_shared_receiver)
                _atexit_registered = True
        return _shared


def stop_shared_receiver() -> None:
    """Stop the session's receiver if one runs; safe to call any number of times."""
    global _shared
    with _shared_lock:
        receiver, _shared = _shared, None
    if receiver is not None:
        receiver.stop()


if __name__ == "__main__":
    _serve()
