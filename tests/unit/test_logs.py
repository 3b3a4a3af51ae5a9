"""logs.py: access lines written straight to the handler equal those made by logging."""

import io
import logging
import os
import re
import time

import pytest

from taichu_runtime import background, logs
from taichu_runtime.logs import new_request_id


@pytest.fixture
def restored_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    tasks = background._tasks[:]
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    background._tasks[:] = tasks
    logs.ACCESS_LOG.deferred, logs.ACCESS_LOG.handler = False, None


@pytest.mark.parametrize("json_lines", [False, True])
def test_access_lines_written_directly_equal_those_made_by_logging(
    restored_logging, json_lines
):
    logs.configure_logging("info", json_lines=json_lines, batched=True)
    handler = logs.ACCESS_LOG.handler
    assert handler is not None
    entries = [
        (time.time() + k * 0.3337, f"id{k}", "M", "grpc", 200 + k, 0.1234567 * k)
        for k in range(50)
    ]
    outputs = []
    for direct in (True, False):
        handler.stream = io.StringIO()
        for entry in entries:
            if direct:
                logs.ACCESS_LOG.backlog.append(entry)
            else:
                logs.ACCESS_LOG._write(entry)  # through a LogRecord
        logs.ACCESS_LOG.drain()
        handler.flush()
        outputs.append(handler.stream.getvalue())
    assert logs.ACCESS_LOG._direct_handler() is handler
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 50


def test_request_ids_are_32_hex_digits_and_differ_across_forked_workers():
    assert re.fullmatch(r"[0-9a-f]{32}", new_request_id())
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a worker: forked from the supervisor, as multiprocessing does
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    from_child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    # Without a reseed after the fork the child would repeat the parent's next id.
    assert from_child != new_request_id()
