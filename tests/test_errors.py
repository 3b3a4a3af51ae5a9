"""Every bad request gets a clear v2 error with the right status, and the server keeps serving."""

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.grpc import service_pb2 as pb2

from conftest import SERVICES, Server, model_infer, render

GOOD = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [2], "data": [1, 2]}]}


@pytest.fixture(scope="module")
def failing(tmp_path_factory):
    directory = render(tmp_path_factory.mktemp("failing") / "project")
    (directory / "customize_service.py").write_text(
        (SERVICES / "failing.py").read_text()
    )
    flags = ["--max-request-size", str(32 * 1024 * 1024), "--show-model-errors", "true"]
    running = Server(directory, flags).wait_ready()
    yield running
    running.stop()


def post(server, body=None, model="FailingService", content=None, headers=None):
    url = f"{server.http}/v2/models/{model}/infer"
    if content is not None:
        return httpx.post(url, content=content, headers=headers, timeout=30)
    return httpx.post(url, json=body, headers=headers, timeout=30)


def tensor(datatype="INT32", shape=(2,), data=(1, 2), name="x"):
    return {
        "inputs": [
            {
                "name": name,
                "datatype": datatype,
                "shape": list(shape),
                "data": list(data),
            }
        ]
    }


HTTP_CASES = [
    (
        "unknown model",
        dict(body=GOOD, model="nope"),
        404,
        "model 'nope' is not served here",
    ),
    (
        "unknown version",
        dict(body=GOOD, model="FailingService/versions/9"),
        404,
        "no version '9'",
    ),
    (
        "malformed JSON",
        dict(content=b'{"inputs": [', headers={}),
        400,
        "not valid JSON",
    ),
    ("not an object", dict(content=b"[1, 2]"), 400, "must be a JSON object"),
    ("missing inputs", dict(body={"id": "x"}), 400, "no 'inputs'"),
    (
        "unknown datatype",
        dict(body=tensor(datatype="FP128")),
        400,
        "unknown datatype 'FP128'",
    ),
    (
        "shape mismatch",
        dict(body=tensor(shape=(3,))),
        400,
        "needs 3 elements, data has 2",
    ),
    ("bad shape", dict(body=tensor(shape=(-1,))), 400, "non-negative integers"),
    (
        "bytes count",
        dict(body=tensor("BYTES", (3,), ["a", "b"])),
        400,
        "needs 3 elements",
    ),
    (
        "wrong data type",
        dict(body=tensor("INT32", (1,), ["x"])),
        400,
        "INT32 data must be integers",
    ),
    ("overflow", dict(body=tensor("UINT8", (1,), [300])), 400, "does not fit UINT8"),
    (
        "bool not bool",
        dict(body=tensor("BOOL", (1,), [3])),
        400,
        "BOOL data must be true or false",
    ),
    (
        "missing output",
        dict(body={**GOOD, "outputs": [{"name": "y"}]}),
        400,
        "requested output(s) y not produced",
    ),
    (
        "model raises",
        dict(body=tensor(name="boom")),
        500,
        "ValueError: bad pixel at (3, 4)",
    ),
    (
        "returns a list",
        dict(body=tensor(name="return_list")),
        500,
        "must return a dict",
    ),
    ("unserialisable", dict(body=tensor(name="return_object")), 500, "output 'out'"),
    (
        "control character in id",
        dict(body={**GOOD, "id": "a\r\nX-Forged: 1"}),
        400,
        "'id' must be printable ASCII",
    ),
    ("too many dims", dict(body=tensor(shape=[1] * 65, data=[1])), 400, "64 dim"),
    (
        "duplicate names",
        dict(body={"inputs": GOOD["inputs"] * 2}),
        400,
        "input 'x' appears more than once",
    ),
    ("float for INT32", dict(body=tensor(data=[1.7, 2])), 400, "must be integers"),
    ("null for FP32", dict(body=tensor("FP32", data=[None, 2])), 400, "be numbers"),
    (
        "binary length",
        dict(content=b"{}", headers={"Inference-Header-Content-Length": "99"}),
        400,
        "exceeds the body",
    ),
]


@pytest.mark.parametrize(
    "case,kwargs,status,message", HTTP_CASES, ids=[c[0] for c in HTTP_CASES]
)
def test_http_error_then_success(failing, case, kwargs, status, message):
    reply = post(failing, **kwargs)
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error"}
    assert message in body["error"]
    assert "Traceback" not in body["error"]
    ok = post(failing, GOOD)
    assert ok.status_code == 200 and ok.json()["outputs"][0]["data"] == [1, 2]


@pytest.mark.parametrize(
    "name, reason",
    [
        ("return_list", "_postprocess must return a dict, got list"),
        ("return_none", "_postprocess must return a dict, got NoneType"),
        ("return_set", "_postprocess must return a dict, got set"),
        ("return_complex", "output 'out'"),
    ],
)
def test_a_result_that_is_no_response_is_in_the_log_with_its_reason(
    failing, name, reason
):
    request_id = f"no-response-{name}"
    reply = post(failing, tensor(name=name), headers={"X-Request-Id": request_id})
    assert reply.status_code == 500 and reason in reply.json()["error"]
    said = [line for line in failing.log.splitlines() if request_id in line]
    assert len([line for line in said if reason in line]) == 1, said


