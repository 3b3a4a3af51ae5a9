"""Streaming: bidirectional gRPC (Triton's and 2.x's ModelStreamInfer) and HTTP SSE."""

import asyncio
import json
import os
import queue
import time

import grpc
import httpx
import legacy_client
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.grpc import service_pb2 as pb2

from conftest import SERVICES, Server, model_infer, readme_example, render

MODEL = "StreamingService"


@pytest.fixture(scope="module")
def streamer(tmp_path_factory):
    directory = render(tmp_path_factory.mktemp("streaming") / "project")
    (directory / "customize_service.py").write_text(
        (SERVICES / "streaming.py").read_text()
    )
    # The tests read the model's own errors.
    running = Server(directory, ["--show-model-errors", "true"]).wait_ready()
    yield running
    running.stop()


def message(request_id="m", **parameters):
    request = pb2.ModelInferRequest(model_name=MODEL, id=request_id)
    request.inputs.add(
        name="x", datatype="INT32", shape=[1]
    ).contents.int_contents.append(1)
    for key, value in parameters.items():
        if isinstance(value, str):
            request.parameters[key].string_param = value
        elif isinstance(value, bool):
            request.parameters[key].bool_param = value
        elif isinstance(value, int):
            request.parameters[key].int64_param = value
        else:
            request.parameters[key].double_param = value
    return request


def stream_call(channel):
    return channel.stream_stream(
        "/inference.GRPCInferenceService/ModelStreamInfer",
        request_serializer=pb2.ModelInferRequest.SerializeToString,
        response_deserializer=pb2.ModelStreamInferResponse.FromString,
    )


def token(reply):
    response = reply.infer_response
    outputs = {o.name: i for i, o in enumerate(response.outputs)}
    raw = response.raw_output_contents
    if raw:
        return bytes(raw[outputs["token"]][4:]).decode()
    return response.outputs[outputs["token"]].contents.bytes_contents[0].decode()


def stats(server):
    body = {"parameters": {"mode": "stats"}}
    return httpx.post(f"{server.http}/v2/models/{MODEL}/infer", json=body).json()[
        "parameters"
    ]


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_tritonclient_stream(streamer):
    replies = queue.Queue()
    client = triton_grpc.InferenceServerClient(streamer.grpc)
    client.start_stream(callback=lambda result, error: replies.put((result, error)))
    item = triton_grpc.InferInput("x", [1], "INT32")
    item.set_data_from_numpy(np.int32([1]))
    client.async_stream_infer(MODEL, [item], request_id="s1", parameters={"n": 4})
    got = [replies.get(timeout=10) for _ in range(4)]
    client.stop_stream()
    assert all(error is None for _, error in got)
    assert [r.as_numpy("token").item() for r, _ in got] == [
        b"tok0",
        b"tok1",
        b"tok2",
        b"tok3",
    ]
    assert [int(r.as_numpy("index")) for r, _ in got] == [0, 1, 2, 3]
    assert all(r.get_response().id == "s1" for r, _ in got)


def test_tritonclient_empty_final_response(streamer):
    replies = queue.Queue()
    client = triton_grpc.InferenceServerClient(streamer.grpc)
    client.start_stream(callback=lambda result, error: replies.put((result, error)))
    item = triton_grpc.InferInput("x", [1], "INT32")
    item.set_data_from_numpy(np.int32([1]))
    client.async_stream_infer(
        MODEL, [item], parameters={"n": 2}, enable_empty_final_response=True
    )
    got = [replies.get(timeout=10)[0].get_response() for _ in range(3)]
    client.stop_stream()
    flags = [r.parameters["triton_final_response"].bool_param for r in got]
    assert flags == [False, False, True]
    assert len(got[2].outputs) == 0


def test_thousand_items_arrive_complete_and_in_order(streamer):
    with grpc.insecure_channel(streamer.grpc) as channel:
        replies = list(stream_call(channel)(iter([message(n=1000)]), timeout=30))
    assert [token(r) for r in replies] == [f"tok{i}" for i in range(1000)]


