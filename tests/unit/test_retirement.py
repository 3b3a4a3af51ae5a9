"""retirement.py and the gRPC options that replacing workers needs, in one process."""

import os
import socket

from taichu_runtime import retirement
from taichu_runtime.server import FOREVER_MS, connection_age
from taichu_runtime.settings import load_settings


def test_counting_connections_leaves_no_file_open():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(20):
            assert retirement.connections_on(port) == 1  # the accepted end
        assert len(os.listdir("/proc/self/fd")) == before
        client.close()
        accepted.close()


def test_a_listener_that_stops_listening_refuses_new_connections():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        assert retirement.stop_listening(port)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            raise AssertionError("a connection was accepted after stop_listening")
        except ConnectionRefusedError:
            pass
    assert not retirement.stop_listening(port)  # none left to stop


def test_replacing_workers_gives_grpc_connections_an_age_that_cuts_nothing():
    assert connection_age(load_settings([], environ={})) == []
    recycling = load_settings(["--max-worker-requests", "1000"], environ={})
    assert dict(connection_age(recycling)) == {
        "grpc.max_connection_age_ms": retirement.RECYCLE_CONNECTION_AGE * 1000,
        "grpc.max_connection_age_grace_ms": FOREVER_MS,
    }
    chosen = load_settings(
        ["--max-worker-requests", "1000", "--max-connection-age", "5"], environ={}
    )
    assert dict(connection_age(chosen)) == {
        "grpc.max_connection_age_ms": 5000,
        "grpc.max_connection_age_grace_ms": 30000,  # shutdown_timeout
    }
