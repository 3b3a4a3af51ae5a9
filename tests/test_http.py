"""The v2 REST protocol against the generated server, with httpx and tritonclient.http."""

import json

import httpx
import numpy as np
import pytest
import tritonclient.http as triton_http

MODEL = "ModelService"


def infer(server, body, path=f"/v2/models/{MODEL}/versions/1/infer", **kwargs):
    return httpx.post(server.http + path, json=body, timeout=60, **kwargs)


def tensor(name, datatype, shape, data):
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


@pytest.mark.parametrize(
    "datatype,data",
    [
        ("FP32", [0.5, -1.25, 3.0, 1e-3]),
        ("FP64", [0.1, 2.5e300, -3.0, 4.0]),
        ("FP16", [0.5, -2.0, 1024.0, 0.25]),
        ("INT32", [1, -2, 2**31 - 1, -(2**31)]),
        ("INT64", [1, -2, 2**63 - 1, -(2**63)]),
        ("UINT8", [0, 1, 127, 255]),
        ("BOOL", [True, False, False, True]),
        ("BYTES", ["a", "héllo", "你好", ""]),
    ],
)
def test_datatypes_round_trip_as_json(server, datatype, data):
    reply = infer(server, {"id": "r1", "inputs": [tensor("x", datatype, [2, 2], data)]})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["id"] == "r1"
    assert body["model_name"] == MODEL and body["model_version"] == "1"
    (output,) = body["outputs"]
    assert output["name"] == "x"
    assert output["datatype"] == datatype
    assert output["shape"] == [2, 2]
    if datatype == "FP32":
        assert np.array_equal(np.float32(output["data"]), np.float32(data))
    else:
        assert output["data"] == data


def test_nested_data_several_inputs_and_requested_outputs(server):
    body = {
        "inputs": [
            tensor("a", "INT32", [2, 3], [[1, 2, 3], [4, 5, 6]]),
            tensor("b", "FP64", [1], [2.5]),
            tensor("c", "BYTES", [2], ["x", "y"]),
        ]
    }
    outputs = infer(server, body).json()["outputs"]
    assert [o["name"] for o in outputs] == ["a", "b", "c"]
    assert outputs[0]["data"] == [1, 2, 3, 4, 5, 6] and outputs[0]["shape"] == [2, 3]
    body["outputs"] = [{"name": "c"}, {"name": "a"}]
    outputs = infer(server, body).json()["outputs"]
    assert [o["name"] for o in outputs] == ["c", "a"]


def test_version_path_is_optional_and_name_ignores_case(server):
    body = {"inputs": [tensor("x", "INT64", [1], [7])]}
    for path in (
        "/v2/models/modelservice/infer",
        "/v2/models/MODELSERVICE/versions/1/infer",
    ):
        reply = infer(server, body, path=path)
        assert reply.status_code == 200, reply.text
        assert reply.json()["outputs"][0]["data"] == [7]


def test_json_without_content_type(server):
    reply = httpx.post(
        server.http + f"/v2/models/{MODEL}/infer",
        content=b'{"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [5]}]}',
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["outputs"][0]["data"] == [5]


def test_parameters_only_request_as_2x(server):
    params = {
        "str": "str",
        "float": 1.222,
        "bool": True,
        "int": 7,
        "nested": {"a": [1, 2]},
    }
    reply = infer(server, {"id": "old", "parameters": params})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "id": "old",
        "model_name": MODEL,
        "model_version": "1",
        "parameters": params,
    }


def test_health_metadata_and_model_list(server):
    for path in (
        "/v2/health/live",
        "/v2/health/ready",
        "/health/live",
        "/health/ready",
    ):
        assert httpx.get(server.http + path).status_code == 200, path
    meta = httpx.get(server.http + "/v2").json()
    assert meta["name"] == "taichu-serve" and "binary_tensor_data" in meta["extensions"]
    for path in (f"/v2/models/{MODEL}", f"/v2/models/{MODEL}/versions/1"):
        model = httpx.get(server.http + path).json()
        assert model["name"] == MODEL and model["versions"] == ["1"]
    ready = httpx.get(server.http + f"/v2/models/{MODEL}/versions/1/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert httpx.get(server.http + "/v2/models").json()["models"] == [
        {"name": MODEL, "versions": ["1"], "ready": True}
    ]


