"""Admission (pipeline/admission.py) and dynamic batching (pipeline/batching.py), without a server."""

import asyncio
import threading

import pytest

from taichu_runtime.errors import (
    Abandoned,
    ModelFailed,
    RequestTimeout,
    TooManyRequests,
)
from taichu_runtime.governance.rate_limit import RateLimit
from taichu_runtime.pipeline.admission import Admission
from taichu_runtime.pipeline.batching import Batcher


def test_admission_queues_in_order_then_rejects_at_once():
    async def main():
        admission = Admission(limit=1, queue_size=2, threads=1)
        order = []
        await admission.acquire()  # in the model

        async def waiter(name):
            await admission.acquire()
            order.append(name)
            admission.release()

        waiting = [asyncio.ensure_future(waiter(n)) for n in "ab"]
        await asyncio.sleep(0)
        with pytest.raises(TooManyRequests):
            await admission.acquire()  # 1 in the model + 2 waiting: full
        admission.release()
        await asyncio.gather(*waiting)
        assert order == ["a", "b"] and admission.active == 0

    asyncio.run(main())


def test_a_thread_waits_for_its_slot_or_times_out():
    admission = Admission(limit=1, queue_size=5, threads=1)
    admission.acquire_blocking(None)
    with pytest.raises(RequestTimeout):
        admission.acquire_blocking(0.05)  # gives up its place
    granted = threading.Event()

    def wait():
        admission.acquire_blocking(5)
        granted.set()

    thread = threading.Thread(target=wait)
    thread.start()
    admission.release()  # handed over to the waiting thread
    assert granted.wait(5)
    thread.join()
    admission.release()
    assert admission.active == 0


def test_the_rate_limit_allows_one_second_of_burst():
    limit = RateLimit(3)
    for _ in range(3):
        limit.take()
    with pytest.raises(TooManyRequests):
        limit.take()


def wanted() -> bool:  # the `abandoned` check of a request someone waits for
    return False


def test_a_batch_is_bounded_and_each_result_goes_to_its_request():
    async def main():
        sizes = []

        async def run_batch(items, contexts):
            sizes.append(len(items))
            return [ValueError("odd") if i % 2 else i * 10 for i in items]

        batcher = Batcher(run_batch, max_size=4, max_delay=0.01)
        calls = [batcher.submit(i, {}, wanted) for i in range(10)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert max(sizes) <= 4 and sum(sizes) == 10
        for i, result in enumerate(results):
            if i % 2:
                assert isinstance(result, ValueError)
            else:
                assert result == i * 10

    asyncio.run(main())


def test_a_free_model_takes_a_lone_request_at_once():
    """Nothing else is on its way: waiting max_batch_delay_ms would only add latency."""

    async def main():
        async def run_batch(items, contexts):
            return items

        batcher = Batcher(run_batch, max_size=8, max_delay=5.0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await batcher.submit(1, {}, wanted) == 1
        assert loop.time() - started < 0.5

    asyncio.run(main())


def test_a_batch_waits_for_the_requests_still_in_preprocess():
    async def main():
        batches = []

        async def run_batch(items, contexts):
            batches.append(items)
            return items

        batcher = Batcher(run_batch, max_size=8, max_delay=5.0)
        for _ in range(3):
            batcher.expect()
        first = asyncio.ensure_future(batcher.submit(0, {}, wanted, expected=True))
        await asyncio.sleep(0.05)
        assert batches == []  # two more are coming
        rest = [batcher.submit(i, {}, wanted, expected=True) for i in (1, 2)]
        assert await asyncio.gather(first, *rest) == [0, 1, 2]
        assert batches == [[0, 1, 2]]

    asyncio.run(main())


def test_a_full_batch_queues_behind_the_running_one_and_a_partial_one_does_not():
    async def main():
        started = []
        release = asyncio.Event()

        async def run_batch(items, contexts):
            started.append(items)
            await release.wait()
            return items

        batcher = Batcher(run_batch, max_size=2, max_delay=5.0)
        calls = [asyncio.ensure_future(batcher.submit(0, {}, wanted))]
        await asyncio.sleep(0.01)  # [0] runs
        calls += [asyncio.ensure_future(batcher.submit(i, {}, wanted)) for i in (1, 2)]
        await asyncio.sleep(0.01)
        assert started == [[0], [1, 2]]  # full: handed over at once
        calls.append(asyncio.ensure_future(batcher.submit(3, {}, wanted)))
        await asyncio.sleep(0.01)
        assert started == [[0], [1, 2]]  # partial: waits for the model
        release.set()
        assert await asyncio.gather(*calls) == [0, 1, 2, 3]
        assert started == [[0], [1, 2], [3]]

    asyncio.run(main())


def test_a_batch_waits_no_longer_than_the_delay_for_what_is_coming():
    async def main():
        batches = []

        async def run_batch(items, contexts):
            batches.append(items)
            return items

        batcher = Batcher(run_batch, max_size=8, max_delay=0.05)
        batcher.expect()
        batcher.expect()  # this one never arrives
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await batcher.submit(0, {}, wanted, expected=True) == 0
        assert 0.04 <= loop.time() - started < 1.0
        batcher.not_coming()
        assert batcher.coming == 0

    asyncio.run(main())


def test_requests_arriving_while_the_model_is_busy_gather_into_the_next_batch():
    async def main():
        batches = []
        model_thread = asyncio.Lock()  # one batch at a time in the model

        async def run_batch(items, contexts):
            async with model_thread:
                batches.append(items)
                await asyncio.sleep(0.05)
            return items

        batcher = Batcher(run_batch, max_size=4, max_delay=5.0)
        first = asyncio.ensure_future(batcher.submit(0, {}, wanted))
        await asyncio.sleep(0.01)  # the model now runs [0]
        later = []
        for i in range(1, 7):
            later.append(asyncio.ensure_future(batcher.submit(i, {}, wanted)))
            await asyncio.sleep(0.001)
        await asyncio.gather(first, *later)
        # [1, 2, 3, 4] was handed to the model full, while [0] ran; [5, 6] gathered
        # until the model was free again.
        assert batches == [[0], [1, 2, 3, 4], [5, 6]]
        assert batcher.running == 0

    asyncio.run(main())


def test_a_batch_result_of_the_wrong_length_fails_the_batch():
    async def main():
        async def run_batch(items, contexts):
            return items[:-1]

        batcher = Batcher(run_batch, max_size=2, max_delay=0.01)
        results = await asyncio.gather(
            batcher.submit(1, {}, wanted),
            batcher.submit(2, {}, wanted),
            return_exceptions=True,
        )
        assert all(isinstance(r, ModelFailed) for r in results)
        assert "must return a list of 2 results" in str(results[0])

    asyncio.run(main())


def test_a_request_nobody_waits_for_is_left_out_of_its_batch():
    async def main():
        batches = []

        async def run_batch(items, contexts):
            batches.append(items)
            return items

        batcher = Batcher(run_batch, max_size=3, max_delay=0.01, dropped=Abandoned)
        gone = {2}
        calls = [batcher.submit(i, {}, lambda i=i: i in gone) for i in range(3)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert batches == [[0, 1]]
        assert results[:2] == [0, 1] and isinstance(results[2], Abandoned)

    asyncio.run(main())
