"""Governance against the real server process: metrics, tracing (a real OTLP receiver),
request ids and logs, limits, token, TLS, probes, warm-up, crash restart, SIGTERM."""

import asyncio
import json
import math
import re
import signal
import ssl
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.grpc import service_pb2 as pb2

from conftest import Server, model_infer, self_signed

MODEL = "GovernedService"
BODY = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [7]}]}


def infer_url(server, model=MODEL):
    return f"{server.http}/v2/models/{model}/infer"


def with_parameters(**parameters):
    return {**BODY, "parameters": parameters}


def grpc_infer(server, metadata=None, timeout=10, **parameters):
    request = pb2.ModelInferRequest(model_name=MODEL)
    request.inputs.add(
        name="x", datatype="INT32", shape=[1]
    ).contents.int_contents.append(7)
    for key, value in parameters.items():
        if isinstance(value, float):
            request.parameters[key].double_param = value
        else:
            request.parameters[key].int64_param = value
    with grpc.insecure_channel(server.grpc) as channel:
        call = model_infer(channel)
        return call.with_call(request, metadata=metadata, timeout=timeout)


def metric_samples(server, headers=None):
    text = httpx.get(server.http + "/metrics", headers=headers).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            samples[key] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


@pytest.fixture
def governed(make_project, start_server):
    def start(*args, env=None, ready=True, config=None):
        """`config`: [limits] keys, written into the project's config.ini."""
        project = make_project("governed")
        if config:
            path = project / "config.ini"
            text = path.read_text()
            for key, value in config.items():
                text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
            path.write_text(text)
        return start_server(project, *args, env=env, ready=ready)

    return start


# -- metrics -------------------------------------------------------------------------------


def test_metrics_by_protocol_status_stage_and_stream(governed):
    server = governed()
    for _ in range(3):
        assert httpx.post(infer_url(server), json=BODY).status_code == 200
    assert httpx.post(infer_url(server), json={"inputs": "bad"}).status_code == 400
    failed = httpx.post(infer_url(server), json=with_parameters(fail=True))
    assert failed.status_code == 500
    for _ in range(2):
        grpc_infer(server)
    samples = metric_samples(server)
    base = {"model": MODEL}
    assert (
        value(samples, "taichu_requests_total", protocol="http", status="200", **base)
        == 3
    )
    assert (
        value(samples, "taichu_requests_total", protocol="http", status="400", **base)
        == 1
    )
    assert (
        value(samples, "taichu_requests_total", protocol="grpc", status="200", **base)
        == 2
    )
    assert (
        value(samples, "taichu_requests_total", protocol="http", status="500", **base)
        == 1
    )
    assert (
        value(samples, "taichu_request_duration_seconds_count", protocol="http", **base)
        == 5
    )
    # The failed request waited and was preprocessed; its failed hook and the one
    # after it are left out.
    for stage, count in (("preprocess", 6), ("inference", 5), ("postprocess", 5)):
        assert (
            value(samples, "taichu_stage_duration_seconds_count", stage=stage, **base)
            == count
        )
        total = value(samples, "taichu_stage_duration_seconds_sum", stage=stage, **base)
        assert math.isfinite(total) and total >= 0
    assert value(samples, "taichu_queue_wait_seconds_count", **base) == 6
    assert value(samples, "taichu_inflight_requests", **base) == 0


