"""Loading customize_service.py: the one subclass, 2.x packages, failures that stop the process."""

import subprocess
import sys
import time

import grpc
import httpx
import legacy_client
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc

from conftest import Server, readme_example


def write_service(project, source):
    (project / "customize_service.py").write_text(source)


BROKEN = {
    "no subclass": (
        "from taichu_serve import Service\nclass Helper:\n    pass\n",
        "defines no subclass of Service (found: Helper)",
    ),
    "two subclasses": (
        "from taichu_serve import Service\nclass A(Service):\n    pass\nclass B(Service):\n    pass\n",
        "defines several Service subclasses (A, B)",
    ),
    "__init__ raises": (
        "from taichu_serve import Service\n"
        "class M(Service):\n"
        "    def __init__(self, model_path):\n"
        "        raise FileNotFoundError('weights.bin missing')\n",
        "weights.bin missing",
    ),
    "_warmup raises": (
        "from taichu_serve import Service\n"
        "class M(Service):\n"
        "    def _warmup(self):\n"
        "        raise RuntimeError('warm-up failed: CUDA OOM')\n",
        "warm-up failed: CUDA OOM",
    ),
    "syntax error": ("def broken(:\n", "SyntaxError"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_service_that_cannot_load_stops_the_process(make_project, case):
    """The service's own code raised: exit 1, and its traceback helps."""
    project = make_project()
    source, message = BROKEN[case]
    write_service(project, source)
    server = Server(project)
    code = server.wait_exit(timeout=30)
    server.stop()
    mistake = case in ("no subclass", "two subclasses")
    assert code == (2 if mistake else 1)
    assert message in server.log
    if mistake:  # one line that says what to fix, no runtime internals
        (line,) = [line for line in server.log.splitlines() if message in line]
        assert "the model cannot be loaded: customize_service.py" in line
        assert "Traceback" not in server.log
    else:
        assert "the model failed to load" in server.log
        assert "Traceback" in server.log


def test_a_missing_service_file_is_one_line_and_exit_code_2(make_project):
    project = make_project()
    (project / "customize_service.py").unlink()
    server = Server(project)
    code = server.wait_exit(timeout=30)
    server.stop()
    assert code == 2
    assert "Traceback" not in server.log
    (line,) = [line for line in server.log.splitlines() if "not found" in line]
    assert "customize_service.py not found; run from the project directory" in line


def test_a_2x_package_is_found_by_its_model_service_py(make_project, start_server):
    project = make_project()
    (project / "customize_service.py").rename(project / "model_service.py")
    server = start_server(project)
    assert httpx.get(server.http + "/v2/models/ModelService").status_code == 200


def test_intermediate_base_class_is_not_the_model(make_project, start_server):
    project = make_project()
    write_service(
        project,
        "from taichu_serve import Service\n"
        "class Base(Service):\n    pass\n"
        "class Real(Base):\n    pass\n",
    )
    running = start_server(project)
    assert httpx.get(running.http + "/v2/models/Real").status_code == 200


def test_2x_model_package_serves_http_and_both_grpc_services(
    make_project, start_server
):
    running = start_server(make_project("legacy_2x"))
    reply = httpx.post(
        running.http + "/v2/models/ModelService/versions/1/infer",
        json={"parameters": {"str": "s", "float": 1.5, "bool": True}},
    ).json()
    params = reply["parameters"]
    assert params["count"] == 3 and params["big"] == 2**53 + 1
    assert params["nested"] == {"keys": ["bool", "float", "str"], "none": None}
    assert params["request_id"] == reply["id"]

    # A 2.x client (2.x stubs) gets what its schema can show: numbers as floats.
    with grpc.insecure_channel(running.grpc) as channel:
        request = legacy_client.ModelInferRequest(
            model_name="ModelService", model_version="1"
        )
        request.parameters["str"].string_param = "s"
        reply = legacy_client.model_infer(channel)(request)
        got = legacy_client.as_dict(reply.parameters)
        assert got["count"] == 1.0 and got["str"] == "s"
        assert '"keys"' in got["nested"]

    # A current client (the project's stubs) gets exact integers and nested values back.
    script = (
        "import sys, json, grpc\n"
        "sys.path.insert(0, '.')\n"
        "from taichu_runtime.proto import taichu_infer_pb2 as pb, taichu_infer_pb2_grpc as rpc\n"
        "from taichu_runtime.proto import open_inference_pb2 as v2, open_inference_pb2_grpc as v2rpc\n"
        f"channel = grpc.insecure_channel('{running.grpc}')\n"
        "request = pb.ModelInferRequest(model_name='ModelService')\n"
        "request.parameters['n'].int64_param = 2**62\n"
        "request.parameters['deep'].json_param = json.dumps({'a': [1, {'b': None}]})\n"
        "reply = rpc.GRPCInferenceServiceStub(channel).ModelInfer(request)\n"
        "p = reply.parameters\n"
        "print(p['n'].int64_param, p['big'].int64_param, p['count'].int64_param)\n"
        "print(p['deep'].json_param)\n"
        "print(p['nested'].json_param)\n"
        "request = v2.ModelInferRequest(model_name='ModelService')\n"
        "request.parameters['x'].string_param = 'y'\n"
        "reply = v2rpc.GRPCInferenceServiceStub(channel).ModelInfer(request)\n"
        "print(reply.parameters['nested'].string_param)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=running.project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{2**62} {2**53 + 1} 2"
    assert lines[1].replace(" ", "") == '{"a":[1,{"b":null}]}'
    assert lines[2] == '{"keys":["deep","n"],"none":null}'
    assert lines[3] == '{"keys":["x"],"none":null}'


def test_async_hooks_and_context(make_project, start_server):
    running = start_server(make_project("async_hooks"))
    reply = httpx.post(
        running.http + "/v2/models/AsyncService/infer",
        json={
            "id": "ctx-1",
            "inputs": [
                {"name": "x", "datatype": "INT32", "shape": [2], "data": [1, 2]}
            ],
        },
        headers={"X-Test": "yes"},
    )
    assert reply.status_code == 200, reply.text
    outputs = {o["name"]: o["data"] for o in reply.json()["outputs"]}
    assert outputs == {
        "x": [2, 4],
        "request_id": ["ctx-1"],
        "protocol": ["http"],
        "header": ["yes"],
    }


def test_model_name_and_version_from_config(make_project, start_server):
    project = make_project(None, "--name", "resnet-50")
    config = (project / "config.ini").read_text().replace("version = 1", "version = 7")
    (project / "config.ini").write_text(config)
    running = start_server(project)
    body = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}]}
    assert (
        httpx.post(
            running.http + "/v2/models/RESNET-50/versions/7/infer", json=body
        ).status_code
        == 200
    )
    assert (
        httpx.post(
            running.http + "/v2/models/resnet-50/versions/1/infer", json=body
        ).status_code
        == 404
    )
    assert (
        httpx.post(
            running.http + "/v2/models/ModelService/infer", json=body
        ).status_code
        == 404
    )