def test_half_a_million_values_as_json_and_more_only_in_binary(server):
    """JSON values cost 64 bytes each of max_decoded_size (32 MiB by default): about
    half a million pass; 4 million (16 MiB of INT32) get 413, and pass in binary."""
    data = np.arange(450_000, dtype=np.int32) % 1000
    body = {"inputs": [tensor("big", "INT32", [len(data)], data.tolist())]}
    reply = infer(server, body)
    assert reply.status_code == 200, reply.text[:200]
    assert np.array_equal(np.asarray(reply.json()["outputs"][0]["data"]), data)
    data = np.arange(16 * 1024 * 1024 // 4, dtype=np.int32) % 1000
    body = {"inputs": [tensor("big", "INT32", [len(data)], data.tolist())]}
    reply = infer(server, body)
    assert reply.status_code == 413
    assert "max_decoded_size" in reply.json()["error"]
    raw = data.tobytes()
    header = {
        "inputs": [
            {
                "name": "big",
                "datatype": "INT32",
                "shape": [len(data)],
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "parameters": {"binary_data_output": True},
    }
    head = json.dumps(header).encode()
    reply = httpx.post(
        f"{server.http}/v2/models/{MODEL}/infer",
        content=head + raw,
        headers={"inference-header-content-length": str(len(head))},
        timeout=60,
    )
    assert reply.status_code == 200
    length = int(reply.headers["inference-header-content-length"])
    assert reply.content[length:] == raw


# -- tritonclient.http (binary tensor extension by default) -------------------------------


@pytest.fixture(scope="module")
def triton(server):
    client = triton_http.InferenceServerClient(
        server.http.removeprefix("http://"), network_timeout=120
    )
    yield client
    client.close()


def triton_input(name, array, datatype, binary=True):
    item = triton_http.InferInput(name, list(array.shape), datatype)
    item.set_data_from_numpy(array, binary_data=binary)
    return item


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_http_all_types(triton, binary):
    arrays = {
        "fp32": (np.random.rand(3, 4).astype(np.float32), "FP32"),
        "fp64": (np.random.rand(5).astype(np.float64), "FP64"),
        "int32": (np.arange(-5, 5, dtype=np.int32), "INT32"),
        "int64": (np.arange(6, dtype=np.int64).reshape(2, 3) * 2**40, "INT64"),
        "uint8": (np.arange(256, dtype=np.uint8), "UINT8"),
        "bool": (np.array([True, False, True]), "BOOL"),
        "bytes": (
            np.array(["héllo".encode(), "你好".encode(), b"\x00\xff"], dtype=object),
            "BYTES",
        ),
    }
    if binary:
        arrays["fp16"] = (np.array([0.5, 1.5, -2.0], dtype=np.float16), "FP16")
    else:
        arrays["bytes"] = (
            np.array(["héllo".encode(), "你好".encode()], dtype=object),
            "BYTES",
        )
    inputs = [triton_input(name, a, dt, binary) for name, (a, dt) in arrays.items()]
    outputs = [
        triton_http.InferRequestedOutput(name, binary_data=binary) for name in arrays
    ]
    result = triton.infer(MODEL, inputs, model_version="1", outputs=outputs)
    for name, (array, datatype) in arrays.items():
        got = result.as_numpy(name)
        assert got.shape == array.shape, name
        assert result.get_output(name)["datatype"] == datatype
        if datatype == "BYTES":
            # tritonclient gives JSON text back as str, binary data as bytes.
            got = [g.encode() if isinstance(g, str) else g for g in got.reshape(-1)]
            assert got == list(array.reshape(-1)), name
        else:
            assert np.array_equal(got, array), name


def test_tritonclient_http_defaults_and_health(triton):
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready(MODEL)
    assert triton.get_model_metadata(MODEL)["name"] == MODEL
    a = np.random.rand(2, 8).astype(np.float32)
    result = triton.infer(MODEL, [triton_input("a", a, "FP32")])  # all outputs, binary
    assert np.array_equal(result.as_numpy("a"), a)


def test_tritonclient_http_sixteen_megabytes(triton):
    big = np.random.rand(4 * 1024 * 1024).astype(np.float32)  # 16 MiB
    result = triton.infer(MODEL, [triton_input("big", big, "FP32")])
    assert np.array_equal(result.as_numpy("big"), big)


def test_openapi_document_is_valid_and_lists_every_route(server):
    from openapi_spec_validator import validate

    document = httpx.get(server.http + "/openapi.json").json()
    validate(document)
    infer = document["paths"]["/v2/models/{name}/versions/{version}/infer"]["post"]
    assert [p["name"] for p in infer["parameters"]] == ["name", "version"]
    assert "/v2/models/{name}/infer" in document["paths"]
    assert "/v2/health/ready" in document["paths"]