def test_histogram_buckets_and_the_inflight_gauge_while_requests_run(governed):
    """Values are recorded in bulk: each must still land in its own bucket."""
    server = governed()

    async def main():
        async with httpx.AsyncClient(timeout=30) as client:
            slow = [
                asyncio.ensure_future(
                    client.post(infer_url(server), json=with_parameters(delay=0.6))
                )
                for _ in range(3)
            ]
            await asyncio.sleep(0.3)
            during = metric_samples(server)
            fast = [await client.post(infer_url(server), json=BODY) for _ in range(4)]
            return during, await asyncio.gather(*slow), fast

    during, slow, fast = asyncio.run(main())
    assert [r.status_code for r in slow + fast] == [200] * 7
    assert value(during, "taichu_inflight_requests", model=MODEL) == 3
    after = metric_samples(server)
    assert value(after, "taichu_inflight_requests", model=MODEL) == 0
    stage = {"model": MODEL, "stage": "inference"}

    def bucket(le):
        return value(after, "taichu_stage_duration_seconds_bucket", le=le, **stage)

    assert bucket("0.25") == 4  # the fast ones
    assert bucket("0.5") == 4
    assert bucket("1.0") == 7  # cumulative: the slow ones too
    assert bucket("+Inf") == 7
    total = value(after, "taichu_stage_duration_seconds_sum", **stage)
    assert 3 * 0.6 <= total < 3 * 0.6 + 0.5
    latency = {"model": MODEL, "protocol": "http"}
    assert value(after, "taichu_request_duration_seconds_count", **latency) == 7
    assert (
        value(after, "taichu_request_duration_seconds_bucket", le="0.5", **latency) == 4
    )


def test_metrics_add_up_across_workers(governed):
    server = governed("--workers", "2")
    for _ in range(30):
        with httpx.Client() as client:  # a new connection each time: both workers serve
            reply = client.post(infer_url(server), json=BODY)
            assert reply.status_code == 200
    time.sleep(0.3)  # the other worker records its samples within 0.1 s
    samples = metric_samples(server)
    total = value(
        samples, "taichu_requests_total", model=MODEL, protocol="http", status="200"
    )
    assert total == 30