def test_not_ready_while_loading_answers_503_and_unavailable(
    make_project, start_server
):
    project = make_project()
    write_service(
        project,
        "import time\nfrom taichu_serve import Service\n"
        "class Slow(Service):\n"
        "    def _warmup(self):\n"
        "        time.sleep(4)\n",
    )
    running = start_server(project, ready=False)
    deadline = time.monotonic() + 20
    while True:
        try:
            if (
                httpx.get(running.http + "/v2/health/live", timeout=1).status_code
                == 200
            ):
                break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, running.log
            time.sleep(0.05)
    assert httpx.get(running.http + "/v2/health/ready").status_code == 503
    body = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [1]}]}
    reply = httpx.post(running.http + "/v2/models/Slow/infer", json=body)
    assert reply.status_code == 503 and "still loading" in reply.json()["error"]
    client = triton_grpc.InferenceServerClient(running.grpc)
    assert client.is_server_live() and not client.is_server_ready()
    item = triton_grpc.InferInput("x", [1], "INT32")
    item.set_data_from_numpy(np.int32([1]))
    with pytest.raises(Exception) as raised:
        client.infer("Slow", [item])
    assert "UNAVAILABLE" in str(raised.value)
    running.wait_ready()
    assert (
        httpx.post(running.http + "/v2/models/Slow/infer", json=body).status_code == 200
    )


def test_readme_service_example(make_project, start_server):
    project = make_project()
    write_service(project, readme_example("## Writing customize_service.py"))
    running = start_server(project)
    body = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1.5, -2]}]
    }
    reply = httpx.post(running.http + "/v2/models/ModelService/infer", json=body).json()
    assert reply["outputs"] == [
        {"name": "y", "datatype": "FP32", "shape": [2], "data": [3.0, -4.0]}
    ]
