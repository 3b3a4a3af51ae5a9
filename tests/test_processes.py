"""Process-level behaviour: several workers, graceful shutdown, and a server with no
taichu-serve installed."""

import asyncio
import os
import re
import signal
import subprocess
import time
import venv
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.grpc import service_pb2 as pb2

from conftest import Server, model_infer


def test_two_workers_share_both_ports(make_project, start_server):
    project = make_project()
    (project / "customize_service.py").write_text(
        "import os\nfrom taichu_serve import Service\n"
        "class Pid(Service):\n"
        "    thread_safe = True\n"
        "    def _inference(self, data, context):\n"
        "        return {'pid': os.getpid()}\n"
    )
    running = start_server(project, "--workers", "2")
    body = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}]}
    pids = set()
    for _ in range(60):
        with httpx.Client(base_url=running.http) as client:  # new connection each time
            pids.add(
                client.post("/v2/models/Pid/infer", json=body).json()["outputs"][0][
                    "data"
                ][0]
            )
    assert len(pids) == 2, pids

    grpc_pids = set()
    for _ in range(40):
        client = triton_grpc.InferenceServerClient(running.grpc)
        item = triton_grpc.InferInput("x", [1], "INT32")
        item.set_data_from_numpy(np.int32([1]))
        grpc_pids.add(int(client.infer("Pid", [item]).as_numpy("pid")))
        client.close()
    assert grpc_pids <= pids and len(grpc_pids) >= 1
    assert running.stop() == 0


def test_worker_failing_to_load_stops_the_whole_server(make_project):
    project = make_project()
    (project / "customize_service.py").write_text(
        "from taichu_serve import Service\n"
        "class M(Service):\n"
        "    def _warmup(self):\n"
        "        raise RuntimeError('no GPU')\n"
    )
    server = Server(project, ["--workers", "2"])
    assert server.wait_exit(timeout=60) == 1
    server.stop()
    assert "no GPU" in server.log


def test_sigterm_lets_in_flight_requests_finish(make_project, start_server):
    running = start_server(make_project("slow"))
    body = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}]}

    async def main():
        async with httpx.AsyncClient(base_url=running.http, timeout=60) as client:
            calls = [
                client.post("/v2/models/SlowService/infer", json=body)
                for _ in range(20)
            ]
            tasks = [asyncio.ensure_future(c) for c in calls]
            await asyncio.sleep(0.15)  # requests are queued on the model thread
            running.process.send_signal(signal.SIGTERM)
            return await asyncio.gather(*tasks)

    replies = asyncio.run(main())
    assert [r.status_code for r in replies] == [200] * 20
    assert running.wait_exit() == 0


@pytest.fixture(scope="session")
def bare_venv(tmp_path_factory, project):
    """A venv with only the generated runtime's requirements: no taichu-serve."""
    location = tmp_path_factory.mktemp("venv") / "runtime"
    venv.create(location, with_pip=True)
    python = str(location / "bin" / "python")
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "-r",
            str(project / "taichu_runtime" / "requirements.txt"),
        ],
        check=True,
        timeout=600,
    )
    return python