def test_first_item_arrives_before_the_generator_finishes(streamer):
    with grpc.insecure_channel(streamer.grpc) as channel:
        started = time.perf_counter()
        arrivals = []
        for _ in stream_call(channel)(iter([message(n=10, delay=0.1)]), timeout=30):
            arrivals.append(time.perf_counter() - started)
    assert len(arrivals) == 10
    assert arrivals[0] < 0.35 and arrivals[-1] > 0.9  # first after ~0.1 s of ~1 s


def test_context_lives_for_one_stream(streamer):
    with grpc.insecure_channel(streamer.grpc) as channel:
        call = stream_call(channel)
        for _ in range(2):  # a new stream starts from an empty context
            messages = [message(f"c{i}", mode="count", n=1) for i in range(3)]
            replies = list(call(iter(messages), timeout=10))
            counts = [
                int(r.infer_response.outputs[0].contents.int64_contents[0])
                for r in replies
            ]
            assert counts == [1, 2, 3]
    wait_for(lambda: stats(streamer)["open_contexts"] == 0)


def test_half_close_completes_promptly(streamer):
    async def main():
        async with grpc.aio.insecure_channel(streamer.grpc) as channel:
            call = stream_call(channel)()
            await call.write(message(n=3))
            await call.done_writing()
            started = time.perf_counter()
            items = [reply async for reply in call]
            return items, time.perf_counter() - started, await call.code()

    items, elapsed, code = asyncio.run(main())
    assert len(items) == 3 and code == grpc.StatusCode.OK
    assert elapsed < 1.0


def test_cancel_mid_stream_runs_the_generators_finally(streamer):
    before = stats(streamer)["finally_runs"]
    with grpc.insecure_channel(streamer.grpc) as channel:
        call = stream_call(channel)(iter([message(n=1000, delay=0.01)]), timeout=30)
        assert token(next(call)) == "tok0"
        call.cancel()
    wait_for(lambda: stats(streamer)["finally_runs"] == before + 1)


def test_client_deadline_ends_the_stream_and_runs_the_generators_finally(streamer):
    """Streams have no request_timeout: the client's deadline is what ends them."""
    before = stats(streamer)["finally_runs"]
    with grpc.insecure_channel(streamer.grpc) as channel:
        call = stream_call(channel)(iter([message(n=1000, delay=0.01)]), timeout=1)
        with pytest.raises(grpc.RpcError) as raised:
            for _ in call:
                pass
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_for(lambda: stats(streamer)["finally_runs"] == before + 1)
    with grpc.insecure_channel(streamer.grpc) as channel:  # and it goes on serving
        assert token(next(stream_call(channel)(iter([message(n=1)]), timeout=10)))


def test_an_error_answers_its_message_and_the_stream_goes_on(streamer):
    messages = [
        message("a", n=2),
        message("b", mode="error"),
        message("c", n=2, fail_at=1),
        message("d", n=1),
    ]
    with grpc.insecure_channel(streamer.grpc) as channel:
        replies = list(stream_call(channel)(iter(messages), timeout=10))
    summary = [(r.infer_response.id, r.error_message or token(r)) for r in replies]
    assert summary == [
        ("a", "tok0"),
        ("a", "tok1"),
        ("b", "the model raised ValueError: this message is bad"),
        ("c", "tok0"),
        ("c", "the model raised RuntimeError: failed at item 1"),
        ("d", "tok0"),
    ]


