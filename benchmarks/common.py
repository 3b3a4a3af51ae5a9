"""What the benchmark scripts share: where things are, rendering the identity project,
the command line of its server, free ports and the results directory."""

from __future__ import annotations

import io
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("BENCH_DIR", REPO.parent / "shared" / "bench"))

SERVICES = REPO / "benchmarks" / "services"
ANCHORS = Path(os.environ.get("ANCHORS_DIR", "/opt/anchors"))  # setup_anchors.sh's


def mlserver_servers(directory: Path, model: str) -> dict:
    """MLServer 1.7 serving the settings and runtime written into `directory`, with its
    inference pool ("mlserver") and without it ("mlserver-pw0"): name -> (command,
    cwd, environment, model name); {http}, {grpc} and {metrics} are to be filled in."""
    command = f"{ANCHORS / 'mlserver' / 'bin' / 'mlserver'} start ."
    env = {
        "MLSERVER_HTTP_PORT": "{http}",
        "MLSERVER_GRPC_PORT": "{grpc}",
        "MLSERVER_METRICS_PORT": "{metrics}",
        "PYTHONPATH": str(directory),
    }
    without_pool = env | {"MLSERVER_PARALLEL_WORKERS": "0"}
    return {
        "mlserver": (command, directory, env, model),
        "mlserver-pw0": (command, directory, without_pool, model),
    }


def render_project(directory: Path, service: str, bytecode: bool = True) -> Path:
    """A new project in `directory`, serving benchmarks/services/`service`.py (or the
    template's identity service); with its bytecode, as an image has it."""
    subprocess.run(
        [sys.executable, "-m", "taichu_serve", "init", str(directory)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    if service:  # else the documented identity customize_service.py
        shutil.copy(SERVICES / f"{service}.py", directory / "customize_service.py")
    return compile_bytecode(directory) if bytecode else directory


def compile_bytecode(project: Path) -> Path:
    """As the Dockerfile does: no start then compiles the code, whatever
    PYTHONDONTWRITEBYTECODE says."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "--invalidation-mode",
         "checked-hash", str(project)],
        check=True,
    )  # fmt: skip
    return project


def runtime_from(project: Path, revision: str) -> Path:
    """Give `project` the runtime of git `revision` instead of its own: the same project
    served by an earlier commit, to measure a change side by side."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, "templates/app/taichu_runtime"],
        capture_output=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        tarfile.open(fileobj=io.BytesIO(archive)).extractall(tmp)
        shutil.rmtree(project / "taichu_runtime")
        shutil.move(Path(tmp) / "templates/app/taichu_runtime", project)
    (project / "taichu_runtime" / "requirements.txt.jinja").unlink(missing_ok=True)
    return compile_bytecode(project)


def server_command(project: Path, env: dict) -> str:
    """The command line of the generated server, runnable from any directory."""
    settings = {
        "PYTHONPATH": str(project),
        "TAICHU_SERVICE_FILE": str(project / "customize_service.py"),
        "TAICHU_MODEL_PATH": str(project / "models"),
        "TAICHU_HOST": "127.0.0.1",
        **env,
    }
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in settings.items())
    return (
        f"env {assignments} {sys.executable} -m taichu_runtime "
        f"--config {project / 'config.ini'} --http-port {{http}} --grpc-port {{grpc}}"
    )


def start_pinned(
    command: str, cwd, env: dict, log: Path, timeout: float = 120
) -> tuple:
    """Start a server command with the shared harness, pinned to CPU 0, once its
    /v2/health/ready answers 200: (bench.Server, its HTTP base URL, its ports).
    {http}, {grpc} and {metrics} in the command and the environment's values are
    filled in with free ports."""
    sys.path.insert(0, str(BENCH))
    import bench

    ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
    server = bench.Server(
        command.format(**ports),
        str(cwd) if cwd else None,
        {key: value.format(**ports) for key, value in env.items()},
        "0",
        str(log),
    )
    http = f"http://127.0.0.1:{ports['http']}"
    server.start()
    try:
        server.wait_ready(
            lambda: bench.http_get_status(f"{http}/v2/health/ready") == 200, timeout
        )
    except BaseException:
        server.stop()
        raise
    return server, http, ports


def wait_ready(http: str, seconds: float = 30) -> None:
    """Until the server at `http` (its base URL) says it is ready."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{http}/v2/health/ready").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{http} not ready after {seconds:g} s")


def rotated(names: list, round_: int) -> list:
    """`names` in the order of round `round_`: each starts it in turn, so that no
    server always goes first (the first one started or loaded measures differently)."""
    shift = round_ % len(names)
    return names[shift:] + names[:shift]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def results_dir(given: str | None) -> Path:
    """--out, else benchmarks/results/<date-time>; created."""
    out = Path(
        given or REPO / "benchmarks" / "results" / time.strftime("%Y%m%d-%H%M%S")
    )
    out.mkdir(parents=True, exist_ok=True)
    return out
