"""crash_replies.py, in one process: what the supervisor does with each connection a
dead worker held, by the state the worker's ledger gave it."""

import asyncio
import socket

from taichu_runtime.crash_replies import (
    ANSWERING,
    IDLE,
    OWED,
    ConnectionLedger,
    HeldConnections,
)


def worker_with(states):
    """A ledger whose "worker" holds one connection per state; returns the ledger,
    the held connections, and the client end of each connection."""
    held = HeldConnections()
    ledger = ConnectionLedger()
    held.add(ledger)
    clients, servers = [], []
    for state in states:
        client, server = socket.socketpair()
        ledger.opened(server.fileno())
        ledger.owed[server.fileno()] = state
        clients.append(client)
        servers.append(server)
    for server in servers:
        server.close()  # the worker died: only the supervisor's duplicates remain
    return ledger, held, clients


def test_owed_requests_are_answered_and_the_rest_kept_or_closed():
    ledger, held, (idle, owed, answering) = worker_with([IDLE, OWED, ANSWERING])
    assert held.answer(ledger, "the model process died") == 1
    owed.settimeout(1)
    reply = owed.recv(4096)
    assert reply.startswith(b"HTTP/1.1 503 ")
    assert reply.endswith(b'{"error": "the model process died"}')
    answering.settimeout(1)
    assert answering.recv(10) == b""  # closed: half an answer cannot be finished
    idle.setblocking(False)
    try:
        idle.recv(10)
        raise AssertionError("an idle connection must stay open for a hand-over")
    except BlockingIOError:
        pass
    held.drop_orphans()
    idle.settimeout(1)
    assert idle.recv(10) == b""


def test_an_idle_connection_is_served_by_the_worker_it_is_handed_to():
    ledger, held, (idle,) = worker_with([IDLE])
    idle.sendall(b"ping")  # a request the dead worker never read
    held.answer(ledger, "gone")
    heir = ConnectionLedger()
    held.add(heir)
    heir.worker_end.setblocking(False)  # as in_worker() does, in the worker

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data.upper())

    async def adopt():
        loop = asyncio.get_running_loop()
        heir.take_connections(loop, Echo)
        assert held.hand_over(heir) == 1
        return await loop.run_in_executor(None, idle.recv, 10)

    idle.settimeout(2)
    assert asyncio.run(adopt()) == b"PING"