def test_odd_messages_get_their_own_error_and_the_stream_goes_on(streamer):
    too_many_dims = message("dims", n=1)
    too_many_dims.inputs[0].shape[:] = [1] * 65
    control_id = message("bad\x01id", n=1)
    mixed = message("mixed", n=1)
    mixed.raw_input_contents.append(b"\x01\x00\x00\x00")
    with grpc.insecure_channel(streamer.grpc) as channel:
        replies = list(
            stream_call(channel)(
                iter([too_many_dims, control_id, mixed, message("d", n=1)]), timeout=10
            )
        )
    errors = [r.error_message for r in replies[:3]]
    assert "at most 64 dimensions" in errors[0]
    assert "'id' must be printable ASCII" in errors[1]
    assert "both typed contents and raw_input_contents" in errors[2]
    assert replies[3].infer_response.id == "d" and token(replies[3]) == "tok0"


def test_2x_stream_client_gets_each_item(streamer):
    def messages():
        for index in range(2):
            request = legacy_client.ModelInferRequest(
                model_name=MODEL, id=f"old{index}"
            )
            request.parameters["n"].float_param = 3
            yield request

    with grpc.insecure_channel(streamer.grpc) as channel:
        replies = list(
            legacy_client.model_stream_infer(channel)(messages(), timeout=10)
        )
    tokens = [legacy_client.as_dict(r.parameters)["token"] for r in replies]
    assert tokens == ["tok0", "tok1", "tok2"] * 2
    assert [r.id for r in replies] == ["old0"] * 3 + ["old1"] * 3


# -- HTTP ------------------------------------------------------------------------------------


def sse_events(response):
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield json.loads(line[len("data: ") :])


def test_sse_stream_with_httpx(streamer):
    body = {"text_input": "hello", "parameters": {"n": 3}}
    url = f"{streamer.http}/v2/models/{MODEL}/generate_stream"
    with httpx.stream("POST", url, json=body, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(response))
    assert [(e["index"], e["token"]) for e in events] == [
        (0, "tok0"),
        (1, "tok1"),
        (2, "tok2"),
    ]
    assert all(e["model_name"] == MODEL for e in events)


def test_sse_async_generator_of_strings(streamer):
    body = {"parameters": {"mode": "async", "n": 2}}
    url = f"{streamer.http}/v2/models/{MODEL}/generate_stream"
    with httpx.stream("POST", url, json=body, timeout=10) as response:
        events = list(sse_events(response))
    assert [e["text_output"] for e in events] == ["tok0", "tok1"]


def test_generate_and_sse_errors(streamer):
    url = f"{streamer.http}/v2/models/{MODEL}"
    reply = httpx.post(url + "/generate", json={"parameters": {"mode": "count"}})
    assert reply.status_code == 200 and reply.json()["count"] == 1
    reply = httpx.post(url + "/generate_stream", json={"parameters": {"mode": "error"}})
    assert reply.status_code == 500 and "this message is bad" in reply.json()["error"]
    reply = httpx.post(url + "/generate", json={"parameters": {"n": 2}})
    assert reply.status_code == 500 and "streaming endpoint" in reply.json()["error"]
    with httpx.stream(
        "POST", url + "/generate_stream", json={"parameters": {"n": 3, "fail_at": 1}}
    ) as r:
        events = list(sse_events(r))
    assert events[0]["token"] == "tok0" and "failed at item 1" in events[1]["error"]


def sse_answers(server, status: str) -> float:
    """taichu_requests_total of SSE streams that ended with `status`."""
    text = httpx.get(f"{server.http}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "taichu_requests_total"
                and labels.get("protocol") == "sse"
                and labels.get("status") == status
            ):
                return sample.value
    return 0.0


def test_sse_disconnect_stops_the_generator(streamer):
    before = stats(streamer)["finally_runs"]
    closed_before = sse_answers(streamer, "499")
    failed_before = sse_answers(streamer, "500")
    url = f"{streamer.http}/v2/models/{MODEL}/generate_stream"
    body = {"parameters": {"n": 1000, "delay": 0.01}}
    with httpx.stream("POST", url, json=body, timeout=10) as response:
        first = next(sse_events(response))
        assert first["token"] == "tok0"
    wait_for(lambda: stats(streamer)["finally_runs"] == before + 1)
    # Counted as the client's leaving (499), not as a failure of the server.
    wait_for(lambda: sse_answers(streamer, "499") == closed_before + 1)
    assert sse_answers(streamer, "500") == failed_before