# -- tracing -------------------------------------------------------------------------------


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self):
        self.spans = []

    def Export(self, request, context):
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def otlp_receiver():
    receiver = Receiver()
    server = grpc.server(ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    receiver.endpoint = f"http://127.0.0.1:{port}"
    yield receiver
    server.stop(0)


def test_spans_continue_the_callers_trace(governed, otlp_receiver):
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    server = governed(env=env)
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    traceparent = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
    assert (
        httpx.post(infer_url(server), json=BODY, headers=traceparent).status_code == 200
    )
    grpc_trace, grpc_parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    grpc_infer(server, metadata=(("traceparent", f"00-{grpc_trace}-{grpc_parent}-01"),))

    def spans_of(trace_hex):
        return [s for s in otlp_receiver.spans if s.trace_id.hex() == trace_hex]

    deadline = time.monotonic() + 10
    while len(spans_of(trace_id)) < 4 or len(spans_of(grpc_trace)) < 4:
        assert time.monotonic() < deadline, [s.name for s in otlp_receiver.spans]
        time.sleep(0.1)
    for trace_hex, caller, protocol in (
        (trace_id, parent_id, "http"),
        (grpc_trace, grpc_parent, "grpc"),
    ):
        spans = {s.name: s for s in spans_of(trace_hex)}
        root = spans[f"{protocol} infer"]
        assert root.parent_span_id.hex() == caller
        assert root.kind == root.SPAN_KIND_SERVER
        for stage in ("preprocess", "inference", "postprocess"):
            assert spans[stage].parent_span_id == root.span_id, stage
    # With tracing on the hooks run another way (each in a span): the metrics must
    # still time them, and leave out a failed hook and the ones after it.
    failed = httpx.post(infer_url(server), json=with_parameters(fail=True))
    assert failed.status_code == 500
    samples = metric_samples(server)
    for stage, count in (("preprocess", 3), ("inference", 2), ("postprocess", 2)):
        labels = {"model": MODEL, "stage": stage}
        assert (
            value(samples, "taichu_stage_duration_seconds_count", **labels) == count
        ), stage
    assert value(samples, "taichu_queue_wait_seconds_count", model=MODEL) == 3


# -- request ids and logs --------------------------------------------------------------------


def test_request_ids_and_json_access_log(governed):
    server = governed(env={"TAICHU_JSON_LOGS": "true"})
    reply = httpx.post(
        infer_url(server), json=BODY, headers={"X-Request-Id": "abc-123"}
    )
    assert reply.headers["x-request-id"] == "abc-123"
    generated = httpx.post(infer_url(server), json=BODY).headers["x-request-id"]
    assert re.fullmatch("[0-9a-f]{32}", generated)
    again = httpx.post(infer_url(server), json=BODY).headers["x-request-id"]
    assert again != generated
    failed = httpx.post(
        infer_url(server), json={"inputs": "bad"}, headers={"X-Request-Id": "bad-1"}
    )
    assert failed.status_code == 400 and failed.headers["x-request-id"] == "bad-1"
    _, call = grpc_infer(server, metadata=(("x-request-id", "grpc-9"),))
    assert dict(call.trailing_metadata())["x-request-id"] == "grpc-9"
    time.sleep(0.3)
    lines = [
        json.loads(line) for line in server.log.splitlines() if line.startswith("{")
    ]
    access = {
        entry["request_id"]: entry
        for entry in lines
        if entry["logger"] == "taichu_runtime.access"
    }
    assert (
        access["abc-123"]["status"] == 200 and access["abc-123"]["protocol"] == "http"
    )
    assert access["abc-123"]["model"] == MODEL and access["abc-123"]["latency_ms"] > 0
    assert access["bad-1"]["status"] == 400
    assert access["grpc-9"]["protocol"] == "grpc"
    user = [entry for entry in lines if entry["logger"] == "customize_service"]
    assert {"abc-123", "grpc-9", generated} <= {entry["request_id"] for entry in user}


def test_text_access_lines_and_a_users_filter_on_them(make_project, start_server):
    # Access lines skip the LogRecord while logging is as the server set it up; a
    # filter the user adds must still see every line (here it drops gRPC ones).
    project = make_project("governed")
    service = project / "customize_service.py"
    service.write_text("import os\n" + service.read_text() + textwrap.dedent("""
            class DropGrpcLines(logging.Filter):
                def filter(self, record):
                    return getattr(record, "protocol", "") != "grpc"


            if os.environ.get("DROP_GRPC_ACCESS_LINES"):
                logging.getLogger("taichu_runtime.access").addFilter(DropGrpcLines())
            """))
    logs = {}
    for name, env in (("plain", {}), ("filtered", {"DROP_GRPC_ACCESS_LINES": "1"})):
        server = start_server(project, env=env)
        httpx.post(infer_url(server), json=BODY, headers={"X-Request-Id": f"{name}-h"})
        grpc_infer(server, metadata=(("x-request-id", f"{name}-g"),))
        time.sleep(0.3)
        logs[name] = server.log
        server.stop()

    line = next(
        line for line in logs["plain"].splitlines() if " plain-h taichu_r" in line
    )
    pattern = (
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO \[\d+\] plain-h "
        rf"taichu_runtime.access: http {MODEL} 200 \d+\.\d\dms"
    )
    assert re.fullmatch(pattern, line), line
    assert " plain-g taichu_runtime.access: grpc " in logs["plain"]
    assert " filtered-h taichu_runtime.access: http " in logs["filtered"]
    assert " filtered-g taichu_runtime.access" not in logs["filtered"]


# -- limits -----------------------------------------------------------------------------------


def test_queue_full_is_rejected_at_once_and_health_is_never_limited(governed):
    server = governed(config={"max_concurrent_requests": "1", "max_queue_size": "2"})

    async def main():
        async with httpx.AsyncClient(timeout=30) as client:
            calls = [
                client.post(infer_url(server), json=with_parameters(delay=0.5))
                for _ in range(6)
            ]
            tasks = [asyncio.ensure_future(c) for c in calls]
            await asyncio.sleep(0.2)
            health = await client.get(server.http + "/v2/health/ready")
            return await asyncio.gather(*tasks), health

    replies, health = asyncio.run(main())
    assert health.status_code == 200
    codes = sorted(r.status_code for r in replies)
    assert codes == [200, 200, 200, 429, 429, 429]
    rejected = [r for r in replies if r.status_code == 429][0]
    assert (
        rejected.headers["retry-after"] == "1"
        and "queue is full" in rejected.json()["error"]
    )
    samples = metric_samples(server)
    assert (
        value(
            samples, "taichu_rejected_requests_total", model=MODEL, reason="queue_full"
        )
        == 3
    )

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(grpc_infer, server, delay=0.5) for _ in range(6)]
        errors = [f.exception() for f in futures]
    exhausted = [e for e in errors if e is not None]
    assert len(exhausted) == 3
    assert all(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in exhausted)


