"""sockets.py: the gRPC port check refuses a port in use, not one in TIME_WAIT."""

import socket

import pytest

from taichu_runtime.sockets import StartupError, check_port_free


def test_a_port_held_by_a_listener_is_refused():
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(
            StartupError, match=f"cannot listen on gRPC 127.0.0.1:{port}"
        ):
            check_port_free("127.0.0.1", port)


def test_a_port_whose_server_closed_a_connection_is_free_again():
    """The server side closing first leaves its end in TIME_WAIT for a minute: a
    restart right after must not be refused for it."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server closes first: its end goes to TIME_WAIT
        client.recv(1)
        client.close()
    check_port_free("127.0.0.1", port)  # raised "Address already in use" before