def test_sse_disconnect_ends_a_waiting_async_generator_at_once(streamer):
    """A client that hangs up while an async generator awaits its next item ends it
    then, not when the item comes."""
    before = stats(streamer)["finally_runs"]
    url = f"{streamer.http}/v2/models/{MODEL}/generate_stream"
    body = {"parameters": {"mode": "async", "n": 3, "delay": 1.5}}
    with httpx.stream("POST", url, json=body, timeout=10) as response:
        next(sse_events(response))
    left = time.monotonic()
    wait_for(lambda: stats(streamer)["finally_runs"] == before + 1, timeout=1.2)
    assert time.monotonic() - left < 1.2  # the next item was due 1.5 s after the first


def test_twenty_streams_and_unary_traffic_together(streamer):
    async def main():
        async with (
            grpc.aio.insecure_channel(streamer.grpc) as channel,
            httpx.AsyncClient(base_url=streamer.http, timeout=30) as client,
        ):

            async def one_stream(index):
                call = stream_call(channel)
                replies = [
                    r
                    async for r in call(iter([message(f"s{index}", n=20, delay=0.005)]))
                ]
                return [token(r) for r in replies], {
                    r.infer_response.id for r in replies
                }

            async def one_unary(index):
                body = {"id": f"u{index}", "parameters": {"mode": "count"}}
                started = time.perf_counter()
                reply = await client.post(f"/v2/models/{MODEL}/infer", json=body)
                return reply.json(), time.perf_counter() - started

            streams = [one_stream(i) for i in range(20)]
            unaries = [one_unary(i) for i in range(40)]
            results = await asyncio.gather(*streams, *unaries)
            return results[:20], results[20:]

    streams, unaries = asyncio.run(main())
    for index, (tokens, ids) in enumerate(streams):
        assert tokens == [f"tok{i}" for i in range(20)] and ids == {f"s{index}"}
    for index, (body, latency) in enumerate(unaries):
        assert body["id"] == f"u{index}" and body["parameters"] == {"count": 1}
        assert (
            latency < 0.8
        )  # the streams take 2.5 s: unary calls get their turn between items


def test_streams_and_unary_calls_never_run_the_hooks_at_once(
    make_project, start_server
):
    # Up to 8 requests are admitted at once, but the service is not thread-safe: the
    # streams' messages (run on their own threads) and the unary calls (on the model
    # thread) must still take turns.
    running = start_server(
        make_project("streaming"), env={"TAICHU_MAX_CONCURRENT_REQUESTS": "8"}
    )

    async def main():
        async with (
            grpc.aio.insecure_channel(running.grpc) as channel,
            httpx.AsyncClient(base_url=running.http, timeout=30) as client,
        ):
            infer = model_infer(channel)

            async def one_stream(index):
                messages = [message(f"s{index}-{n}", n=5) for n in range(4)]
                call = stream_call(channel)
                return [token(r) async for r in call(iter(messages))]

            async def one_http(index):
                body = {"id": f"h{index}", "parameters": {"mode": "count"}}
                reply = await client.post(f"/v2/models/{MODEL}/infer", json=body)
                return reply.json()["parameters"]

            async def one_grpc(index):
                reply = await infer(message(f"g{index}", mode="count"))
                assert reply.id == f"g{index}" and reply.outputs[0].name == "count"
                return list(reply.outputs[0].contents.int64_contents)

            return await asyncio.gather(
                asyncio.gather(*(one_stream(i) for i in range(8))),
                asyncio.gather(*(one_http(i) for i in range(40))),
                asyncio.gather(*(one_grpc(i) for i in range(40))),
            )

    streams, https, grpcs = asyncio.run(main())
    for tokens in streams:
        assert tokens == [f"tok{i}" for i in range(5)] * 4
    assert https == [{"count": 1}] * 40 and grpcs == [[1]] * 40
    assert stats(running)["most_at_once"] == 1


