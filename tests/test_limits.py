"""[connections] against the real server: oversized heads, slow and silent clients, too
many connections and streams get their answer early, and the server keeps serving.
Every client here is on loopback and bounded in count and time."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.grpc import service_pb2 as pb2

from conftest import model_infer
from taichu_runtime.proto import taichu_infer_pb2 as legacy_pb2

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


# -- memory and time a request takes once decoded (max_decoded_size) -------------------

SIZES = "/v2/models/SizeService/infer"


def process_tree_rss(pid: int) -> int:
    """Resident bytes of a process and its children (the supervisor and its worker)."""
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True
    ).stdout.split()
    total = 0
    for each in [pid, *map(int, children)]:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def strings_body(count: int) -> bytes:
    data = b",".join([b'"ab"'] * count)
    head = b'{"inputs":[{"name":"s","datatype":"BYTES","shape":[%d],"data":[' % count
    return head + data + b"]}]}"


def test_inputs_past_max_decoded_size_get_413_before_they_are_decoded(
    make_project, start_server
):
    """30 MB of short JSON strings would be 750 MB of Python objects: refused before
    the parse, the worker grows by little more than the body."""
    server = start_server(make_project("sizes"))
    before = process_tree_rss(server.process.pid)
    reply = httpx.post(
        server.http + SIZES,
        content=strings_body(6_000_000),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert reply.status_code == 413
    assert "max_decoded_size" in reply.json()["error"]
    assert process_tree_rss(server.process.pid) - before < 200 * 2**20
    # The same over gRPC: typed BYTES contents, and a 2.x json_param.
    with grpc.insecure_channel(server.grpc) as channel:
        infer = model_infer(channel)
        request = pb2.ModelInferRequest(model_name="SizeService")
        tensor = request.inputs.add(name="s", datatype="BYTES", shape=[2_000_000])
        tensor.contents.bytes_contents.extend([b"a"] * 2_000_000)
        with pytest.raises(grpc.RpcError) as refused:
            infer(request, timeout=30)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_decoded_size" in refused.value.details()
        legacy = legacy_pb2.ModelInferRequest(model_name="SizeService")
        legacy.parameters["p"].json_param = "[0" + ",0" * 2_000_000 + "]"
        with pytest.raises(grpc.RpcError) as refused:
            channel.unary_unary(
                "/taichu_infer.GRPCInferenceService/ModelInfer",
                request_serializer=legacy_pb2.ModelInferRequest.SerializeToString,
                response_deserializer=legacy_pb2.ModelInferResponse.FromString,
            )(legacy, timeout=30)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Binary tensors are read in place: 48 MB of FP32 takes nothing more.
    raw = np.zeros(12_000_000, dtype="<f4").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": [12_000_000],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()
    reply = httpx.post(
        server.http + SIZES,
        content=header + raw,
        headers={"inference-header-content-length": str(len(header))},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["outputs"][0]["data"] == [12_000_000]


def test_max_decoded_size_is_a_setting(make_project, start_server):
    server = start_server(make_project("sizes"), "--max-decoded-size", "1000")
    body = {
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [200], "data": [0.5] * 200}
        ]
    }
    reply = httpx.post(server.http + SIZES, json=body)
    assert reply.status_code == 413
    body["inputs"][0]["shape"] = [10]
    body["inputs"][0]["data"] = [0.5] * 10
    assert httpx.post(server.http + SIZES, json=body).status_code == 200


def test_health_probes_answer_at_once_while_large_bodies_are_decoded(
    make_project, start_server
):
    """JSON bodies of 450,000 numbers (9 MB, near what max_decoded_size lets through)
    keep arriving for 3 s; liveness probes meanwhile answer well under 100 ms."""
    server = start_server(make_project("sizes"))
    values = np.random.default_rng(0).random(450_000).astype("f4").tolist()
    body = json.dumps(
        {
            "inputs": [
                {"name": "x", "datatype": "FP32", "shape": [450_000], "data": values}
            ]
        }
    ).encode()
    stop = threading.Event()
    answered: list = []

    def send_large_bodies() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                reply = client.post(
                    server.http + SIZES,
                    content=body,
                    headers={"content-type": "application/json"},
                )
                answered.append(reply.status_code)

    senders = [threading.Thread(target=send_large_bodies) for _ in range(2)]
    for sender in senders:
        sender.start()
    slowest = 0.0
    with httpx.Client(timeout=5) as probe:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            started = time.perf_counter()
            assert probe.get(server.http + "/v2/health/live").status_code == 200
            slowest = max(slowest, time.perf_counter() - started)
            time.sleep(0.02)
    stop.set()
    for sender in senders:
        sender.join(30)
    assert answered and set(answered) == {200}
    assert slowest < 0.1, f"a probe took {slowest * 1000:.0f} ms"


# A client that opens streams of 64 KiB items, then never reads again (SIGSTOP):
# arguments: target, streams, the streams' mode.
STOPPING_CLIENT = """
import sys, grpc
from tritonclient.grpc import service_pb2 as pb2
request = pb2.ModelInferRequest(model_name="StreamingService")
request.inputs.add(name="x", datatype="INT32", shape=[1]).contents.int_contents.append(1)
request.parameters["mode"].string_param = sys.argv[3]
request.parameters["n"].int64_param = 100000
channels = [grpc.insecure_channel(sys.argv[1]) for _ in range(10)]
calls = [
    channels[i % 10].stream_stream(
        "/inference.GRPCInferenceService/ModelStreamInfer",
        request_serializer=pb2.ModelInferRequest.SerializeToString,
        response_deserializer=pb2.ModelStreamInferResponse.FromString,
    )(iter([request]), timeout=60)
    for i in range(int(sys.argv[2]))
]
print("open", flush=True)
sys.stdin.read()
"""


def test_streams_nobody_reads_hold_their_generator_and_free_their_memory(
    make_project, start_server
):
    """200 streams whose client stops reading: each generator is held to what the
    transport buffers; when the client dies, the worker gives the memory back."""
    server = start_server(make_project("streaming"))
    stats_body = {"parameters": {"mode": "stats"}}

    def produced() -> int:
        url = f"{server.http}/v2/models/StreamingService/infer"
        return httpx.post(url, json=stats_body).json()["parameters"]["produced_in_all"]

    start = process_tree_rss(server.process.pid)
    client = subprocess.Popen(
        [sys.executable, "-c", STOPPING_CLIENT, server.grpc, "200", "big"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert client.stdout.readline() == b"open\n"
        time.sleep(1)
        os.kill(client.pid, signal.SIGSTOP)
        time.sleep(1.5)
        held = process_tree_rss(server.process.pid)
        assert produced() < 200 * 40  # of 100,000 each
        time.sleep(1)
        assert produced() == produced()  # nothing more is pulled
    finally:
        client.kill()
        client.wait()
    time.sleep(3)
    after = process_tree_rss(server.process.pid)
    assert held - start < 200 * 2**20
    assert held - after > 0.6 * (held - start), (start, held, after)
    still = httpx.post(
        f"{server.http}/v2/models/StreamingService/infer", json=stats_body
    )
    assert still.status_code == 200


def test_large_grpc_calls_give_their_memory_back_once_over(limited):
    """The heap that large ModelInfer calls free is kept while they come (the next
    ones reuse it) and given back a moment after the last one."""
    server = limited()
    channel = grpc.insecure_channel(server.grpc)
    infer = channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer",
        request_serializer=pb2.ModelInferRequest.SerializeToString,
        response_deserializer=pb2.ModelInferResponse.FromString,
    )
    request = pb2.ModelInferRequest(model_name="ModelService")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 2**19])  # 2 MiB
    request.raw_input_contents.append(np.ones(2**19, np.float32).tobytes())
    assert infer(request, timeout=30).raw_output_contents
    time.sleep(1.5)
    start = process_tree_rss(server.process.pid)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: infer(request, timeout=30), range(200)))
    assert all(len(r.raw_output_contents[0]) == 2**21 for r in replies)
    time.sleep(3)
    after = process_tree_rss(server.process.pid)
    channel.close()
    assert after - start < 20 * 2**20, (start, after)
    still_serves(server)


# -- connection age and keepalive ------------------------------------------------------


def test_connections_older_than_max_connection_age_move_on(limited):
    """HTTP: closed once idle past the age. gRPC: the client is sent to a new
    connection and its calls go on working; a stream open past the age and the grace
    (shutdown_timeout) is ended."""
    server = limited("--max-connection-age", "1", "--shutdown-timeout", "1")
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        response = b""
        while not response.endswith(b'{"live":true}'):  # may come in two segments
            response += s.recv(65536)
        assert response.startswith(b"HTTP/1.1 200")
        time.sleep(2.5)
        assert s.recv(65536) == b""  # closed by the server
    channel = grpc.insecure_channel(server.grpc)
    live = channel.unary_unary(
        "/inference.GRPCInferenceService/ServerLive",
        request_serializer=pb2.ServerLiveRequest.SerializeToString,
        response_deserializer=pb2.ServerLiveResponse.FromString,
    )
    silent = threading.Event()
    replies = stream_method(channel)(one_message_then_silence(silent), timeout=30)
    assert not next(replies).error_message
    assert live(pb2.ServerLiveRequest(), timeout=5).live
    with pytest.raises(grpc.RpcError) as ended:
        next(replies)
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert live(pb2.ServerLiveRequest(), timeout=5).live  # on a new connection
    silent.set()
    channel.close()


def test_busy_http_clients_move_past_max_connection_age_without_an_error(limited):
    """A connection past its age is never closed under a client about to send: a busy
    one gets `connection: close` on its next answer, an idle one closes once it has
    been idle for a sweep."""
    server = limited("--max-connection-age", "1")
    errors: List[str] = []
    answered = 0

    async def keep_asking(client, until: float) -> None:
        nonlocal answered
        while time.monotonic() < until:
            try:
                reply = await client.get(server.http + "/v2/health/live")
                assert reply.status_code == 200
                answered += 1
            except httpx.TransportError as error:
                errors.append(repr(error))

    async def main() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            until = time.monotonic() + 4
            await asyncio.gather(*[keep_asking(client, until) for _ in range(8)])

    asyncio.run(main())
    assert not errors and answered > 500
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as s:
        closing = b""
        deadline = time.monotonic() + 5
        while b"connection: close" not in closing:
            assert time.monotonic() < deadline
            s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            closing = b""
            while not closing.endswith(b'{"live":true}'):
                closing += s.recv(65536)
        assert s.recv(65536) == b""  # and it closes after that answer


def h2_frames(s: socket.socket):
    """The HTTP/2 frames a server sends: (type, flags, payload)."""
    buffer = b""
    while True:
        while len(buffer) < 9:
            data = s.recv(65536)
            if not data:
                return
            buffer += data
        length = int.from_bytes(buffer[:3], "big")
        while len(buffer) < 9 + length:
            data = s.recv(65536)
            if not data:
                return
            buffer += data
        yield buffer[3], buffer[4], buffer[9 : 9 + length]
        buffer = buffer[9 + length :]


def test_a_grpc_client_that_pings_too_often_is_sent_away(limited):
    """Pings with no call open, 50 a second: after two strikes the server ends the
    connection with GOAWAY ENHANCE_YOUR_CALM, as gRPC's keepalive enforcement does."""
    server = limited()
    goaway, enhance_your_calm = 7, 11
    with socket.create_connection(("127.0.0.1", server.grpc_port), timeout=5) as s:
        s.sendall(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(9)[:3] + b"\x04" + bytes(5)
        )
        stop = threading.Event()

        def ping() -> None:
            for n in range(150):
                if stop.is_set():
                    return
                try:
                    s.sendall(
                        b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + n.to_bytes(8, "big")
                    )
                except OSError:
                    return
                time.sleep(0.02)

        pinger = threading.Thread(target=ping)
        pinger.start()
        codes = [
            int.from_bytes(payload[4:8], "big")
            for kind, _, payload in h2_frames(s)
            if kind == goaway
        ]
        stop.set()
        pinger.join()
    assert enhance_your_calm in codes
    still_serves(server)


