"""The pipeline (pipeline/host.py) through both of its doors, with no server: the
event-loop door that HTTP uses and the thread door that gRPC threads use must give
the same answers for every kind of service."""

import asyncio
import threading
import time

import numpy as np
import pytest

from taichu_runtime.errors import InvalidInput, ModelFailed, TooManyRequests
from taichu_runtime.pipeline import ModelHost
from taichu_runtime.pipeline.streams import LONG_RUN, READ_AHEAD
from taichu_runtime.protocol import InferRequest
from taichu_runtime.service import Service


def doubled(data, context):
    """One result, or with batching a list of them (one per request)."""
    if isinstance(data, list):
        return [doubled(*each) for each in zip(data, context)]
    return {"y": data["x"] * 2, "seen": np.array([context["request_id"]])}


class Doubler(Service):
    def _inference(self, data, context):
        return doubled(data, context)


class AsyncDoubler(Service):
    async def _inference(self, data, context):
        await asyncio.sleep(0)
        return doubled(data, context)


class Counter(Service):
    """Streams x, x+1, x+2; remembers what a stream's context kept."""

    def _postprocess(self, data, context):
        context["messages"] = context.get("messages", 0) + 1
        start = int(data["x"][0])
        return (
            {"y": np.array([start + i]), "n": context["messages"]} for i in range(3)
        )


class AsyncCounter(Service):
    async def _postprocess(self, data, context):
        async def items():
            for i in range(3):
                yield {"y": np.array([int(data["x"][0]) + i])}

        return items()


class Broken(Service):
    def _inference(self, data, context):
        raise ValueError("bad weights")


class ReturnsList(Service):
    def _postprocess(self, data, context):
        return [1, 2]


def request(x, request_id="r1", outputs=None):
    return InferRequest(
        model_name="m",
        model_version="1",
        id=request_id,
        parameters={},
        data={"x": np.array(x)},
        requested_outputs=outputs,
    )


def both_doors(service, make_request, batch=0, show_errors=False):
    """What infer() answers on the loop and infer_blocking() from a thread, or the
    error each raised."""
    host = ModelHost(
        service("/nowhere"), "m", "1", max_batch_size=batch, show_errors=show_errors
    )

    async def run():
        loop = asyncio.get_running_loop()
        answers = []
        try:
            answers.append(await host.infer(make_request()))
        except Exception as error:
            answers.append(error)

        def from_thread():
            try:
                return host.infer_blocking(make_request(), loop, timeout=5)
            except Exception as error:
                return error

        answers.append(await asyncio.to_thread(from_thread))
        return answers

    return asyncio.run(run())


@pytest.mark.parametrize("service", [Doubler, AsyncDoubler])
@pytest.mark.parametrize("batch", [0, 4])
def test_both_doors_answer_alike(service, batch):
    for response in both_doors(service, lambda: request([1, 2]), batch):
        assert response.model_name == "m" and response.id == "r1"
        assert response.outputs["y"].tolist() == [2, 4]
        assert response.outputs["seen"].tolist() == [b"r1"]


def test_only_the_requested_outputs_and_a_clear_error_for_a_missing_one():
    for response in both_doors(Doubler, lambda: request([1], outputs=["y"])):
        assert list(response.outputs) == ["y"]
    for error in both_doors(Doubler, lambda: request([1], outputs=["z"])):
        assert isinstance(error, InvalidInput)
        assert "z not produced" in str(error) and "y, seen" in str(error)


def test_a_hook_that_raises_or_returns_no_dict_is_a_model_failure():
    for error in both_doors(Broken, lambda: request([1])):
        assert isinstance(error, ModelFailed)
        assert str(error) == (
            "the model failed on request r1; the server log has its error"
        )
    for error in both_doors(Broken, lambda: request([1]), show_errors=True):
        assert str(error) == "the model raised ValueError: bad weights"
    for error in both_doors(ReturnsList, lambda: request([1])):
        assert isinstance(error, ModelFailed)
        assert "must return a dict, got list" in str(error)


def test_a_stream_on_the_unary_door_is_an_error():
    for error in both_doors(Counter, lambda: request([5])):
        assert isinstance(error, ModelFailed) and "returned a stream" in str(error)


def test_a_request_without_id_gets_one():
    for response in both_doors(Doubler, lambda: request([1], request_id="")):
        assert len(response.id) == 32
        assert response.outputs["seen"].tolist() == [response.id.encode()]


@pytest.mark.parametrize("service", [Counter, AsyncCounter])
def test_streams_alike_through_both_doors_and_the_context_lasts(service):
    host = ModelHost(service("/nowhere"), "m", "1")

    async def run():
        loop = asyncio.get_running_loop()
        context: dict = {}
        on_loop = [r async for r in host.stream(request([5]), context)]
        on_loop += [r async for r in host.stream(request([7]), context)]

        def from_thread():
            context: dict = {}
            items = list(host.stream_blocking(request([5]), loop, context))
            return items + list(host.stream_blocking(request([7]), loop, context))

        return on_loop, await asyncio.to_thread(from_thread)

    on_loop, from_thread = asyncio.run(run())
    for responses in (on_loop, from_thread):
        assert [int(r.outputs["y"][0]) for r in responses] == [5, 6, 7, 7, 8, 9]
        if service is Counter:  # the stream's context kept the count
            assert [int(r.outputs["n"]) for r in responses] == [1] * 3 + [2] * 3


