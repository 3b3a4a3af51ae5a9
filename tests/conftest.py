"""Shared fixtures: render projects into temp dirs and run their servers as real processes."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import httpx
import pytest
from tritonclient.grpc import service_pb2 as pb2

REPO = Path(__file__).resolve().parents[1]
SERVICES = Path(__file__).resolve().parent / "services"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(
    *args: str, cwd: Optional[Path] = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run the installed `taichu_serve` command."""
    result = subprocess.run(
        [sys.executable, "-m", "taichu_serve", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"taichu_serve {' '.join(args)} failed:\n{result.stderr}")
    return result


def render(directory: Path, *args: str) -> Path:
    cli("init", str(directory), *args)
    return directory


def readme_example(heading: str) -> str:
    """The first python code block after a heading of README.md: docs examples are tested."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading) :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("```", start)]


def model_infer(channel):
    """The v2 ModelInfer call of a gRPC `channel` (sync or asyncio)."""
    return channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer",
        request_serializer=pb2.ModelInferRequest.SerializeToString,
        response_deserializer=pb2.ModelInferResponse.FromString,
    )


def self_signed(directory):
    """A certificate for localhost / 127.0.0.1 and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    names = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class Server:
    """A generated server running as a subprocess on free ports."""

    def __init__(
        self,
        project: Path,
        args: List[str] = (),
        env: Optional[Dict[str, str]] = None,
        python: str = sys.executable,
        ports: Optional[Tuple[int, int]] = None,
    ) -> None:
        self.project = project
        self.http_port, self.grpc_port = ports or (free_port(), free_port())
        self.http = f"http://127.0.0.1:{self.http_port}"
        self.grpc = f"127.0.0.1:{self.grpc_port}"
        self.log_path = project / f"server-{self.http_port}.log"
        command = [
            python,
            "-m",
            "taichu_runtime",
            "--host",
            "127.0.0.1",
            "--http-port",
            str(self.http_port),
            "--grpc-port",
            str(self.grpc_port),
            *args,
        ]
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            command,
            cwd=project,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 30, ca_file=None) -> "Server":
        """Until /v2/health/ready answers 200; over TLS trusting `ca_file`, if given."""
        base, verify = self.http, True
        if ca_file is not None:
            base = self.http.replace("http://", "https://")
            verify = ssl.create_default_context(cafile=str(ca_file))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.process.returncode}:\n{self.log}"
                )
            try:
                ready = httpx.get(base + "/v2/health/ready", timeout=1, verify=verify)
                if ready.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.log}")

    def wait_exit(self, timeout: float = 30) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    """A project rendered by `taichu_serve init`, untouched: the documented identity service."""
    return render(tmp_path_factory.mktemp("render") / "project")


@pytest.fixture(scope="session")
def server(project):
    running = Server(project).wait_ready()
    yield running
    running.stop()


@pytest.fixture
def make_project(tmp_path):
    """A fresh project whose customize_service.py is tests/services/<name>.py."""

    made = []

    def make(service: Optional[str] = None, *init_args: str) -> Path:
        made.append(service)
        directory = render(tmp_path / f"project{len(made)}", *init_args)
        if service:
            shutil.copy(SERVICES / f"{service}.py", directory / "customize_service.py")
        return directory

    return make


@pytest.fixture
def start_server():
    started: List[Server] = []

    def start(
        project: Path, *args: str, env=None, ready: bool = True, ports=None
    ) -> Server:
        running = Server(project, list(args), env, ports=ports)
        started.append(running)
        return running.wait_ready() if ready else running

    yield start
    for running in started:
        running.stop()