def timed_grpc_infer(server, **parameters):
    """(seconds taken, status code) of one ModelInfer."""
    started = time.monotonic()
    try:
        grpc_infer(server, **parameters)
        code = grpc.StatusCode.OK
    except grpc.RpcError as error:
        code = error.code()
    return time.monotonic() - started, code


def test_grpc_calls_waiting_for_a_thread_count_towards_the_queue(governed):
    # One call in the model and 20 waiting: 8 call threads take 8 of them in, the other
    # 13 admitted wait in the call pool's queue; the 9 beyond are turned away at once.
    server = governed(config={"max_concurrent_requests": "1", "max_queue_size": "20"})
    with ThreadPoolExecutor(30) as pool:
        futures = [pool.submit(timed_grpc_infer, server, delay=0.4) for _ in range(30)]
        time.sleep(0.25)  # all have arrived, none has finished
        # Meanwhile: HTTP finds the queue full too; probes and metadata do not wait.
        late_http = httpx.post(infer_url(server), json=BODY, timeout=10)
        with grpc.insecure_channel(server.grpc) as channel:
            started = time.monotonic()
            health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            channel.unary_unary(
                "/inference.GRPCInferenceService/ServerReady",
                request_serializer=pb2.ServerReadyRequest.SerializeToString,
                response_deserializer=pb2.ServerReadyResponse.FromString,
            )(pb2.ServerReadyRequest(), timeout=5)
            probe_seconds = time.monotonic() - started
        results = [f.result() for f in futures]
    rejected = [seconds for seconds, code in results if code != grpc.StatusCode.OK]
    assert len(rejected) == 9
    assert all(
        code in (grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED)
        for _, code in results
    )
    assert max(rejected) < 1.0  # at once, not after their turn (21 x 0.4 s)
    assert late_http.status_code == 429
    assert probe_seconds < 1.0
    samples = metric_samples(server)
    assert (
        value(
            samples, "taichu_rejected_requests_total", model=MODEL, reason="queue_full"
        )
        == 10
    )


def test_request_timeout_counts_the_wait_for_a_grpc_thread(governed):
    server = governed(config={"max_concurrent_requests": "1", "request_timeout": "0.5"})
    with ThreadPoolExecutor(20) as pool:
        results = list(
            pool.map(lambda _: timed_grpc_infer(server, delay=0.2), range(20))
        )
    codes = [code for _, code in results]
    assert codes.count(grpc.StatusCode.OK) >= 1
    assert codes.count(grpc.StatusCode.DEADLINE_EXCEEDED) >= 15
    assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED}
    # Counted from arrival: a call that waited for a thread is not given 0.5 s more.
    assert max(seconds for seconds, _ in results) < 0.9


def test_request_timeout_and_grpc_deadline(governed):
    server = governed(config={"request_timeout": "0.3"})
    reply = httpx.post(infer_url(server), json=with_parameters(delay=1.0), timeout=10)
    assert reply.status_code == 504 and "0.3 s" in reply.json()["error"]
    with pytest.raises(grpc.RpcError) as raised:
        grpc_infer(server, delay=1.0)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    fast = governed()
    with pytest.raises(grpc.RpcError) as raised:
        grpc_infer(fast, timeout=0.3, delay=1.0)  # the client's own deadline
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert httpx.post(infer_url(server), json=BODY).status_code == 200


def test_max_qps(governed):
    server = governed(env={"TAICHU_MAX_QPS": "5"})
    with httpx.Client() as client:
        started = time.monotonic()
        codes = [
            client.post(infer_url(server), json=BODY).status_code for _ in range(20)
        ]
        elapsed = time.monotonic() - started
        assert all(
            client.get(server.http + "/v2/health/live").status_code == 200
            for _ in range(20)
        )
        assert client.get(server.http + "/metrics").status_code == 200
    # A burst of 5, then 5 per second.
    assert 5 <= codes.count(200) <= 5 + int(5 * elapsed) + 1
    assert codes.count(200) + codes.count(429) == 20
    time.sleep(1.1)
    assert httpx.post(infer_url(server), json=BODY).status_code == 200


