"""Fixtures of this project's tests: `python -m pytest tests` in the project directory
(after `pip install -r taichu_runtime/requirements.txt -r requirements.txt pytest`).

These files are yours, like customize_service.py: `taichu_serve regenerate` never
touches tests/. Edit SAMPLE, or the fixtures, to fit your model.

- `model`: customize_service.py loaded in this process (taichu_runtime.in_process).
- `server`: the real server (`python -m taichu_runtime`) on free ports.
- `sample_request`: the v2 request the tests send: the first request of the warm-up
  file if config.ini names one, else one built from the Service's declared `inputs`,
  else SAMPLE.
- `streaming`: whether the service answers it with a stream (then only the streaming
  endpoints can carry the answer).
"""

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict

import pytest

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))  # taichu_runtime and your own modules

from taichu_runtime.errors import StreamOnly  # noqa: E402
from taichu_runtime.http_api.openapi import example_request  # noqa: E402
from taichu_runtime.in_process import LocalModel  # noqa: E402
from taichu_runtime.loader import alias_taichu_serve  # noqa: E402
from taichu_runtime.warmup import read_requests  # noqa: E402

# `from taichu_serve import Service` in your modules, where taichu-serve is not
# installed: this project's own base class (where it is, the same class).
if importlib.util.find_spec("taichu_serve") is None:
    alias_taichu_serve()

SAMPLE: Dict[str, Any] = {
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]
}


@pytest.fixture(scope="session")
def model():
    with LocalModel(PROJECT) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def sample_request(model) -> Dict[str, Any]:
    if model.settings.warmup_file:
        return read_requests(PROJECT / model.settings.warmup_file)[0]
    declared = model.metadata()["inputs"]
    return example_request(declared) if declared else SAMPLE


@pytest.fixture(scope="session")
def streaming(model, sample_request) -> bool:
    try:
        model.infer(sample_request)
    except StreamOnly:
        return True
    except Exception:
        pass  # a broken service: the tests that send the request say so
    return False


class RunningServer:
    """`python -m taichu_runtime` in the project directory, on free ports, with your
    config.ini but without its token and TLS (the tests check the protocol)."""

    def __init__(self, log_path: Path) -> None:
        self.http_port, self.grpc_port = free_port(), free_port()
        self.http = f"http://127.0.0.1:{self.http_port}"
        self.grpc = f"127.0.0.1:{self.grpc_port}"
        self.log_path = log_path
        command = [
            sys.executable, "-m", "taichu_runtime", "--host", "127.0.0.1",
            "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
            "--token", "", "--tls-cert", "", "--tls-key", "",
        ]  # fmt: skip
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(
                command, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"the server exited ({self.process.returncode}):\n{self.log}"
                )
            try:
                url = f"{self.http}/v2/health/ready"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"the server was not ready within {timeout:.0f} s:\n{self.log}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    running = RunningServer(tmp_path_factory.mktemp("server") / "server.log")
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()