def test_generated_server_runs_without_taichu_serve(bare_venv, project, tmp_path):
    missing = subprocess.run(
        [bare_venv, "-c", "import taichu_serve"], capture_output=True, text=True
    )
    assert (
        missing.returncode != 0 and "No module named 'taichu_serve'" in missing.stderr
    )
    running = Server(project, python=bare_venv).wait_ready(timeout=60)
    try:
        body = {
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1.5]}]
        }
        reply = httpx.post(running.http + "/v2/models/ModelService/infer", json=body)
        assert reply.json()["outputs"][0]["data"] == [1.5]
        result = subprocess.run(
            [bare_venv, "test/grpc_client.py", "--grpc-port", str(running.grpc_port)],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    finally:
        assert running.stop() == 0


def test_workers_never_outlive_their_supervisor(make_project, start_server):
    """SIGKILL to the supervisor (nothing it can pass on): its two workers exit
    within a few seconds, and a new server then takes the same ports."""
    project = make_project()
    server = start_server(project, "--workers", "2")
    workers = subprocess.run(
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True
    ).stdout.split()
    assert len(workers) == 2
    server.process.kill()
    server.process.wait()
    deadline = time.monotonic() + 6
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived its supervisor"
        time.sleep(0.1)
    again = start_server(project, ports=(server.http_port, server.grpc_port))
    assert httpx.get(again.http + "/v2/health/ready").status_code == 200


HANGING = "/v2/models/HangingService/infer"


def test_a_hung_model_is_detected_and_its_worker_replaced(make_project, start_server):
    """hook_timeout 1 s: a hook that never returns makes the worker say it is not live,
    answer its requests 503 / UNAVAILABLE, and give way to a new worker."""
    server = start_server(make_project("hanging"), "--hook-timeout", "1")
    first = httpx.post(server.http + HANGING, json={"parameters": {"go": 1}}).json()
    with ThreadPoolExecutor(2) as pool:
        hung_http = pool.submit(
            httpx.post,
            server.http + HANGING,
            json={"parameters": {"hang": True}},
            timeout=30,
        )
        time.sleep(0.2)
        with grpc.insecure_channel(server.grpc) as channel:
            request = pb2.ModelInferRequest(model_name="HangingService")
            request.parameters["go"].int64_param = 1
            queued_grpc = pool.submit(
                model_infer(channel),
                request,
                timeout=30,
            )
            seen_not_live = False
            deadline = time.monotonic() + 30
            while not seen_not_live:  # until the worker exits, GRACE after the answers
                assert time.monotonic() < deadline, server.log
                try:
                    live = httpx.get(server.http + "/v2/health/live", timeout=1)
                    seen_not_live |= live.status_code == 503
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            reply = hung_http.result()
            assert reply.status_code == 503 and "hung" in reply.json()["error"]
            with pytest.raises(grpc.RpcError) as answered:
                queued_grpc.result()
            assert answered.value.code() == grpc.StatusCode.UNAVAILABLE
    assert seen_not_live
    server.wait_ready()
    again = httpx.post(server.http + HANGING, json={"parameters": {"go": 1}}).json()
    assert again["parameters"]["pid"] != first["parameters"]["pid"]
    assert "was hung (no progress for hook_timeout)" in server.log
    metrics = httpx.get(server.http + "/metrics").text
    assert (
        'taichu_worker_starts_total{model="HangingService",reason="hung"} 1.0'
        in metrics
    )


def test_a_request_the_dead_worker_never_read_is_served_by_another(
    make_project, start_server
):
    """A keep-alive connection's next request arrives at a worker that dies before
    reading it (stopped, then SIGKILLed): the connection is handed to a living worker,
    which answers it, instead of the client seeing its connection reset."""
    server = start_server(make_project("hanging"), "--workers", "2")
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(1) as pool:
        first = client.post(server.http + HANGING, json={"parameters": {"go": 1}})
        holder = first.json()["parameters"]["pid"]  # the worker with this connection
        # The worker marks the connection idle just after the answer's last byte
        # leaves; stopped in between, it would count as half answered (and close).
        time.sleep(0.2)
        os.kill(holder, signal.SIGSTOP)
        unread = pool.submit(
            client.post, server.http + HANGING, json={"parameters": {"go": 1}}
        )
        time.sleep(0.5)  # the request's bytes wait, unread, in the stopped worker
        os.kill(holder, signal.SIGKILL)
        reply = unread.result()
        assert reply.status_code == 200, reply.text
        assert reply.json()["parameters"]["pid"] not in (holder,)
        # The connection lives on in its new worker.
        again = client.post(server.http + HANGING, json={"parameters": {"go": 1}})
        assert again.json()["parameters"]["pid"] == reply.json()["parameters"]["pid"]
    deadline = time.monotonic() + 5  # the supervisor logs it after the hand-over
    while not re.search(r"handed \d+ open connection\(s\) of worker-", server.log):
        assert time.monotonic() < deadline, server.log
        time.sleep(0.05)


def test_no_request_fails_unanswered_when_a_worker_segfaults_under_load(
    make_project, start_server
):
    """Two workers, 32 keep-alive clients, one request segfaults its worker: every
    other request gets an answer (200, or 503 with a v2 error body), none a reset or
    a closed connection."""
    server = start_server(make_project("governed"), "--workers", "2")
    url = server.http + "/v2/models/GovernedService/infer"
    body = {"inputs": [], "parameters": {"delay": 0.02}}
    outcomes: Counter = Counter()

    async def keep_asking(client, until: float) -> None:
        while time.monotonic() < until:
            try:
                reply = await client.post(url, json=body)
                if reply.status_code == 503:
                    assert "error" in reply.json()
                outcomes[reply.status_code] += 1
            except httpx.TransportError as error:
                outcomes[repr(error)] += 1

    async def main() -> None:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            until = time.monotonic() + 3
            clients = [keep_asking(client, until) for _ in range(32)]
            load = asyncio.gather(*clients)
            await asyncio.sleep(1)
            crash = await client.post(url, json={"parameters": {"crash": 1}})
            assert crash.status_code == 503
            await load

    asyncio.run(main())
    assert set(outcomes) <= {200, 503}, outcomes
    assert outcomes[200] > 100


def test_a_worker_past_max_worker_requests_is_replaced_without_a_failure(
    make_project, start_server
):
    """max_worker_requests 150, two workers, HTTP keep-alive clients and a gRPC
    channel asking all the time: workers are replaced one after another (each new
    one ready before the old one leaves) and every request gets its answer."""
    server = start_server(
        make_project("leaking"),
        "--workers",
        "2",
        "--max-worker-requests",
        "150",
        "--max-connection-age",
        "1",  # how long a replaced worker's gRPC clients take to move
    )
    url = server.http + "/v2/models/LeakingService/infer"
    outcomes: Counter = Counter()
    pids = set()

    async def keep_asking(client, until: float) -> None:
        while time.monotonic() < until:
            try:
                reply = await client.post(url, json={"parameters": {"leak_mb": 0}})
                outcomes[reply.status_code] += 1
                pids.add(reply.json()["parameters"]["pid"])
            except httpx.TransportError as error:
                outcomes[repr(error)] += 1

    def grpc_asks(until: float) -> None:
        with grpc.insecure_channel(server.grpc) as channel:
            infer = model_infer(channel)
            request = pb2.ModelInferRequest(model_name="LeakingService")
            request.parameters["leak_mb"].int64_param = 0
            while time.monotonic() < until:
                try:
                    infer(request, timeout=10)
                    outcomes["grpc OK"] += 1
                except grpc.RpcError as error:
                    outcomes[f"grpc {error.code().name}"] += 1

    async def main() -> None:
        until = time.monotonic() + 6
        grpc_client = asyncio.to_thread(grpc_asks, until)
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            await asyncio.gather(
                grpc_client, *[keep_asking(client, until) for _ in range(16)]
            )

    asyncio.run(main())
    replaced = server.log.count("starting its replacement")
    assert replaced >= 2, server.log
    assert set(outcomes) == {200, "grpc OK"}, outcomes
    assert server.log.count("has left") >= replaced - 1
    assert len(pids) >= 3  # answers came from replacements too
    assert re.search(r"served \d+ requests \(max_worker_requests 150\)", server.log)
    metrics = httpx.get(server.http + "/metrics").text
    assert 'reason="recycled"' in metrics


def test_a_leaking_worker_is_replaced_past_max_worker_memory(
    make_project, start_server
):
    """One worker, max_worker_memory 400 MB, 40 MB kept per request: the worker is
    replaced (its replacement serves) and no request fails on the way."""
    server = start_server(
        make_project("leaking"), "--max-worker-memory", str(400 << 20)
    )
    url = server.http + "/v2/models/LeakingService/infer"
    seen = []
    with httpx.Client(timeout=30) as client:
        deadline = time.monotonic() + 30
        while len(set(seen)) < 2:
            assert time.monotonic() < deadline, server.log
            reply = client.post(url, json={"parameters": {"leak_mb": 40}})
            assert reply.status_code == 200, reply.text
            seen.append(reply.json()["parameters"]["pid"])
            time.sleep(0.1)
    assert "(max_worker_memory 400 MiB); starting its replacement" in server.log
    old = seen[0]
    deadline = time.monotonic() + 10
    while Path(f"/proc/{old}").exists():
        assert time.monotonic() < deadline, "the replaced worker did not leave"
        time.sleep(0.1)
