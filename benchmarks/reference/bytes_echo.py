"""The bare stack's large-tensor ceiling for benchmarks/tensor_sizes.py: a plain ASGI
app on uvicorn (httptools, uvloop) that answers every POST with the bytes it was sent
(and the same Inference-Header-Content-Length), with no parsing in between.

    python bytes_echo.py --port 8080
"""

import argparse

import uvicorn

READY = b'{"ready":true}'


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["method"] != "POST":
        await answer(send, READY, [(b"content-type", b"application/json")])
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    headers = [(b"content-type", b"application/octet-stream")]
    for name, value in scope["headers"]:
        if name == b"inference-header-content-length":
            headers.append((name, value))
    await answer(send, b"".join(chunks), headers)


async def answer(send, body: bytes, headers: list) -> None:
    headers = headers + [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
