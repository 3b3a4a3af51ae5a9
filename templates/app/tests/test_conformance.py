"""The real server (`python -m taichu_runtime` on free ports) against the KServe v2
protocol: health, metadata, infer over HTTP (JSON and binary tensors) and gRPC, the
stream of a streaming service, and bad input answered 400 / INVALID_ARGUMENT."""

import json
import urllib.error
import urllib.request

import grpc
import pytest

from taichu_runtime.client import Predictor
from taichu_runtime.http_api.codec import decode_request
from taichu_runtime.proto import open_inference_pb2 as pb2
from taichu_runtime.proto import open_inference_pb2_grpc as pb2_grpc

BAD_INPUT = {"inputs": [{"name": "x", "datatype": "FP99", "shape": [1], "data": [1]}]}


def http(server, method, path, body=None):
    """(status, JSON body) of one HTTP call."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        server.http + path, data, {"Content-Type": "application/json"}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def tensors(request, model):
    """{name: array} of a v2 request's inputs (None for a parameters-only request)."""
    if "inputs" not in request:
        return None
    body = json.dumps(request).encode()
    return decode_request(body, {}, model.name, model.settings.model_version).data


def shapes_of(outputs):
    return {
        name: (str(array.dtype), list(array.shape)) for name, array in outputs.items()
    }


def test_health(server):
    assert http(server, "GET", "/v2/health/live")[0] == 200
    assert http(server, "GET", "/v2/health/ready")[0] == 200
    with grpc.insecure_channel(server.grpc) as channel:
        stub = pb2_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerLive(pb2.ServerLiveRequest(), timeout=10).live
        assert stub.ServerReady(pb2.ServerReadyRequest(), timeout=10).ready


def test_metadata_over_http_and_grpc(server, model):
    status, metadata = http(server, "GET", "/v2")
    assert status == 200 and {"name", "version", "extensions"} <= set(metadata)
    status, served = http(server, "GET", f"/v2/models/{model.name}")
    assert status == 200 and served == model.metadata()
    with Predictor(server.grpc, model=model.name, protocol="grpc") as predictor:
        assert outline(predictor.metadata()) == outline(served)
        over_grpc = predictor.server_metadata()
    # Each protocol lists its own extensions (HTTP: generate; gRPC: streaming).
    assert (over_grpc["name"], over_grpc["version"]) == (
        metadata["name"],
        metadata["version"],
    )
    assert "binary_tensor_data" in over_grpc["extensions"]


def outline(metadata):
    """What gRPC's ModelMetadata carries of a model's metadata: the tensors' names."""
    tensors = {key: [t["name"] for t in metadata[key]] for key in ("inputs", "outputs")}
    return (metadata["name"], metadata["versions"], metadata["platform"], tensors)


def test_infer_http_json(server, model, sample_request, streaming):
    if streaming:
        pytest.skip("the service streams: see test_a_stream_comes_whole_over_grpc")
    status, response = http(
        server, "POST", f"/v2/models/{model.name}/infer", sample_request
    )
    assert status == 200, response
    expected = model.infer(sample_request)
    if "outputs" in expected:
        names = [(o["name"], o["datatype"], o["shape"]) for o in response["outputs"]]
        assert names == [
            (o["name"], o["datatype"], o["shape"]) for o in expected["outputs"]
        ]
    else:
        assert set(response["parameters"]) == set(expected["parameters"])


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_infer_binary_tensors(server, model, sample_request, streaming, protocol):
    inputs = tensors(sample_request, model)
    if inputs is None or streaming:
        pytest.skip("the sample request sends parameters, or the service streams")
    endpoint = server.http if protocol == "http" else server.grpc
    with Predictor(endpoint, model=model.name, protocol=protocol) as predictor:
        outputs = predictor.predict(inputs)
    assert shapes_of(outputs) == shapes_of(model.predict(**inputs))


def test_a_stream_comes_whole_over_grpc(server, model, sample_request, streaming):
    inputs = tensors(sample_request, model)
    if not streaming or inputs is None:
        pytest.skip("the service does not stream for the sample request")
    expected = list(model.stream(sample_request))
    with Predictor(server.grpc, model=model.name, protocol="grpc") as predictor:
        items = list(predictor.stream(inputs))
    assert len(items) == len(expected)


def test_bad_input_is_400_and_invalid_argument(server, model):
    status, body = http(server, "POST", f"/v2/models/{model.name}/infer", BAD_INPUT)
    assert status == 400 and "FP99" in body["error"]
    request = pb2.ModelInferRequest(model_name=model.name)
    request.inputs.add(name="x", datatype="FP99", shape=[1])
    request.raw_input_contents.append(bytes(4))
    with grpc.insecure_channel(server.grpc) as channel:
        stub = pb2_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            stub.ModelInfer(request, timeout=60)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert http(server, "GET", "/v2/health/ready")[0] == 200  # still serving