def test_an_abandoned_stream_is_closed():
    closed = threading.Event()

    class Endless(Service):
        def _postprocess(self, data, context):
            def items():
                try:
                    while True:
                        yield {"y": np.array([1])}
                finally:
                    closed.set()

            return items()

    host = ModelHost(Endless("/nowhere"), "m", "1")

    async def run():
        items = host.stream(request([1]))
        await items.__anext__()
        await items.aclose()

    asyncio.run(run())
    assert closed.wait(5)
    closed.clear()
    items = host.stream_blocking(request([1]), loop=None)
    next(items)
    items.close()
    assert closed.wait(5)


def pulled_ahead(
    step_seconds: float,
    items: int = 40,
    other_job_at: int = 0,
    door: str = "loop",
    item_bytes: int = 1,
) -> dict:
    """How many items a stream's generator had produced beyond those the reader had
    taken, at most, when each item takes `step_seconds` to make; and, if at item
    `other_job_at` another job was handed to the model thread, how many items the
    generator had made when that job ran."""
    taken = [0]
    made_so_far = [0]
    most = [0]
    made_when_other_ran = []

    def other_job():
        made_when_other_ran.append(made_so_far[0])

    class Generator(Service):
        def _postprocess(self, data, context):
            def items_():
                for made in range(1, items + 1):
                    if step_seconds:
                        time.sleep(step_seconds)
                    made_so_far[0] = made
                    most[0] = max(most[0], made - taken[0])
                    if made == other_job_at:
                        host._threads.post(other_job)
                    yield {"y": np.full(item_bytes, made, np.uint8)}

            return items_()

    host = ModelHost(Generator("/nowhere"), "m", "1")

    async def run():
        async for _ in host.stream(request([1])):
            taken[0] += 1
            await asyncio.sleep(0.001)  # a reader slower than the generator

    if door == "loop":
        asyncio.run(run())
    else:  # a gRPC stream's thread
        for _ in host.stream_blocking(request([1]), loop=None):
            taken[0] += 1
            time.sleep(0.001)
    assert taken[0] == items
    return {"ahead": most[0], "other_ran_after": made_when_other_ran}


@pytest.mark.parametrize("door", ["loop", "thread"])
def test_quick_stream_items_are_pulled_in_runs_and_slow_ones_one_at_a_time(door):
    """Quick items share a hand-over to the model thread (or a turn of a gRPC
    stream's thread), but no more than LONG_RUN run ahead of a slow reader; a slow
    generator is not run ahead of its reader, so that other requests get the thread
    between its items (and a reader that stops does not leave work done for
    nobody)."""
    ahead = pulled_ahead(0, items=200, door=door)["ahead"]
    assert 2 * READ_AHEAD < ahead <= LONG_RUN + 1
    assert pulled_ahead(0.002, items=10, door=door)["ahead"] == 1


@pytest.mark.parametrize("door", ["loop", "thread"])
def test_large_items_are_pulled_one_at_a_time(door):
    """A run ends once its items hold RUN_BYTES: a reader that stops leaves no more
    than one large item (64 KiB) made ahead of it."""
    assert pulled_ahead(0, items=40, door=door, item_bytes=64 * 1024)["ahead"] == 1
    assert pulled_ahead(0, items=40, door=door, item_bytes=1024)["ahead"] <= 64


@pytest.mark.parametrize("door", ["loop", "thread"])
def test_a_run_of_quick_items_gives_way_to_a_waiting_job(door):
    """Past READ_AHEAD items a run goes on only while nobody else waits: a job that
    comes in the middle of a run waits for at most READ_AHEAD items."""
    ran = pulled_ahead(0, items=200, other_job_at=3, door=door)["other_ran_after"]
    assert ran and ran[0] <= READ_AHEAD + 1


def test_the_items_before_a_failing_one_reach_the_reader():
    """An item that raises ends its run: the items pulled before it are sent first."""

    class FailsAtFour(Service):
        def _postprocess(self, data, context):
            def items_():
                for made in range(1, 4):
                    yield {"y": np.array([made])}
                raise ValueError("the fourth item")

            return items_()

    host = ModelHost(FailsAtFour("/nowhere"), "m", "1")
    received = []

    async def run():
        async for response in host.stream(request([1])):
            received.append(int(response.outputs["y"][0]))

    with pytest.raises(ModelFailed):
        asyncio.run(run())
    assert received == [1, 2, 3]


def test_a_full_queue_turns_requests_away_on_both_doors():
    started, release = threading.Event(), threading.Event()

    class Slow(Service):
        def _inference(self, data, context):
            started.set()
            release.wait(5)
            return {"y": data["x"]}

    host = ModelHost(Slow("/nowhere"), "m", "1", max_concurrent=1, max_queue=0)

    async def run():
        loop = asyncio.get_running_loop()
        busy = asyncio.ensure_future(host.infer(request([1])))
        await asyncio.to_thread(started.wait, 5)
        with pytest.raises(TooManyRequests):
            await host.infer(request([2]))
        with pytest.raises(TooManyRequests):
            await asyncio.to_thread(host.infer_blocking, request([3]), loop, 5)
        release.set()
        return await busy

    assert asyncio.run(run()).outputs["y"].tolist() == [1]
