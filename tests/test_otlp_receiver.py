"""The embedded OTLP/HTTP receiver, driven by the real OTLP exporter and by plain HTTP requests.

Each test here talks to a receiver process of its own module (not the session-wide shared one),
so counts start from zero and nothing leaks into other tests.
"""

from __future__ import annotations

import gc
import gzip
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator

import psutil
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from pytest_otel_overhead.otel import receiver as receiver_module
from pytest_otel_overhead.otel.receiver import MAX_BODY_BYTES, PIPELINE_HEADER, Receiver, ReceiverError, ReceiverStats


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    started = Receiver.start()
    yield started
    started.stop()


def post(receiver: Receiver, tag: str, body: bytes = b"", path: str = "/v1/traces") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=30)
    try:
        connection.request(
            "POST", path, body=body, headers={"Content-Type": "application/x-protobuf", PIPELINE_HEADER: tag}
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def send_spans(receiver: Receiver, tag: str, compression: Compression, count: int) -> None:
    """``count`` spans through the real exporter and a batch processor, then a flush."""
    exporter = OTLPSpanExporter(
        endpoint=receiver.endpoint + "/v1/traces", headers={PIPELINE_HEADER: tag}, compression=compression, timeout=30
    )
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=100))
    tracer = provider.get_tracer("shop")
    for i in range(count):
        with tracer.start_as_current_span("checkout", attributes={"order": i, "shop.region": "eu-central"}):
            pass
    provider.force_flush()
    provider.shutdown()


def test_the_real_exporter_delivers_every_span(receiver: Receiver) -> None:
    send_spans(receiver, "every-span", Compression.NoCompression, 250)
    stats = receiver.stats("every-span")["traces"]
    assert stats.spans == 250
    assert stats.requests == 3  # batches of 100
    assert stats.rejected == stats.malformed == 0
    assert stats.bytes_wire == stats.bytes_raw > 250 * 20


def test_gzip_sends_fewer_bytes_for_the_same_spans(receiver: Receiver) -> None:
    send_spans(receiver, "plain", Compression.NoCompression, 400)
    send_spans(receiver, "gzip", Compression.Gzip, 400)
    plain, gzip = receiver.stats("plain")["traces"], receiver.stats("gzip")["traces"]
    assert plain.spans == gzip.spans == 400
    assert gzip.bytes_raw == pytest.approx(plain.bytes_raw, rel=0.02)  # same payloads, decompressed
    assert gzip.bytes_wire < 0.7 * plain.bytes_wire  # typically about 0.4


def test_errors_are_spread_evenly_and_repeat(receiver: Receiver) -> None:
    receiver.configure("half", error_rate=0.5)
    receiver.configure("quarter", error_rate=0.25)
    receiver.configure("down", error_rate=1.0)
    assert [post(receiver, "half") for _ in range(4)] == [503, 200, 503, 200]
    assert [post(receiver, "quarter") for _ in range(8)] == [503, 200, 200, 200, 503, 200, 200, 200]
    assert [post(receiver, "down") for _ in range(3)] == [503, 503, 503]
    assert receiver.stats("half")["traces"] == ReceiverStats(requests=4, rejected=2)


def test_latency_delays_every_answer(receiver: Receiver) -> None:
    receiver.configure("slow", latency_s=0.05)
    started = time.perf_counter()
    assert post(receiver, "slow") == 200
    assert time.perf_counter() - started >= 0.05  # the receiver sleeps that long before answering


def test_undecodable_payloads_and_unknown_paths(receiver: Receiver) -> None:
    assert post(receiver, "junk", b"\xff\xff\xff not protobuf") == 400
    assert receiver.stats("junk")["traces"].malformed == 1
    assert post(receiver, "junk", b"", path="/v1/profiles") == 404
    valid = ExportTraceServiceRequest().SerializeToString()
    assert post(receiver, "junk", valid) == 200


def test_a_released_tag_starts_again_from_zero(receiver: Receiver) -> None:
    receiver.configure("once", error_rate=1.0)
    assert post(receiver, "once") == 503
    receiver.release("once")
    assert receiver.stats("once") == {}
    assert post(receiver, "once") == 200  # the behaviour went with it


def test_it_listens_on_the_loopback_interface_only(receiver: Receiver) -> None:
    assert receiver.endpoint == f"http://127.0.0.1:{receiver.port}"
    process = psutil.Process(receiver.pid)
    connections = getattr(process, "net_connections", None) or process.connections  # psutil 6 renamed it
    listening = [c for c in connections(kind="inet") if c.status == "LISTEN"]
    assert [(c.laddr.ip, c.laddr.port) for c in listening] == [("127.0.0.1", receiver.port)]


def _footprint() -> tuple[set[int], int, int]:
    # Garbage left by earlier tests (a socket or pipe in a reference cycle) is closed whenever the
    # collector happens to run, perhaps between two footprints: collect it first, so the figures
    # move only with what the code under test opens and closes (a leak it keeps referenced stays).
    gc.collect()
    me = psutil.Process()
    return {child.pid for child in me.children(recursive=True)}, me.num_fds(), threading.active_count()


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(5)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_stopping_leaves_no_process_port_thread_or_file_behind() -> None:
    before = _footprint()
    started = Receiver.start()
    assert started.running and started.pid in _footprint()[0]
    assert post(started, "x") == 200
    started.stop()
    assert not started.running
    assert _refused(started.port)
    assert _footprint() == before


