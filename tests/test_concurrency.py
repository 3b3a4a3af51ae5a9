"""Many clients at once: each gets its own answer; hooks never block the event loop."""

import asyncio
import time

import grpc
import httpx
import numpy as np
from tritonclient.grpc import service_pb2 as pb2

from conftest import model_infer

MODEL = "ModelService"


def test_200_concurrent_http_requests_each_get_their_own_answer(server):
    async def main():
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(
            base_url=server.http, limits=limits, timeout=60
        ) as client:

            async def one(index):
                body = {
                    "id": f"req-{index}",
                    "inputs": [
                        {
                            "name": "x",
                            "datatype": "INT64",
                            "shape": [3],
                            "data": [index, index * 2, -index],
                        },
                        {
                            "name": "s",
                            "datatype": "BYTES",
                            "shape": [1],
                            "data": [f"text-{index}"],
                        },
                    ],
                }
                reply = await client.post(f"/v2/models/{MODEL}/infer", json=body)
                return index, reply.status_code, reply.json()

            return await asyncio.gather(*(one(i) for i in range(200)))

    for index, status, body in asyncio.run(main()):
        assert status == 200
        assert body["id"] == f"req-{index}"
        assert body["outputs"][0]["data"] == [index, index * 2, -index]
        assert body["outputs"][1]["data"] == [f"text-{index}"]


def test_200_concurrent_grpc_requests_each_get_their_own_answer(server):
    async def main():
        async with grpc.aio.insecure_channel(server.grpc) as channel:
            infer = model_infer(channel)

            async def one(index):
                request = pb2.ModelInferRequest(model_name=MODEL, id=f"g-{index}")
                request.inputs.add(name="x", datatype="FP32", shape=[2])
                request.raw_input_contents.append(
                    np.float32([index, index / 7]).tobytes()
                )
                return index, await infer(request, timeout=60)

            return await asyncio.gather(*(one(i) for i in range(200)))

    for index, reply in asyncio.run(main()):
        assert reply.id == f"g-{index}"
        got = np.frombuffer(reply.raw_output_contents[0], dtype=np.float32)
        assert np.array_equal(got, np.float32([index, index / 7]))


def test_one_request_at_a_time_per_instance_and_health_stays_fast(
    make_project, start_server
):
    running = start_server(make_project("slow"))

    async def main():
        async with httpx.AsyncClient(base_url=running.http, timeout=60) as client:

            async def one(index):
                body = {
                    "inputs": [
                        {
                            "name": "x",
                            "datatype": "INT32",
                            "shape": [1],
                            "data": [index],
                        }
                    ]
                }
                return await client.post("/v2/models/SlowService/infer", json=body)

            work = asyncio.gather(*(one(i) for i in range(20)))
            await asyncio.sleep(0.1)
            started = time.perf_counter()
            health = await client.get("/v2/health/ready")
            health_latency = time.perf_counter() - started
            return await work, health, health_latency

    replies, health, health_latency = asyncio.run(main())
    assert health.status_code == 200
    # 20 requests x 20 ms are queued on the model thread; health does not wait for them.
    assert health_latency < 0.2
    for index, reply in enumerate(replies):
        assert reply.status_code == 200  # queued, never rejected
        outputs = {o["name"]: o["data"] for o in reply.json()["outputs"]}
        assert outputs["x"] == [index]
        assert outputs["most_at_once"] == [1]
