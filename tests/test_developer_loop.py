"""The developer's loop: `run --reload`, `predict`, and a service importable and
runnable in-process (issue 23, points 1-3)."""

import base64
import json
import signal
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

from conftest import cli, free_port

VERSIONED = """import time

from taichu_serve import Service

VERSION = "{version}"


class Versioned(Service):
    thread_safe = True

    def __init__(self, model_path):
        super().__init__(model_path)
        {init}

    def _inference(self, data, context):
        time.sleep(float(context["parameters"].get("sleep", 0)))
        return {{"version": VERSION}}
"""

DOUBLING = """import time

import numpy as np

from taichu_serve import Service


class Doubling(Service):
    inputs = [{"name": "x", "datatype": "FP32", "shape": [-1]}]

    def _inference(self, data, context):
        if "tokens" in data:  # a stream: one item per token, a pause between
            return self._tokens(int(data["tokens"][0]))
        return {name: value * 2 if value.dtype != object else value
                for name, value in data.items()}

    def _tokens(self, count):
        for index in range(count):
            yield {"token": np.array([index])}
            time.sleep(1.0)
"""


def write_service(project, text: str) -> None:
    path = project / "customize_service.py"
    path.write_text(text)


def version_of(http: str, sleep: float = 0) -> str:
    response = httpx.post(
        f"{http}/v2/models/Versioned/infer",
        json={
            "inputs": [{"name": "x", "datatype": "INT64", "shape": [1], "data": [1]}],
            "parameters": {"sleep": sleep},
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["outputs"][0]["data"][0]


def wait_for(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not seen within {timeout} s: {what}")


def test_reload_serves_an_edit_and_keeps_the_last_good_version_on_a_broken_one(
    make_project, start_server
):
    project = make_project()
    write_service(project, VERSIONED.format(version="one", init="pass"))
    server = start_server(project, "--reload", "true")
    assert version_of(server.http) == "one"

    # An edit: the new version serves, and a request already running finishes.
    slow = {}
    running = threading.Thread(
        target=lambda: slow.update(version=version_of(server.http, sleep=1.5))
    )
    running.start()
    time.sleep(0.3)
    write_service(project, VERSIONED.format(version="two", init="pass"))
    wait_for(lambda: version_of(server.http) == "two", "version two served")
    running.join(timeout=30)
    assert slow == {"version": "one"}

    # Broken edits: one line says why, and version two goes on serving.
    write_service(
        project, VERSIONED.format(version="three", init="pass").replace(")", "", 1)
    )
    wait_for(lambda: server.log.count("keeps serving") == 1, "the failed reload")
    assert "the changed service cannot be loaded: SyntaxError:" in server.log
    assert "(customize_service.py, line " in server.log
    assert version_of(server.http) == "two"
    write_service(project, VERSIONED.format(version="three", init="1 / 0"))
    wait_for(lambda: server.log.count("keeps serving") == 2, "the second failed reload")
    assert (
        "ZeroDivisionError: division by zero (customize_service.py, line 13)"
        in server.log
    )
    assert version_of(server.http) == "two"

    # The next good edit serves again, and the server stays up throughout.
    write_service(project, VERSIONED.format(version="four", init="pass"))
    wait_for(lambda: version_of(server.http) == "four", "version four served")
    assert server.process.poll() is None


def test_run_reload_follows_config_ini_and_says_what_needs_a_restart(
    make_project, tmp_path
):
    project = make_project()
    write_service(project, VERSIONED.format(version="one", init="pass"))
    http_port, grpc_port = free_port(), free_port()
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "taichu_serve", "run", str(project), "--reload",
             "--host", "127.0.0.1", "--http-port", str(http_port),
             "--grpc-port", str(grpc_port)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    http = f"http://127.0.0.1:{http_port}"
    try:
        wait_for(lambda: _answers(http), "the server up", timeout=30)
        config = project / "config.ini"
        text = config.read_text().replace("version = 1", "version = 7")
        config.write_text(text.replace("workers = 1", "workers = 2"))

        def version_seven() -> bool:
            response = httpx.get(f"{http}/v2/models/Versioned")
            return response.json()["versions"] == ["7"]

        wait_for(version_seven, "model version 7 from config.ini")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    log_text = log_path.read_text()
    assert "reload: config.ini changed" in log_text
    assert "reload: a new workers takes a restart; still 1" in log_text


def _answers(http: str) -> bool:
    try:
        return httpx.get(f"{http}/v2/health/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def run_predict(project, *args, check=True) -> subprocess.CompletedProcess:
    result = cli("predict", str(project), *args, check=False)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def lines_of(result) -> list:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_predict_json_inputs_take_the_declared_datatype(make_project):
    project = make_project()
    write_service(project, DOUBLING)
    (response,) = lines_of(run_predict(project, "--input", "x=[1, 2.5]", "-i", "t=hi"))
    x, t = response["outputs"]
    assert (x["name"], x["datatype"], x["shape"], x["data"]) == (
        "x",
        "FP32",
        [2],
        [2, 5],
    )
    assert (t["datatype"], t["data"]) == ("BYTES", ["hi"])


def test_predict_npy_and_bytes_files_with_output_dir(make_project, tmp_path):
    project = make_project()
    write_service(project, DOUBLING)
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.save(tmp_path / "m.npy", matrix)
    (tmp_path / "blob.bin").write_bytes(b"\x00\xffraw")
    (tmp_path / "n.json").write_text("[[1, 2], [3, 4]]")
    inputs = ["-i", "m=@m.npy", "-i", "blob=@blob.bin", "-i", "n=@n.json"]

    result = subprocess.run(
        [sys.executable, "-m", "taichu_serve", "predict", str(project), *inputs],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (response,) = lines_of(result)
    blob = next(o for o in response["outputs"] if o["name"] == "blob")
    assert blob["parameters"] == {"content_type": "base64"}
    assert base64.b64decode(blob["data"][0]) == b"\x00\xffraw"

    written = subprocess.run(
        [sys.executable, "-m", "taichu_serve", "predict", str(project), *inputs,
         "--output-dir", "out"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    assert np.array_equal(np.load(tmp_path / "out/m.npy"), matrix * 2)
    assert np.load(tmp_path / "out/m.npy").dtype == np.float32
    assert np.load(tmp_path / "out/n.npy").tolist() == [[2, 4], [6, 8]]
    blob_array = np.load(tmp_path / "out/blob.npy", allow_pickle=True)
    assert blob_array.tolist() == [b"\x00\xffraw"]


def test_predict_prints_each_streamed_item_as_it_comes(make_project):
    project = make_project()
    write_service(project, DOUBLING)
    process = subprocess.Popen(
        [sys.executable, "-m", "taichu_serve", "predict", str(project), "-i", "tokens=3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first = json.loads(process.stdout.readline())
        assert process.poll() is None  # two more tokens to come, a second apart
        rest = [json.loads(line) for line in process.stdout]
    finally:
        process.wait(timeout=30)
    assert process.returncode == 0, process.stderr.read()
    tokens = [r["outputs"][0]["data"] for r in [first, *rest]]
    assert tokens == [[0], [1], [2]]


def test_predict_errors_are_the_servers_400_messages(
    make_project, start_server, tmp_path
):
    project = make_project()
    write_service(project, DOUBLING)
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1]}]}
    request = tmp_path / "request.json"
    request.write_text(json.dumps(body))
    bad = run_predict(project, "--request", str(request), check=False)
    served = httpx.post(
        f"{start_server(project).http}/v2/models/Doubling/infer", json=body
    )
    assert served.status_code == 400
    assert bad.returncode == 1
    assert bad.stderr.strip() == f"error (400): {served.json()['error']}"
    both = run_predict(project, "--request", str(request), "-i", "x=1", check=False)
    assert both.returncode == 2 and "either --request" in both.stderr
    missing = run_predict(project, "-i", "x=@nowhere.npy", check=False)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_service_imports_with_taichu_serve_installed(tmp_path):
    """IDEs, type checkers and plain scripts resolve the base class; the loader takes
    a class built on it as the model."""
    result = subprocess.run(
        [sys.executable, "-c",
         "from taichu_serve import ModelServer, Service\n"
         "import taichu_serve.service as s\n"
         "assert issubclass(ModelServer, Service) and Service.thread_safe is False\n"
         "print(s.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_local_model_runs_a_request_through_the_servers_steps(
    make_project, monkeypatch
):
    project = make_project()
    write_service(project, DOUBLING)
    # The project's own runtime, as its tests/ use it.
    monkeypatch.syspath_prepend(str(project))
    for name in [m for m in sys.modules if m.split(".")[0] == "taichu_runtime"]:
        monkeypatch.delitem(sys.modules, name)
    import taichu_serve  # the caller's own: LocalModel leaves it in place
    from taichu_runtime.errors import InvalidInput
    from taichu_runtime.in_process import LocalModel

    with LocalModel(project) as model:
        assert sys.modules["taichu_serve"] is taichu_serve
        assert model.name == "Doubling"
        outputs = model.predict(x=np.array([1.5, 2], dtype=np.float32), s=["a", "b"])
        assert outputs["x"].dtype == np.float32
        assert outputs["x"].tolist() == [3.0, 4.0]
        assert outputs["s"].tolist() == [b"a", b"b"]
        response = model.infer(
            {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [4]}]}
        )
        assert response["outputs"][0]["data"] == [8.0]
        with pytest.raises(InvalidInput) as error:
            model.infer({"inputs": [{"name": "x", "datatype": "FP99", "shape": [1]}]})
        assert error.value.http_status == 400
        items = list(
            model.stream(
                {
                    "inputs": [
                        {
                            "name": "tokens",
                            "datatype": "INT64",
                            "shape": [1],
                            "data": [2],
                        }
                    ]
                }
            )
        )
        assert [i["outputs"][0]["data"] for i in items] == [[0], [1]]
