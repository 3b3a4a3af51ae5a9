"""[connections] against the real server: oversized heads, slow and silent clients, too
many connections and streams get their answer early, and the server keeps serving.
Every client here is on loopback and bounded in count and time."""

import socket
import threading
import time

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.grpc import service_pb2 as pb2

BODY = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [7]}]}


@pytest.fixture
def limited(make_project, start_server):
    def start(*flags):
        return start_server(make_project(), *flags)

    return start


def raw_exchange(server, request: bytes, timeout=5.0) -> bytes:
    with socket.create_connection(
        ("127.0.0.1", server.http_port), timeout=timeout
    ) as s:
        s.sendall(request)
        return s.recv(65536)


def drip(s: socket.socket, chunk: bytes, seconds: float) -> None:
    """Send `chunk` ten times a second for `seconds`, or until the server cuts off."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            s.sendall(chunk)
            time.sleep(0.1)
    except OSError:
        pass


def still_serves(server):
    reply = httpx.post(f"{server.http}/v2/models/ModelService/infer", json=BODY)
    assert reply.status_code == 200


def test_heads_over_their_bounds_get_431_and_414(limited):
    server = limited("--max-header-size", "4096", "--max-headers", "20",
                     "--max-url-length", "512")  # fmt: skip
    live = server.http + "/v2/health/live"
    big = httpx.get(live, headers={"X-Big": "a" * 5000})
    assert big.status_code == 431 and big.json() == {
        "error": "request headers exceed 4096 bytes"
    }
    many = httpx.get(live, headers={f"X-{i}": "v" for i in range(30)})
    assert many.status_code == 431 and "more than 20 request headers" in many.text
    long_url = httpx.get(server.http + "/v2/" + "a" * 600)
    assert long_url.status_code == 414 and "the URL exceeds 512 bytes" in long_url.text
    # A head that never ends is cut off at the bound, not buffered.
    answer = raw_exchange(server, b"GET / HTTP/1.1\r\nX-Endless: " + b"a" * 20000)
    assert answer.startswith(b"HTTP/1.1 431 ")
    still_serves(server)


def test_slow_and_silent_clients_are_cut_off(limited):
    server = limited("--header-timeout", "1", "--min-upload-rate", "1000")
    # Headers dripping in (slowloris): 408 after header_timeout.
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        drip(s, b"X-a: b\r\n", seconds=4)
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 3
    # A connection that sends nothing is closed.
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as s:
        started = time.monotonic()
        assert s.recv(100) == b""
        assert time.monotonic() - started < 3
    # A body at 10 bytes/s: 408 within one measuring window (5 s).
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=15) as s:
        s.sendall(b"POST /v2/models/ModelService/infer HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 100000\r\n\r\n")  # fmt: skip
        drip(s, b"x", seconds=12)
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"slower than 1000 bytes/s" in answer
    still_serves(server)


def test_past_max_connections_new_ones_are_refused_and_open_ones_served(limited):
    server = limited("--max-connections", "3")
    with httpx.Client(base_url=server.http) as first:
        assert first.get("/v2/health/live").status_code == 200
        held = [socket.create_connection(("127.0.0.1", server.http_port))
                for _ in range(2)]  # fmt: skip
        try:
            answer = raw_exchange(server, b"GET /v2/health/live HTTP/1.1\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 503 ")
            assert b'{"error": "too many connections (3); retry later"}' in answer
            assert first.get("/v2/health/live").status_code == 200  # still served
        finally:
            for s in held:
                s.close()
    time.sleep(0.2)
    still_serves(server)

    channels = [grpc.insecure_channel(server.grpc,
                                      options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(4)]  # fmt: skip
    outcomes = []
    for channel in channels:
        try:
            health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
            outcomes.append("ok")
        except grpc.RpcError as error:
            outcomes.append(error.code())
    for channel in channels:
        channel.close()
    assert outcomes[:3] == ["ok"] * 3
    assert outcomes[3] == grpc.StatusCode.UNAVAILABLE


def test_idle_keep_alive_connections_are_closed(limited):
    server = limited("--idle-timeout", "1")
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b'{"live":true}'):  # head and body may come apart
            answer += s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        assert s.recv(100) == b""  # closed by the server
        assert time.monotonic() - started < 3


def stream_method(channel):
    return channel.stream_stream(
        "/inference.GRPCInferenceService/ModelStreamInfer",
        request_serializer=pb2.ModelInferRequest.SerializeToString,
        response_deserializer=pb2.ModelStreamInferResponse.FromString,
    )


def one_message_then_silence(until: threading.Event):
    """A stream's requests: one message, then nothing until `until` (at most 20 s)."""
    request = pb2.ModelInferRequest(model_name="ModelService")
    request.inputs.add(
        name="x", datatype="INT32", shape=[1]
    ).contents.int_contents.append(1)
    yield request
    until.wait(20)


def test_grpc_streams_per_connection_are_bounded(limited):
    server = limited("--max-streams-per-connection", "2")
    channel = grpc.insecure_channel(server.grpc)
    stream = stream_method(channel)
    release = threading.Event()
    open_streams = [
        stream(one_message_then_silence(release), timeout=30) for _ in range(2)
    ]
    for replies in open_streams:
        assert not next(replies).error_message
    third = stream(one_message_then_silence(release), timeout=30)
    waiting = threading.Thread(target=lambda: outcome.append(next(third)))
    outcome: list = []
    waiting.start()
    waiting.join(1.5)
    assert outcome == []  # waits for a place on the connection
    release.set()
    waiting.join(20)
    assert outcome and not outcome[0].error_message
    channel.close()


def test_an_idle_grpc_stream_is_ended_and_frees_its_place(limited):
    server = limited("--idle-timeout", "1", "--max-streams-per-connection", "1")
    channel = grpc.insecure_channel(server.grpc)
    stream = stream_method(channel)
    silent = threading.Event()

    replies = stream(one_message_then_silence(silent), timeout=30)
    assert not next(replies).error_message
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as ended:
        next(replies)
    assert ended.value.code() == grpc.StatusCode.CANCELLED
    assert time.monotonic() - started < 4
    # Its place on the connection is free again.
    again = stream(one_message_then_silence(silent), timeout=30)
    assert not next(again).error_message
    silent.set()
    channel.close()
