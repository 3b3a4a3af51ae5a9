"""Dynamic batching: concurrent requests share _inference calls, each answer goes to its
own request, the size and delay bounds hold, and throughput multiplies."""

import asyncio
import time

import httpx
import pytest

MODEL = "BatchedService"


def body(value):
    return {
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [value]}]
    }


async def fire(server, values, client=None):
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as client:
        calls = [client.post(f"/v2/models/{MODEL}/infer", json=body(v)) for v in values]
        return await asyncio.gather(*calls)


def batch_sizes(server):
    reply = httpx.post(
        f"{server.http}/v2/models/{MODEL}/infer", json={"parameters": {}}
    )
    return reply.json()["parameters"]["batch_sizes"]


@pytest.fixture
def batched(make_project, start_server):
    def start(*args, env=None):
        return start_server(make_project("batched"), *args, env=env)

    return start


def test_32_concurrent_requests_share_batches_of_at_most_8(batched):
    server = batched("--max-batch-size", "8", "--max-batch-delay-ms", "20")
    replies = asyncio.run(fire(server, range(32)))
    for value, reply in zip(range(32), replies):
        assert reply.status_code == 200, reply.text
        assert reply.json()["outputs"] == [
            {"name": "y", "datatype": "FP64", "shape": [], "data": [value * 2.0]}
        ]
    sizes = batch_sizes(server)[:-1]  # the stats request is a batch of its own
    assert sum(sizes) == 32 and max(sizes) <= 8
    assert sum(sizes) / len(sizes) > 1
    metrics = httpx.get(server.http + "/metrics").text
    assert "taichu_batch_size_count" in metrics


def test_one_failing_item_fails_only_its_request(batched):
    server = batched(
        "--max-batch-size", "8", "--max-batch-delay-ms", "50",
        "--show-model-errors", "true",
    )  # fmt: skip
    values = [1, 2, -3, 4]
    replies = asyncio.run(fire(server, values))
    codes = [r.status_code for r in replies]
    assert codes == [200, 200, 500, 200]
    assert "negative input -3.0" in replies[2].json()["error"]
    assert max(batch_sizes(server)[:-1]) > 1  # they did share a batch


def test_a_lone_request_is_not_held_for_the_delay(batched):
    """Nothing else is on its way to the model: it runs at once (the bound of the
    delay for requests still in _preprocess is a unit test of the batcher)."""
    server = batched("--max-batch-size", "8", "--max-batch-delay-ms", "500")
    httpx.post(
        f"{server.http}/v2/models/{MODEL}/infer", json=body(1)
    )  # warm connection
    started = time.perf_counter()
    reply = httpx.post(f"{server.http}/v2/models/{MODEL}/infer", json=body(1))
    elapsed = time.perf_counter() - started
    assert reply.status_code == 200
    # The 5 ms model and little else, not the 500 ms delay.
    assert elapsed < 0.25


def test_batching_multiplies_throughput(batched):
    async def throughput(server, seconds=2.0):
        async with httpx.AsyncClient(base_url=server.http, timeout=30) as client:
            done = 0
            deadline = time.perf_counter() + seconds

            async def worker(index):
                nonlocal done
                while time.perf_counter() < deadline:
                    reply = await client.post(
                        f"/v2/models/{MODEL}/infer", json=body(index)
                    )
                    assert reply.status_code == 200
                    if (
                        time.perf_counter() <= deadline
                    ):  # answers within the window only
                        done += 1

            await asyncio.gather(*(worker(i) for i in range(32)))
            return done / seconds

    # 20 ms per call: the model, not this test's Python client, sets the pace.
    slow = {"INFERENCE_MS": "20"}
    plain = asyncio.run(throughput(batched(env=slow)))
    batched_args = ("--max-batch-size", "8", "--max-batch-delay-ms", "5")
    batched_rate = asyncio.run(throughput(batched(*batched_args, env=slow)))
    assert plain < 55  # one call at a time: at most 50/s
    # 8x in theory; this machine's Python client, on the other core, caps it near 4x.
    assert batched_rate >= 3 * plain, (plain, batched_rate)


def test_unbatched_service_keeps_working(batched):
    server = batched()
    assert asyncio.run(fire(server, [3]))[0].json()["outputs"][0]["data"] == [6.0]


def test_readme_batching_example(make_project, start_server):
    from conftest import readme_example

    project = make_project()
    (project / "customize_service.py").write_text(readme_example("## Dynamic batching"))
    server = start_server(
        project, "--max-batch-size", "4", "--max-batch-delay-ms", "50"
    )

    async def main():
        async with httpx.AsyncClient(base_url=server.http, timeout=30) as client:
            calls = [
                client.post("/v2/models/ModelService/infer", json=body(float(i)))
                for i in range(4)
            ]
            return await asyncio.gather(*calls)

    replies = asyncio.run(main())
    assert [r.json()["outputs"][0]["data"] for r in replies] == [
        [0.0],
        [2.0],
        [4.0],
        [6.0],
    ]


def test_batching_with_two_workers_and_a_bounded_queue(batched):
    from prometheus_client.parser import text_string_to_metric_families

    server = batched(
        "--workers", "2", "--max-batch-size", "8", "--max-batch-delay-ms", "20",
        "--max-queue-size", "12",
    )  # fmt: skip

    async def main():
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(
            base_url=server.http, timeout=30, limits=limits
        ) as client:
            calls = [
                client.post(f"/v2/models/{MODEL}/infer", json=body(v))
                for v in range(32)
            ]
            return await asyncio.gather(*calls)

    replies = asyncio.run(main())
    answered = 0
    for value, reply in zip(range(32), replies):
        if reply.status_code == 429:  # that worker's queue was full
            continue
        assert reply.status_code == 200, reply.text
        assert reply.json()["outputs"][0]["data"] == [value * 2.0]
        answered += 1
    # A worker admits 13 at once (its thread + 12 waiting); the rest got 429 above.
    assert answered >= 13
    time.sleep(0.3)  # the other worker records its samples within 0.1 s
    text = httpx.get(server.http + "/metrics").text
    counts = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in ("taichu_batch_size_count", "taichu_batch_size_sum")
    }
    assert (
        counts["taichu_batch_size_sum"] == answered
    )  # both workers, every batched request
    assert counts["taichu_batch_size_count"] < answered  # in fewer calls than requests