# -- security ------------------------------------------------------------------------------------


def test_bearer_token_on_every_endpoint_but_health(governed):
    token = "s3cret-Token"
    server = governed(env={"TAICHU_TOKEN": token}, ready=False).wait_ready()
    good = {"Authorization": f"Bearer {token}"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
        reply = httpx.post(infer_url(server), json=BODY, headers=headers)
        assert reply.status_code == 401 and "Bearer" in reply.json()["error"]
    assert httpx.get(server.http + "/v2").status_code == 401
    assert httpx.get(server.http + "/v2/health/ready").status_code == 200
    assert httpx.post(infer_url(server), json=BODY, headers=good).status_code == 200
    # /metrics is public by default: annotation scrapers send no token.
    assert httpx.get(server.http + "/metrics").status_code == 200

    with pytest.raises(grpc.RpcError) as raised:
        grpc_infer(server, metadata=(("x-request-id", "refused-9"),))
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    grpc_infer(server, metadata=(("authorization", f"Bearer {token}"),))
    with grpc.insecure_channel(server.grpc) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest()
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert token not in server.log

    # Every refusal is in the metrics and the access log, like any other answer.
    samples = metric_samples(server)
    assert value(samples, "taichu_requests_total", model=MODEL, protocol="http",
                 status="401") == 4  # fmt: skip
    assert value(samples, "taichu_requests_total", model=MODEL, protocol="grpc",
                 status="401") == 1  # fmt: skip
    time.sleep(0.3)
    refusals = [line for line in server.log.splitlines() if " 401 " in line]
    assert len(refusals) == 5, server.log
    assert any("refused-9" in line and "ModelInfer" in line for line in refusals)


def test_metrics_can_require_the_token(governed, make_project):
    token = "s3cret-Token"
    env = {"TAICHU_TOKEN": token, "TAICHU_METRICS_REQUIRE_TOKEN": "true"}
    server = governed(env=env)
    assert httpx.get(server.http + "/metrics").status_code == 401
    good = {"Authorization": f"Bearer {token}"}
    assert httpx.get(server.http + "/metrics", headers=good).status_code == 200


def test_the_2x_request_id_header_is_honoured(governed):
    server = governed()
    reply = httpx.post(infer_url(server), json=BODY, headers={"x_request_id": "old-1"})
    assert reply.headers["x-request-id"] == "old-1"
    _, call = grpc_infer(server, metadata=(("x_request_id", "old-2"),))
    assert dict(call.trailing_metadata())["x-request-id"] == "old-2"


def test_tls_on_both_ports(governed, tmp_path):
    key, cert = self_signed(tmp_path)
    env = {"TAICHU_TLS_CERT": str(cert), "TAICHU_TLS_KEY": str(key)}
    server = governed(env=env, ready=False).wait_ready(ca_file=cert)
    https = server.http.replace("http://", "https://")
    trust = ssl.create_default_context(cafile=str(cert))
    reply = httpx.post(https + f"/v2/models/{MODEL}/infer", json=BODY, verify=trust)
    assert reply.json()["outputs"][0]["data"] == [7]
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    with grpc.secure_channel(server.grpc, credentials) as channel:
        stub = channel.unary_unary(
            "/inference.GRPCInferenceService/ServerReady",
            request_serializer=pb2.ServerReadyRequest.SerializeToString,
            response_deserializer=pb2.ServerReadyResponse.FromString,
        )
        assert stub(pb2.ServerReadyRequest(), timeout=10).ready


@pytest.mark.parametrize("problem", ["not a PEM", "the key of another certificate"])
def test_tls_files_that_do_not_load_stop_the_server_in_one_line(
    make_project, tmp_path, problem
):
    key, cert = self_signed(tmp_path)
    if problem == "not a PEM":
        cert.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n")
    else:
        (tmp_path / "other").mkdir()
        other_key, _ = self_signed(tmp_path / "other")
        key = other_key
    project = make_project()
    env = {"TAICHU_TLS_CERT": str(cert), "TAICHU_TLS_KEY": str(key)}
    server = Server(project, env=env)
    assert server.wait_exit(timeout=30) == 2
    server.stop()
    (line,) = server.log.strip().splitlines()
    assert line.startswith(f"taichu_runtime: error: tls_cert {cert} and tls_key {key}")
    assert "cannot be used" in line and "address" not in line


# -- probes, warm-up, supervision, shutdown ---------------------------------------------------------


def test_grpc_health_follows_readiness(make_project, start_server):
    project = make_project()
    (project / "customize_service.py").write_text(
        "import time\nfrom taichu_serve import Service\n"
        "class Slow(Service):\n"
        "    def _warmup(self):\n"
        "        time.sleep(3)\n"
    )
    server = start_server(project, ready=False)
    deadline = time.monotonic() + 20
    with grpc.insecure_channel(server.grpc) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        statuses = []
        while not statuses or statuses[-1] != health_pb2.HealthCheckResponse.SERVING:
            assert time.monotonic() < deadline
            try:
                statuses.append(
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                )
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
        with pytest.raises(grpc.RpcError) as raised:
            stub.Check(health_pb2.HealthCheckRequest(service="nope"))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_warmup_file_is_replayed_before_ready(make_project, start_server):
    project = make_project("governed")
    requests = [BODY, {"parameters": {"a": 1}}, BODY]
    (project / "warmup.json").write_text(json.dumps(requests))
    server = start_server(project, "--warmup-file", "warmup.json")
    reply = httpx.post(infer_url(server), json=BODY).json()
    calls = {o["name"]: o["data"] for o in reply["outputs"]}["calls"]
    assert calls == [4]  # three warm-up requests ran first
    assert "replayed 3 warm-up requests" in server.log


def test_failing_warmup_stops_start_up(make_project):
    project = make_project("governed")
    (project / "warmup.json").write_text(json.dumps([{"inputs": [{"name": "x"}]}]))
    server = Server(project, ["--warmup-file", "warmup.json"])
    assert server.wait_exit(timeout=30) == 2  # a mistake in the file: one line
    server.stop()
    assert "warm-up request 0 of warmup.json failed" in server.log
    assert "Traceback" not in server.log


@pytest.mark.parametrize("workers", [1, 2])
def test_a_crashed_worker_is_replaced(governed, workers):
    server = governed("--workers", str(workers))
    reply = httpx.post(infer_url(server), json=with_parameters(crash=1), timeout=10)
    assert reply.status_code == 503
    assert "model process died (SIGSEGV)" in reply.json()["error"]
    # Never a hang: each call answers quickly, first 503 or a refused gRPC call, then OK.
    deadline = time.monotonic() + 30
    while True:
        started = time.monotonic()
        try:
            reply = httpx.post(infer_url(server), json=BODY, timeout=5)
            if reply.status_code == 200:
                break
            assert reply.status_code == 503
        except httpx.HTTPError:
            pass
        assert time.monotonic() - started < 5
        assert time.monotonic() < deadline, server.log
        time.sleep(0.05)
    while "died (exit code -11); starting a new one" not in server.log:
        assert time.monotonic() < deadline, server.log
        time.sleep(0.05)
    while httpx.get(server.http + "/v2/health/ready").status_code != 200:
        assert time.monotonic() < deadline, server.log  # every worker is back
        time.sleep(0.05)
    grpc_infer(server)


def test_requests_inside_a_crashed_worker_are_answered(governed):
    """Everything in flight in the process that segfaults gets an answer: 503 with a v2
    body on HTTP (written by the supervisor), UNAVAILABLE on gRPC; an idle keep-alive
    connection is closed, and its client's next request goes to the new worker."""
    server = governed()
    with httpx.Client(timeout=10) as idle, ThreadPoolExecutor(4) as pool:
        assert idle.post(infer_url(server), json=BODY).status_code == 200
        slow_http = pool.submit(
            httpx.post, infer_url(server), json=with_parameters(delay=3), timeout=10
        )
        slow_grpc = pool.submit(grpc_infer, server, delay=3.0)
        time.sleep(0.5)
        started = time.monotonic()
        crash = httpx.post(infer_url(server), json=with_parameters(crash=1), timeout=10)
        assert crash.status_code == 503
        assert crash.headers["content-type"] == "application/json"
        assert "died (SIGSEGV) while handling this request" in crash.json()["error"]
        slow = slow_http.result()
        assert slow.status_code == 503 and "SIGSEGV" in slow.json()["error"]
        with pytest.raises(grpc.RpcError) as failed:
            slow_grpc.result()
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < 2  # at once, not after the 3 s delay

        deadline = time.monotonic() + 30
        while httpx.get(server.http + "/v2/health/ready").status_code != 200:
            assert time.monotonic() < deadline, server.log
            time.sleep(0.05)
        assert idle.post(infer_url(server), json=BODY).status_code == 200
    assert "answered 2 request(s) left by worker-0 (pid " in server.log


def test_sigterm_lets_50_in_flight_requests_finish(governed):
    server = governed(config={"max_queue_size": "100"})

    async def main():
        async with httpx.AsyncClient(
            timeout=60, limits=httpx.Limits(max_connections=60)
        ) as client:
            calls = [
                client.post(infer_url(server), json=with_parameters(delay=0.5))
                for _ in range(50)
            ]
            tasks = [asyncio.ensure_future(c) for c in calls]
            await asyncio.sleep(0.3)
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            ready = await client.get(server.http + "/v2/health/ready")
            late = await client.post(infer_url(server), json=BODY)
            return await asyncio.gather(*tasks), ready, late

    replies, ready, late = asyncio.run(main())
    assert [r.status_code for r in replies] == [200] * 50
    assert ready.status_code == 503
    assert late.status_code == 503 and "shutting down" in late.json()["error"]
    assert server.wait_exit(timeout=30) == 0


def test_sigterm_lets_50_in_flight_grpc_calls_finish(governed):
    # A thread-safe model has min(32, cores + 4) threads and 7 call threads more:
    # most of the 50 still wait for a thread when the signal comes, and are served.
    server = governed(config={"max_queue_size": "100"})
    with ThreadPoolExecutor(50) as pool:
        futures = [pool.submit(timed_grpc_infer, server, delay=0.5) for _ in range(50)]
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        _, late = timed_grpc_infer(server)
        codes = [f.result()[1] for f in futures]
    assert codes == [grpc.StatusCode.OK] * 50
    assert late == grpc.StatusCode.UNAVAILABLE
    assert server.wait_exit(timeout=30) == 0


def test_past_shutdown_timeout_what_is_left_gets_503_and_the_worker_exits(governed):
    server = governed(env={"TAICHU_SHUTDOWN_TIMEOUT": "1"})

    async def main():
        async with httpx.AsyncClient(timeout=30) as client:
            calls = [
                asyncio.ensure_future(
                    client.post(infer_url(server), json=with_parameters(delay=5.0))
                )
                for _ in range(3)
            ]
            grpc_call = asyncio.ensure_future(
                asyncio.to_thread(grpc_infer, server, None, 30, delay=5.0)
            )
            await asyncio.sleep(0.5)
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            replies = await asyncio.gather(*calls)
            answered = time.monotonic() - signalled
            grpc_outcome = await asyncio.gather(grpc_call, return_exceptions=True)
            return replies, answered, grpc_outcome[0], signalled

    replies, answered, grpc_outcome, signalled = asyncio.run(main())
    for reply in replies:
        assert reply.status_code == 503
        assert reply.json() == {
            "error": "the server shut down before the request finished"
        }
    assert answered < 1 + 1.5  # shutdown_timeout, and a moment
    assert isinstance(grpc_outcome, grpc.RpcError)
    assert grpc_outcome.code() == grpc.StatusCode.UNAVAILABLE
    assert grpc_outcome.details() == "the server shut down before the request finished"
    assert server.wait_exit(timeout=10) == 0
    assert time.monotonic() - signalled < 1 + 3
    time.sleep(0.3)
    statuses = re.findall(r"http GovernedService (\d+)", server.log)
    assert statuses.count("503") == 3, server.log
