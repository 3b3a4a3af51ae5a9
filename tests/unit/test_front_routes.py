"""The routes answered in front of FastAPI (http_api/infer_route.py): the probes at
once, from the moment the worker listens; every other route once the FastAPI app,
built on a thread, is there (a request meanwhile waits for it, and is answered)."""

import asyncio
import json
import threading
import time

import pytest

from taichu_runtime.http_api.infer_route import InferRoute
from taichu_runtime.state import ServerState


def http_get(path: str) -> dict:
    return {"type": "http", "method": "GET", "path": path, "headers": []}


async def call(front: InferRoute, path: str):
    """(status, body) of GET `path`."""
    messages = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        messages.append(message)

    await front(http_get(path), receive, send)
    status = messages[0]["status"]
    return status, b"".join(m.get("body", b"") for m in messages[1:])


async def hello_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"from the app"})


def test_probes_answer_while_the_app_is_built_and_other_routes_wait_for_it():
    async def scenario():
        state = ServerState()
        front = InferRoute(state, guard=None, bodies=None)
        building = threading.Event()

        def slow_app():
            building.set()
            time.sleep(0.5)  # FastAPI's import, drawn out
            return hello_app

        front.build_app(slow_app)
        other = asyncio.ensure_future(call(front, "/v2/models"))
        await asyncio.to_thread(building.wait)
        started = time.monotonic()
        status, body = await call(front, "/v2/health/live")
        assert (status, json.loads(body)) == (200, {"live": True})
        status, body = await call(front, "/health/ready")  # not loaded yet
        assert (status, json.loads(body)) == (503, {"ready": False})
        assert time.monotonic() - started < 0.2  # not held up by the build
        assert not other.done()
        assert await other == (200, b"from the app")

    asyncio.run(scenario())


def test_a_failed_build_fails_the_other_routes_not_the_probes():
    async def scenario():
        front = InferRoute(ServerState(), guard=None, bodies=None)

        def broken():
            raise ImportError("no fastapi here")

        front.build_app(broken)
        # uvicorn answers 500 for an app that raises.
        with pytest.raises(ImportError, match="no fastapi here"):
            await call(front, "/v2/models")
        status, _ = await call(front, "/v2/health/live")
        assert status == 200

    asyncio.run(scenario())
