"""http_api/corked_writes.py: what a stream writes in one step of the event loop goes
out in one call, in order, and nothing is held past the step, a close or the end of
the stream."""

import asyncio
import socket

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from taichu_runtime.http_api.corked_writes import CorkedTransport, corked


class Recorded:
    """A real connection's transport, and each call made to it."""

    def __init__(self, transport) -> None:
        self.transport = transport
        self.calls: list = []

    def write(self, data) -> None:
        self.calls.append(("write", [bytes(data)]))
        self.transport.write(data)

    def writelines(self, chunks) -> None:
        self.calls.append(("writelines", [bytes(c) for c in chunks]))
        self.transport.writelines(chunks)

    def __getattr__(self, name):
        return getattr(self.transport, name)


async def connected():
    """(corked transport, what it calls, the peer's socket) over a real socket pair."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    recorded = Recorded(transport)
    theirs.setblocking(False)
    return CorkedTransport(recorded, loop), recorded, theirs


async def received(peer: socket.socket, size: int) -> bytes:
    return await read_until(peer, lambda data: len(data) >= size)


async def read_until(peer: socket.socket, done) -> bytes:
    """What the peer receives until done(what came) or the connection closes."""
    loop = asyncio.get_running_loop()
    data = b""
    while not done(data):
        chunk = await loop.sock_recv(peer, 4096)
        if not chunk:
            break
        data += chunk
    return data


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 10))


def test_one_steps_writes_go_out_together_once_it_is_over():
    async def main():
        corked, recorded, peer = await connected()
        corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
        corked.writelines([b"data: 1\n\n", memoryview(b"data: 2\n\n")])
        assert recorded.calls == []  # held while the step goes on
        assert corked.get_write_buffer_size() == 37
        await asyncio.sleep(0)
        assert recorded.calls == [
            ("writelines", [b"HTTP/1.1 200 OK\r\n\r\n", b"data: 1\n\n", b"data: 2\n\n"])
        ]
        assert await received(peer, 37) == (
            b"HTTP/1.1 200 OK\r\n\r\ndata: 1\n\ndata: 2\n\n"
        )
        corked.write(b"data: 3\n\n")  # a later step: a write of its own
        await asyncio.sleep(0)
        assert recorded.calls[-1] == ("write", [b"data: 3\n\n"])
        corked.close()
        peer.close()

    run(main())


def test_close_sends_what_is_held_first():
    async def main():
        corked, recorded, peer = await connected()
        corked.write(b"last words")
        corked.close()
        assert recorded.calls == [("write", [b"last words"])]
        assert await received(peer, 10) == b"last words"
        await asyncio.sleep(0)  # the step's flush finds nothing left
        assert len(recorded.calls) == 1
        peer.close()

    run(main())


def test_abort_drops_what_is_held_as_it_drops_the_rest():
    async def main():
        corked, recorded, peer = await connected()
        corked.write(b"never sent")
        corked.abort()
        await asyncio.sleep(0)
        assert recorded.calls == []
        peer.close()

    run(main())


@pytest.mark.parametrize("attribute", ["is_closing", "pause_reading", "get_extra_info"])
def test_everything_else_is_the_transports(attribute):
    async def main():
        corked, recorded, peer = await connected()
        assert getattr(corked, attribute) == getattr(recorded.transport, attribute)
        corked.close()
        peer.close()

    run(main())


def test_a_stream_is_corked_and_sent_in_full_before_its_end_is_written():
    """generate_stream's pattern: the head and events inside corked(), the end after
    it. The crash ledger (crash_replies.py) marks a connection idle once its response
    is complete: by then the whole response must be with the kernel, in order."""

    async def app(scope, receive, send):
        cycle = receive.__self__
        with corked(cycle):
            await send({"type": "http.response.start", "status": 200})
            for event in (b"one ", b"two ", b"three"):
                await send(
                    {"type": "http.response.body", "body": event, "more_body": True}
                )
                assert cycle.transport.get_write_buffer_size() > 0  # held
        assert not isinstance(cycle.transport, CorkedTransport)  # as it was
        await send({"type": "http.response.body", "body": b""})

    held_at_completion = []

    class Watched(HttpToolsProtocol):
        def on_response_complete(self) -> None:
            super().on_response_complete()
            held_at_completion.append(self.transport.get_write_buffer_size())

    async def main():
        loop = asyncio.get_running_loop()
        config = uvicorn.Config(app, lifespan="off", log_config=None)
        config.load()
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        protocol = Watched(config, ServerState(), app_state={})
        await loop.connect_accepted_socket(lambda: protocol, ours)
        await loop.sock_sendall(theirs, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        reply = await read_until(theirs, lambda data: data.endswith(b"0\r\n\r\n"))
        assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
        assert reply.endswith(b"4\r\none \r\n4\r\ntwo \r\n5\r\nthree\r\n0\r\n\r\n")
        assert held_at_completion == [0]
        theirs.close()

    run(main())


def test_without_a_cycle_nothing_is_corked():
    with corked(None):
        pass
