"""http_api/body.py: a request body read from ASGI messages whole, within
max_request_size, however many chunks it comes in."""

import asyncio
import tracemalloc

import pytest

from taichu_runtime.errors import PayloadTooLarge
from taichu_runtime.http_api import body as body_module
from taichu_runtime.http_api.body import Bodies


def read(chunks, headers=None, limit=1 << 20, disconnect=False):
    """Bodies.read() of `chunks` as uvicorn hands them over."""
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    if disconnect:
        messages[-1]["more_body"] = True
        messages.append({"type": "http.disconnect"})
    pending = iter(messages)

    async def receive():
        return next(pending)

    bodies = Bodies(max_request_size=limit, max_decoded_size=limit)
    return asyncio.run(bodies.read(receive, headers or {}))


def test_a_body_in_one_chunk_is_that_chunk():
    chunk = b'{"inputs": []}'
    assert read([chunk]) is chunk


def test_a_body_in_chunks_is_joined_in_order():
    # small chunks (gathered into blocks) between large ones (kept as they are)
    chunks = [bytes([i]) * (10 if i % 3 else 70_000) for i in range(10)]
    body = read(chunks)
    assert isinstance(body, bytes)  # joined: not a buffer grown chunk by chunk
    assert body == b"".join(chunks)
    assert read([b"", b"abc"]) == b"abc"


def test_a_body_past_join_up_to_grows_in_one_buffer(monkeypatch):
    monkeypatch.setattr(body_module, "JOIN_UP_TO", 2500)
    chunks = [bytes([i]) * 1000 for i in range(10)]
    body = read(chunks)
    assert isinstance(body, bytearray)
    assert body == b"".join(chunks)


def test_a_body_over_the_limit_is_refused_as_it_comes():
    with pytest.raises(PayloadTooLarge, match="max_request_size"):
        read([b"x" * 600, b"x" * 600], limit=1000)
    with pytest.raises(PayloadTooLarge):
        read([b"x" * 1001], limit=1000)
    assert len(read([b"x" * 500, b"x" * 500], limit=1000)) == 1000


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    with pytest.raises(PayloadTooLarge):
        read([], headers={"content-length": "1001"}, limit=1000)


def test_a_client_gone_before_the_end_gives_none():
    assert read([b"x" * 100, b"y" * 100], disconnect=True) is None


def test_a_body_in_tiny_chunks_costs_about_its_size():
    """A client that trickles its body two bytes at a time (within min_upload_rate)
    must not make the worker hold an object for each: some 40 bytes apiece."""
    count = 100_000
    size = 2 * count

    async def receive():
        nonlocal count
        count -= 1
        chunk = bytes((120, 120))  # a new object each time, as uvicorn hands over
        return {"type": "http.request", "body": chunk, "more_body": count > 0}

    bodies = Bodies(max_request_size=size, max_decoded_size=size)
    tracemalloc.start()
    try:
        body = asyncio.run(bodies.read(receive, {}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert body == b"x" * size
    assert peak < 3 * size
