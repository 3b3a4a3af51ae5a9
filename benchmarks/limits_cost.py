"""What the per-connection bounds (http_api/connection_limits.py) cost a request, in
CPU time, without the network's noise.

    python benchmarks/limits_cost.py [--requests 20000] [--rounds 8]

Feeds the same small keep-alive POST into uvicorn's httptools protocol and into the
bounded protocol of a generated project, on one event loop with a do-nothing ASGI
app, rounds interleaved, and prints the median CPU time per request of each and the
difference. Not part of CI.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import render_project

REQUEST = (
    b"POST /v2/models/M/infer HTTP/1.1\r\nHost: x\r\n"
    b"Content-Type: application/json\r\nContent-Length: 90\r\n\r\n" + b"x" * 90
)


async def app(scope, receive, send):
    await receive()
    start = {"type": "http.response.start", "status": 200}
    await send({**start, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


class Transport:
    """Enough of an asyncio transport for the protocol; writes go nowhere."""

    def write(self, data) -> None:
        pass

    def get_extra_info(self, name, default=None):
        return default

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def cpu_per_request(protocol_class, requests: int) -> float:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    config = Config(app, lifespan="off", access_log=False)
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(Transport())
    for _ in range(200):  # warm up
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)
    started = time.process_time()
    for _ in range(requests):
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)
    return (time.process_time() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = render_project(Path(tmp) / "project", "")
        sys.path.insert(0, str(project))
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        from taichu_runtime.http_api.connection_limits import bounded_protocol
        from taichu_runtime.settings import load_settings

        bounded = bounded_protocol(load_settings([], environ={}))
        times: dict = {"httptools": [], "bounded": []}

        async def run() -> None:
            for _ in range(args.rounds):
                for name, cls in (
                    ("httptools", HttpToolsProtocol),
                    ("bounded", bounded),
                ):
                    times[name].append(await cpu_per_request(cls, args.requests))

        try:
            import uvloop

            uvloop.run(run())
        except ImportError:
            asyncio.run(run())
    plain, with_bounds = (statistics.median(times[k]) for k in ("httptools", "bounded"))
    print(f"httptools protocol: {plain:.2f} µs per request (median of {args.rounds})")
    print(f"with the bounds:    {with_bounds:.2f} µs per request")
    print(f"the bounds cost:    {with_bounds - plain:.2f} µs per request")


if __name__ == "__main__":
    main()
