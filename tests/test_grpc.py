"""The v2 gRPC protocol against the generated server: tritonclient.grpc, raw grpcio calls
with Triton's messages, a 2.x client, and the generated example clients."""

import subprocess
import sys

import grpc
import legacy_client
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.grpc import service_pb2 as pb2

from conftest import model_infer

MODEL = "ModelService"
OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
]


@pytest.fixture(scope="module")
def triton(server):
    client = triton_grpc.InferenceServerClient(server.grpc)
    yield client
    client.close()


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.grpc, options=OPTIONS) as channel:
        yield channel


ARRAYS = {
    "fp16": (np.array([[0.5, -1.5], [2.0, 65504.0]], dtype=np.float16), "FP16"),
    "fp32": (np.random.rand(3, 4).astype(np.float32), "FP32"),
    "fp64": (np.random.rand(5).astype(np.float64), "FP64"),
    "int32": (np.arange(-5, 5, dtype=np.int32), "INT32"),
    "int64": (np.arange(6, dtype=np.int64).reshape(2, 3) * 2**40, "INT64"),
    "uint8": (np.arange(256, dtype=np.uint8), "UINT8"),
    "bool": (np.array([True, False, True]), "BOOL"),
    "bytes": (
        np.array(["héllo".encode(), "你好".encode(), b"\x00\xff", b""], dtype=object),
        "BYTES",
    ),
}


def test_tritonclient_grpc_all_types(triton):
    inputs = []
    for name, (array, datatype) in ARRAYS.items():
        item = triton_grpc.InferInput(name, list(array.shape), datatype)
        item.set_data_from_numpy(array)
        inputs.append(item)
    result = triton.infer(MODEL, inputs, model_version="1", request_id="t1")
    assert result.get_response().id == "t1"
    for name, (array, datatype) in ARRAYS.items():
        got = result.as_numpy(name)
        assert result.get_output(name).datatype == datatype
        assert got.shape == array.shape, name
        if datatype == "BYTES":
            assert list(got.reshape(-1)) == list(array.reshape(-1))
        else:
            assert np.array_equal(got, array), name


def test_tritonclient_grpc_health_and_metadata(triton):
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready(MODEL) and triton.is_model_ready(MODEL.lower(), "1")
    assert triton.get_model_metadata(MODEL).name == MODEL
    assert triton.get_server_metadata().name == "taichu-serve"


def test_typed_contents_are_answered_with_typed_contents(channel):
    request = pb2.ModelInferRequest(model_name=MODEL)
    fp = request.inputs.add(name="fp", datatype="FP32", shape=[2, 2])
    fp.contents.fp32_contents.extend([1.5, 2.5, 3.5, 4.5])
    ints = request.inputs.add(name="ints", datatype="INT8", shape=[3])
    ints.contents.int_contents.extend([-128, 0, 127])
    text = request.inputs.add(name="text", datatype="BYTES", shape=[1])
    text.contents.bytes_contents.append("你好".encode())
    flags = request.inputs.add(name="flags", datatype="BOOL", shape=[2])
    flags.contents.bool_contents.extend([True, False])
    reply = model_infer(channel)(request)
    assert not reply.raw_output_contents
    outputs = {o.name: o for o in reply.outputs}
    assert list(outputs["fp"].contents.fp32_contents) == [1.5, 2.5, 3.5, 4.5]
    assert list(outputs["fp"].shape) == [2, 2]
    assert list(outputs["ints"].contents.int_contents) == [-128, 0, 127]
    assert list(outputs["text"].contents.bytes_contents) == ["你好".encode()]
    assert list(outputs["flags"].contents.bool_contents) == [True, False]


def test_sixteen_megabyte_tensor(triton):
    big = np.random.rand(4 * 1024 * 1024).astype(np.float32)
    item = triton_grpc.InferInput("big", [big.size], "FP32")
    item.set_data_from_numpy(big)
    result = triton.infer(MODEL, [item])
    assert np.array_equal(result.as_numpy("big"), big)


def test_parameters_only_request_on_v2_service(channel):
    request = pb2.ModelInferRequest(model_name=MODEL, model_version="1", id="p1")
    request.parameters["count"].int64_param = 2**40
    request.parameters["ratio"].double_param = 0.1
    request.parameters["name"].string_param = "名字"
    request.parameters["flag"].bool_param = True
    reply = model_infer(channel)(request)
    assert reply.id == "p1"
    assert reply.parameters["count"].int64_param == 2**40
    assert reply.parameters["ratio"].double_param == 0.1
    assert reply.parameters["name"].string_param == "名字"
    assert reply.parameters["flag"].bool_param is True


def test_2x_client_on_taichu_infer(channel):
    request = legacy_client.ModelInferRequest(
        model_name="modelservice", model_version="1"
    )
    request.parameters["boo_var"].bool_param = True
    request.parameters["float_var"].float_param = 12.3432
    request.parameters["str_var"].string_param = "str"
    reply = legacy_client.model_infer(channel)(request)
    assert reply.model_name == MODEL
    got = legacy_client.as_dict(reply.parameters)
    assert got["boo_var"] is True and got["str_var"] == "str"
    assert got["float_var"] == pytest.approx(12.3432, rel=1e-6)


def test_2x_stream_client_completes(channel):
    def messages():
        for index in range(5):
            request = legacy_client.ModelInferRequest(model_name=MODEL, id=f"m{index}")
            request.parameters["input"].bool_param = True
            yield request

    replies = list(legacy_client.model_stream_infer(channel)(messages(), timeout=10))
    assert len(replies) == 5
    assert all(legacy_client.as_dict(r.parameters) == {"input": True} for r in replies)


def run_example(project, name, server):
    result = subprocess.run(
        [
            sys.executable,
            f"test/{name}",
            "--http-port",
            str(server.http_port),
            "--grpc-port",
            str(server.grpc_port),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_generated_example_clients_run(project, server):
    http_out = run_example(project, "http_client.py", server)
    assert "你好" in http_out and '"float": 1.222' in http_out
    grpc_out = run_example(project, "grpc_client.py", server)
    assert "int64_param: 42" in grpc_out and "[[0. 1.]" in grpc_out
    stream_out = run_example(project, "stream_grpc_client.py", server)
    assert "message-0: text_input = ['Hello, streaming!']" in stream_out
    assert (
        "message-1: text_input = ['A second message on the same stream.']" in stream_out
    )
    sdk_out = run_example(project, "sdk_client.py", server)
    assert "grpc: predict -> {'x': [[0.0, 1.0], [2.0, 3.0]]}" in sdk_out
    assert "http: .npy round trip -> [[1.0, 0.0], [0.0, 1.0]]" in sdk_out
    assert "error: 404 model 'no-such-model' is not served here" in sdk_out
    sse_out = run_example(project, "sse_client.py", server)
    assert (
        "'text_input': 'Hello, SSE!'" in sse_out
        and "'model_name': 'ModelService'" in sse_out
    )
