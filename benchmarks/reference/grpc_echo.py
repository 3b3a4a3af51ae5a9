"""A bare gRPC v2 echo, to measure what one hand-over costs on its own, on grpc.aio
and on grpcio's threaded server.

    python grpc_echo.py --port 8081 --hop none|await|thread|sync|sync-thread|sync-pipelined

--hop none:   the reply is built in the handler (the shared harness's grpc.aio ceiling)
--hop await:  the handler first awaits once (asyncio.sleep(0)): one suspension
--hop thread: the reply is built on a worker thread (run_in_executor), as any server
              must do that keeps the user's code off the event loop
--hop sync:   grpcio's threaded server (no event loop): the handler runs on a pool thread
--hop sync-thread: the threaded server, the reply built on one other thread
--hop sync-pipelined: as sync-thread; a stream's messages are read ahead on a thread
              of their own and handed over without waiting for the previous reply

ModelStreamInfer answers each message of the stream the same way.
"""

import argparse
import asyncio
import os
import queue
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

HARNESS = Path(__file__).resolve().parents[3] / "shared" / "bench"
sys.path.insert(0, os.environ.get("BENCH_DIR", str(HARNESS)))
from v2proto import load  # noqa: E402  (compiles the harness's v2 proto)

pb2, pb2_grpc = load()


def reply_to(request):
    reply = pb2.ModelInferResponse(
        model_name=request.model_name,
        model_version=request.model_version,
        id=request.id,
    )
    for tensor in request.inputs:
        output = reply.outputs.add(name=tensor.name, datatype=tensor.datatype)
        output.shape.extend(tensor.shape)
        if tensor.HasField("contents"):
            output.contents.CopyFrom(tensor.contents)
    reply.raw_output_contents.extend(request.raw_input_contents)
    return reply


class Echo(pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, hop: str) -> None:
        self.hop = hop
        self.thread = ThreadPoolExecutor(1)

    async def ServerReady(self, request, context):
        return pb2.ServerReadyResponse(ready=True)

    async def ModelReady(self, request, context):
        return pb2.ModelReadyResponse(ready=True)

    async def ModelInfer(self, request, context):
        if self.hop == "await":
            await asyncio.sleep(0)
        elif self.hop == "thread":
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.thread, reply_to, request)
        return reply_to(request)

    async def ModelStreamInfer(self, requests, context):
        async for request in requests:
            if self.hop == "thread":
                loop = asyncio.get_running_loop()
                reply = await loop.run_in_executor(self.thread, reply_to, request)
            else:
                reply = reply_to(request)
            yield pb2.ModelStreamInferResponse(infer_response=reply)


class SyncEcho(pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, hop: str) -> None:
        self.thread = ThreadPoolExecutor(1) if hop != "sync" else None
        self.pipelined = hop == "sync-pipelined"

    def ServerReady(self, request, context):
        return pb2.ServerReadyResponse(ready=True)

    def ModelReady(self, request, context):
        return pb2.ModelReadyResponse(ready=True)

    def ModelInfer(self, request, context):
        if self.thread is not None:
            return self.thread.submit(reply_to, request).result()
        return reply_to(request)

    def ModelStreamInfer(self, requests, context):
        if self.pipelined:
            yield from self._pipelined(requests)
            return
        for request in requests:
            reply = self.ModelInfer(request, context)
            yield pb2.ModelStreamInferResponse(infer_response=reply)

    def _pipelined(self, requests):
        """A second thread reads the stream and hands each message to the other
        thread at once; this one sends the replies in order as they are ready."""
        replies = queue.SimpleQueue()
        window = threading.Semaphore(16)  # messages read but not answered yet

        def read():
            for request in requests:
                window.acquire()
                replies.put(self.thread.submit(reply_to, request))
            replies.put(None)

        threading.Thread(target=read, daemon=True).start()
        while True:
            future = replies.get()
            if future is None:
                return
            reply = future.result()
            window.release()
            yield pb2.ModelStreamInferResponse(infer_response=reply)


def serve_sync(port: int, hop: str) -> None:
    server = grpc.server(ThreadPoolExecutor(4))
    pb2_grpc.add_GRPCInferenceServiceServicer_to_server(SyncEcho(hop), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


async def serve(port: int, hop: str) -> None:
    server = grpc.aio.server()
    pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Echo(hop), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--hop",
        choices=["none", "await", "thread", "sync", "sync-thread", "sync-pipelined"],
        default="none",
    )
    args = parser.parse_args()
    if args.hop.startswith("sync"):
        serve_sync(args.port, args.hop)
    else:
        asyncio.run(serve(args.port, args.hop))
