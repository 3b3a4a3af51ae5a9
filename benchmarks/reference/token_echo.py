"""The bare stack's token stream, the ceiling of benchmarks/token_streams.py: every
request is answered with TOKENS tokens ("tok"), as fast as they can be sent, by a
grpc.aio ModelStreamInfer (Triton's ModelStreamInferResponse, a BYTES output
text_output) and a Starlette SSE route on uvicorn with httptools and uvloop
(`data: {"model_name": ..., "text_output": "tok"}` events), both on one event loop.
With `--threaded N`, gRPC is served by grpcio's threaded server on N threads instead.

    python token_echo.py --http-port 8080 --grpc-port 8081 [--threaded 1000]
"""

import argparse
import asyncio
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

HARNESS = Path(__file__).resolve().parents[3] / "shared" / "bench"
sys.path.insert(0, os.environ.get("BENCH_DIR", str(HARNESS)))
from v2proto import load  # noqa: E402

pb2, pb2_grpc = load()
TOKENS = int(os.environ.get("TOKENS", "64"))


def token_reply(request):
    """One token of the answer to `request`: a BYTES output text_output."""
    reply = pb2.ModelStreamInferResponse()
    response = reply.infer_response
    response.model_name = request.model_name
    response.id = request.id
    output = response.outputs.add(name="text_output", datatype="BYTES")
    output.shape.append(1)
    output.contents.bytes_contents.append(b"tok")
    return reply


class TokenStreams(pb2_grpc.GRPCInferenceServiceServicer):
    async def ServerReady(self, request, context):
        return pb2.ServerReadyResponse(ready=True)

    async def ModelStreamInfer(self, requests, context):
        async for request in requests:
            for _ in range(TOKENS):
                yield token_reply(request)


class ThreadedTokenStreams(pb2_grpc.GRPCInferenceServiceServicer):
    """The same stream on grpcio's threaded server (--threaded), as the generated
    server serves gRPC."""

    def ServerReady(self, request, context):
        return pb2.ServerReadyResponse(ready=True)

    def ModelStreamInfer(self, requests, context):
        for request in requests:
            for _ in range(TOKENS):
                yield token_reply(request)


async def generate_stream(request):
    name = request.path_params["name"]
    await request.body()

    async def events():
        for _ in range(TOKENS):
            item = {"model_name": name, "text_output": "tok"}
            yield b"data: " + json.dumps(item).encode() + b"\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def ready(request):
    return Response(b'{"ready":true}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/v2/models/{name}/generate_stream", generate_stream, methods=["POST"]),
        Route("/v2/health/ready", ready),
    ]
)


async def main(http_port: int, grpc_port: int, threads: int) -> None:
    if threads:  # kept alive by this frame until uvicorn returns
        threaded = grpc.server(ThreadPoolExecutor(threads))
        servicer = ThreadedTokenStreams()
        pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, threaded)
        threaded.add_insecure_port(f"127.0.0.1:{grpc_port}")
        threaded.start()
    else:
        server = grpc.aio.server()
        pb2_grpc.add_GRPCInferenceServiceServicer_to_server(TokenStreams(), server)
        server.add_insecure_port(f"127.0.0.1:{grpc_port}")
        await server.start()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=http_port,
        loop="none",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--grpc-port", type=int, default=8081)
    parser.add_argument(
        "--threaded",
        type=int,
        default=0,
        help="serve gRPC on grpcio's threaded server with this many threads",
    )
    args = parser.parse_args()
    uvloop.install()
    asyncio.run(main(args.http_port, args.grpc_port, args.threaded))