def test_a_thread_safe_services_streams_step_at_once_up_to_its_thread_count(
    make_project, start_server
):
    project = make_project("streaming")
    service = project / "customize_service.py"
    service.write_text(
        service.read_text().replace(
            "class StreamingService(Service):\n",
            "class StreamingService(Service):\n    thread_safe = True\n",
        )
    )
    running = start_server(project)

    async def main():
        async with grpc.aio.insecure_channel(running.grpc) as channel:

            async def one_stream(index):
                call = stream_call(channel)
                replies = call(iter([message(f"s{index}", n=10, delay=0.02)]))
                return [token(r) async for r in replies]

            return await asyncio.gather(*(one_stream(i) for i in range(40)))

    for tokens in asyncio.run(main()):
        assert tokens == [f"tok{i}" for i in range(10)]
    threads = min(
        32, (os.cpu_count() or 1) + 4
    )  # the model threads of a thread-safe one
    assert 2 <= stats(running)["most_at_once"] <= threads


def test_readme_streaming_example(make_project, start_server):
    project = make_project()
    (project / "customize_service.py").write_text(readme_example("## Streaming"))
    running = start_server(project)
    body = {"text_input": "one two three", "parameters": {"max_tokens": 2}}
    url = f"{running.http}/v2/models/ModelService/generate_stream"
    with httpx.stream("POST", url, json=body, timeout=10) as response:
        assert [e["text_output"] for e in sse_events(response)] == ["one", "two"]
    client = triton_grpc.InferenceServerClient(running.grpc)
    replies = queue.Queue()
    client.start_stream(callback=lambda result, error: replies.put((result, error)))
    item = triton_grpc.InferInput("text_input", [1], "BYTES")
    item.set_data_from_numpy(np.array([b"alpha beta"], dtype=object))
    client.async_stream_infer("ModelService", [item])
    got = [replies.get(timeout=10)[0].as_numpy("text_output").item() for _ in range(2)]
    client.stop_stream()
    assert got == [b"alpha", b"beta"]


def test_a_slow_reader_holds_the_generator_back(streamer):
    """1,000 items of 64 KiB would be 64 MiB; a reader that stops after one keeps the
    generator to what the transport buffers (flow control), on gRPC and on SSE."""
    with grpc.insecure_channel(streamer.grpc) as channel:
        call = stream_call(channel)(iter([message(mode="big", n=1000)]), timeout=30)
        next(call)
        time.sleep(1.0)
        assert stats(streamer)["produced"] < 200
        call.cancel()
    url = f"{streamer.http}/v2/models/{MODEL}/generate_stream"
    with httpx.stream(
        "POST", url, json={"parameters": {"mode": "big", "n": 1000}}
    ) as response:
        next(response.iter_lines())
        time.sleep(1.0)
        assert stats(streamer)["produced"] < 200


def test_with_two_workers_a_stream_keeps_its_context(tmp_path):
    directory = render(tmp_path / "project")
    (directory / "customize_service.py").write_text(
        (SERVICES / "streaming.py").read_text()
    )
    running = Server(directory, ["--workers", "2"]).wait_ready()
    try:
        for _ in range(4):  # new channels, so streams land on either worker
            with grpc.insecure_channel(running.grpc) as channel:
                messages = [message(f"c{i}", mode="count") for i in range(3)]
                replies = list(stream_call(channel)(iter(messages), timeout=10))
            counts = [
                int(r.infer_response.outputs[0].contents.int64_contents[0])
                for r in replies
            ]
            assert counts == [1, 2, 3]
    finally:
        assert running.stop() == 0