def test_nan_and_infinity_outputs_reach_a_v2_client_as_they_are(failing):
    import tritonclient.http as triton_http

    values = np.array([np.nan, np.inf, -np.inf, 2.5], dtype=np.float32)
    client = triton_http.InferenceServerClient(failing.http.split("//")[1])
    item = triton_http.InferInput("x", [4], "FP32")
    item.set_data_from_numpy(values, binary_data=False)
    output = triton_http.InferRequestedOutput("x", binary_data=False)
    result = client.infer("FailingService", [item], outputs=[output])
    np.testing.assert_array_equal(result.as_numpy("x"), values)


def test_by_default_the_client_gets_the_request_id_not_the_exception(
    make_project, start_server
):
    server = start_server(make_project("failing"))
    reply = post(server, tensor(name="boom"), headers={"X-Request-Id": "req-42"})
    assert reply.status_code == 500
    assert reply.json() == {
        "error": "the model failed on request req-42; the server log has its error"
    }
    assert "bad pixel" in server.log and "Traceback" in server.log
    request = grpc_request(name="boom")
    request.id = "req-43"
    with grpc.insecure_channel(server.grpc) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            model_infer(channel)(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert raised.value.details() == (
        "the model failed on request req-43; the server log has its error"
    )


def test_traceback_goes_to_the_log_not_the_client(failing):
    reply = post(failing, tensor(name="boom"))
    assert reply.status_code == 500
    assert "Traceback" in failing.log and "bad pixel at (3, 4)" in failing.log


def test_unknown_route_and_method_use_v2_error_body(failing):
    missing = httpx.get(failing.http + "/v3/nothing")
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = httpx.get(failing.http + "/v2/models/FailingService/infer")
    assert wrong.status_code == 405 and "error" in wrong.json()


def test_request_too_large(failing):
    body = b'{"inputs": []}' + b" " * (33 * 1024 * 1024)
    reply = post(failing, content=body)
    assert reply.status_code == 413 and "max_request_size" in reply.json()["error"]
    assert post(failing, GOOD).status_code == 200


# -- gRPC ----------------------------------------------------------------------------------


def grpc_request(
    name="x", datatype="INT32", shape=(2,), values=(1, 2), model="FailingService"
):
    request = pb2.ModelInferRequest(model_name=model)
    item = request.inputs.add(name=name, datatype=datatype, shape=list(shape))
    if datatype == "INT32":
        item.contents.int_contents.extend(values)
    elif datatype == "UINT8":
        item.contents.uint_contents.extend(values)
    return request


def raw_request(datatype, shape, raw, model="FailingService"):
    request = pb2.ModelInferRequest(model_name=model)
    request.inputs.add(name="x", datatype=datatype, shape=list(shape))
    request.raw_input_contents.append(raw)
    return request


GRPC_CASES = [
    (
        "unknown model",
        grpc_request(model="nope"),
        grpc.StatusCode.NOT_FOUND,
        "not served here",
    ),
    (
        "no inputs",
        pb2.ModelInferRequest(model_name="FailingService"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "no inputs",
    ),
    (
        "unknown datatype",
        grpc_request(datatype="FP128"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "unknown datatype",
    ),
    (
        "shape mismatch",
        grpc_request(shape=(5,)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "needs 5 elements",
    ),
    (
        "negative dimension",
        grpc_request(shape=(-2,)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "non-negative integers",
    ),
    (
        "overflow",
        grpc_request(datatype="UINT8", shape=(1,), values=(300,)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "does not fit UINT8",
    ),
    (
        "raw size",
        raw_request("FP32", (2,), b"\x00" * 7),
        grpc.StatusCode.INVALID_ARGUMENT,
        "needs 8 bytes",
    ),
    (
        "bytes count",
        raw_request("BYTES", (2,), b"\x01\x00\x00\x00a"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "needs 2 BYTES",
    ),
    (
        "bytes truncated",
        raw_request("BYTES", (1,), b"\x09\x00\x00\x00a"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "runs past",
    ),
    (
        "fp16 typed",
        grpc_request(datatype="FP16"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "raw_input_contents",
    ),
    (
        "model raises",
        grpc_request(name="boom"),
        grpc.StatusCode.INTERNAL,
        "ValueError: bad pixel at (3, 4)",
    ),
]


@pytest.mark.parametrize(
    "case,request_,code,message", GRPC_CASES, ids=[c[0] for c in GRPC_CASES]
)
def test_grpc_error_then_success(failing, case, request_, code, message):
    with grpc.insecure_channel(failing.grpc) as channel:
        infer = model_infer(channel)
        with pytest.raises(grpc.RpcError) as raised:
            infer(request_, timeout=10)
        assert raised.value.code() == code
        assert message in raised.value.details()
        assert "Traceback" not in raised.value.details()
        reply = infer(grpc_request(), timeout=10)
        assert list(reply.outputs[0].contents.int_contents) == [1, 2]


def test_grpc_message_over_limit_is_refused(failing):
    client = triton_grpc.InferenceServerClient(failing.grpc)
    big = np.zeros(40 * 1024 * 1024, dtype=np.uint8)
    item = triton_grpc.InferInput("x", [big.size], "UINT8")
    item.set_data_from_numpy(big)
    with pytest.raises(Exception) as raised:
        client.infer("FailingService", [item])
    assert "RESOURCE_EXHAUSTED" in str(raised.value)
    assert client.is_server_ready()