def test_the_shared_receiver_starts_on_first_use_and_again_after_dying() -> None:
    receiver_module.stop_shared_receiver()
    before = _footprint()
    first = receiver_module.shared_receiver()
    assert receiver_module.shared_receiver() is first
    psutil.Process(first.pid).kill()
    psutil.Process(first.pid).wait(timeout=30)
    second = receiver_module.shared_receiver()
    assert second is not first and second.running
    receiver_module.stop_shared_receiver()
    receiver_module.stop_shared_receiver()  # twice is fine
    assert _refused(second.port)
    assert _footprint() == before


def test_the_receiver_exits_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pytest_otel_overhead.otel.receiver import Receiver; "
            "print(Receiver.start().pid, flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    child = psutil.Process(child_pid)
    parent.kill()
    parent.wait()
    parent.stdout.close()
    # Orphaned, it sees its stdin close and exits; init reaps it.
    _, alive = psutil.wait_procs([child], timeout=30)
    assert alive == [], "the receiver outlived its parent"


def test_a_receiver_that_cannot_start_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _footprint()
    monkeypatch.setattr(sys, "executable", os.path.realpath("/bin/false"))
    with pytest.raises(ReceiverError, match=r"^the embedded OTLP receiver did not start: "):
        Receiver.start(timeout=30)
    assert _footprint() == before


# -- bodies that are too large ------------------------------------------------------------------


def _peak_rss(pid: int) -> int:
    """Highest resident size the process ever had (VmHWM): a request's peak, even after it is freed."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM line")


def _gzip_bomb(inflated_mib: int) -> bytes:
    """Gzip members of 1 MiB of zeros each, one after another: about 1 KiB sent per MiB inflated."""
    return gzip.compress(bytes(1 << 20), compresslevel=9) * inflated_mib


def _deflate_bomb(inflated_mib: int) -> bytes:
    """One zlib stream of zeros."""
    packer = zlib.compressobj(1)
    zeros = bytes(1 << 20)
    return b"".join(packer.compress(zeros) for _ in range(inflated_mib)) + packer.flush()


def post_encoded(receiver: Receiver, tag: str, body: bytes, encoding: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=60)
    try:
        headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": encoding, PIPELINE_HEADER: tag}
        connection.request("POST", "/v1/traces", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _spans(count: int) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for i in range(count):
        span = scope.spans.add()
        span.name = f"span-{i}"
        span.trace_id = bytes(range(16))
        span.span_id = bytes(range(8))
    return bytes(request.SerializeToString())


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="the peak resident size is read from /proc")
def test_a_gzip_bomb_is_refused_with_413_and_memory_stays_small() -> None:
    started = Receiver.start()
    try:
        bomb = _gzip_bomb(1024)  # 1 GiB once inflated, about 1 MiB sent
        assert len(bomb) < 2 * 1024 * 1024
        assert post_encoded(started, "bomb", bomb, "gzip") == 413
        # Inflating it whole took 1 GiB; held to the cap, the receiver stays far below that.
        assert _peak_rss(started.pid) < 256 * 1024 * 1024
        assert started.stats("bomb")["traces"].malformed == 1
        assert post_encoded(started, "after", gzip.compress(_spans(3)), "gzip") == 200, "it keeps serving"
        assert started.stats("after")["traces"].spans == 3
    finally:
        started.stop()


def test_a_deflate_bomb_is_refused_with_413(receiver: Receiver) -> None:
    bomb = _deflate_bomb(MAX_BODY_BYTES // (1 << 20) + 1)
    assert post_encoded(receiver, "deflate-bomb", bomb, "deflate") == 413
    assert post_encoded(receiver, "deflate-ok", zlib.compress(_spans(2)), "deflate") == 200
    assert receiver.stats("deflate-ok")["traces"].spans == 2


def test_gzip_members_one_after_another_are_one_body(receiver: Receiver) -> None:
    payload = _spans(5)
    half = len(payload) // 2
    body = gzip.compress(payload[:half]) + gzip.compress(payload[half:]) + bytes(8)  # zero padding is allowed
    assert post_encoded(receiver, "members", body, "gzip") == 200
    assert receiver.stats("members")["traces"].spans == 5
    assert post_encoded(receiver, "members", gzip.compress(payload)[:-6], "gzip") == 400  # truncated


def _raw_request(receiver: Receiver, length: str) -> tuple[bytes, bytes]:
    """Headers only, claiming a body of ``length``: the status line, and what the server sends after its answer."""
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=30) as connection:
        connection.sendall(f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode("ascii"))
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = connection.recv(4096)
            assert chunk, "the connection closed without an answer"
            answer += chunk
        rest = answer.split(b"\r\n\r\n", 1)[1]
        while chunk := connection.recv(4096):  # the server closes the connection: recv returns b""
            rest += chunk
        return answer.split(b"\r\n", 1)[0], rest


def test_a_declared_length_above_the_cap_is_refused_without_reading_it(receiver: Receiver) -> None:
    status, rest = _raw_request(receiver, str(MAX_BODY_BYTES + 1))
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert rest == b""  # and the connection is closed: the unread body cannot be taken for a request
    assert _raw_request(receiver, "9" * 5000)[0].startswith(b"HTTP/1.1 413")
    assert _raw_request(receiver, "twelve")[0].startswith(b"HTTP/1.1 400")
    assert _raw_request(receiver, "-1")[0].startswith(b"HTTP/1.1 400")
    assert post(receiver, "still-serving") == 200