# -- work nobody waits for -------------------------------------------------------------

FIXED = "/v2/models/FixedCostService/infer"


def runs(server) -> int:
    """How many requests the fixed-cost model ran, once its queue is empty."""
    reply = httpx.post(
        server.http + FIXED, json={"parameters": {"stats": True}}, timeout=30
    )
    return reply.json()["parameters"]["runs"]


def at_once(count: int, send) -> list:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: send(), range(count)))


def test_requests_whose_time_ran_out_in_the_queue_never_run(make_project, start_server):
    """Eight requests of 300 ms at once with request_timeout 0.5 s: the first two
    start in time, the six others get 504 while they wait and are dropped."""
    server = start_server(
        make_project("fixed_cost"), "--request-timeout", "0.5", env={"COST_MS": "300"}
    )

    def post():
        body = {"parameters": {"go": 1}}
        return httpx.post(server.http + FIXED, json=body, timeout=30).status_code

    statuses = at_once(8, post)
    assert statuses.count(200) >= 1 and statuses.count(504) >= 6
    assert runs(server) <= 2


def test_work_for_clients_that_left_is_dropped(make_project, start_server):
    """No request_timeout: gRPC calls whose deadline passed and HTTP clients that hung
    up while their request queued are not run either."""
    server = start_server(make_project("fixed_cost"), env={"COST_MS": "300"})
    channel = grpc.insecure_channel(server.grpc)
    infer = model_infer(channel)

    def call():
        request = pb2.ModelInferRequest(model_name="FixedCostService")
        request.parameters["go"].int64_param = 1
        try:
            infer(request, timeout=0.5)
            return "OK"
        except grpc.RpcError as error:
            return error.code().name

    codes = at_once(8, call)
    assert codes.count("DEADLINE_EXCEEDED") >= 6
    assert runs(server) <= 2
    channel.close()

    def hang_up():
        try:
            body = {"parameters": {"go": 1}}
            return httpx.post(server.http + FIXED, json=body, timeout=0.5).status_code
        except httpx.TimeoutException:
            return "gone"

    before = runs(server)
    assert at_once(8, hang_up).count("gone") >= 6
    assert runs(server) - before <= 2


def test_a_request_too_late_to_finish_in_time_is_answered_at_once(
    make_project, start_server
):
    """The model takes 300 ms; with 500 ms to answer, a request that waited 300 ms
    behind another cannot make it: it is not started, and its 504 comes at once. Alone
    in the queue it is always tried."""
    server = start_server(
        make_project("fixed_cost"), "--request-timeout", "0.5", env={"COST_MS": "300"}
    )

    def post():
        body = {"parameters": {"go": 1}}
        started = time.monotonic()
        reply = httpx.post(server.http + FIXED, json=body, timeout=30)
        return reply.status_code, time.monotonic() - started, reply.json()

    assert post()[0] == 200  # the model's typical time is known from now on
    answers = at_once(4, post)
    late = [a for a in answers if a[0] == 504 and "not started" in a[2]["error"]]
    assert len(late) >= 2
    assert all(seconds < 0.45 for _, seconds, _ in late)
    assert runs(server) <= 3
