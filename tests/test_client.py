"""The client module the generated project ships (taichu_runtime/client.py), against the
generated server: every method, both protocols, errors, streams, serializers."""

import io
import sys

import numpy as np
import pytest

from conftest import SERVICES, Server, render


@pytest.fixture(scope="module")
def client_module(project):
    sys.path.insert(0, str(project))
    from taichu_runtime import client

    yield client
    sys.path.remove(str(project))


@pytest.fixture(params=["http", "grpc"])
def predictor(request, server, client_module):
    endpoint = server.http if request.param == "http" else server.grpc
    with client_module.Predictor(endpoint, protocol=request.param) as predictor:
        yield predictor


def test_predict_dicts_arrays_lists_and_strings(predictor):
    data = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.array([1, -2], dtype=np.int64),
        "c": ["héllo", "你好"],
        "d": np.array([True, False]),
    }
    outputs = predictor.predict(data)
    assert np.array_equal(outputs["a"], data["a"]) and outputs["a"].dtype == np.float32
    assert np.array_equal(outputs["b"], data["b"])
    assert outputs["c"].tolist() == ["héllo".encode(), "你好".encode()]
    assert outputs["d"].tolist() == [True, False]
    assert list(predictor.predict([1.5, 2.5])) == ["input"]  # one unnamed input


def test_serializers(predictor, client_module):
    array = np.random.rand(3, 2)
    predictor.serializer = client_module.NumpySerializer()
    assert np.array_equal(predictor.predict(array), array)
    predictor.serializer = client_module.RawBytesSerializer()
    assert predictor.predict(b"\x00\xffraw") == b"\x00\xffraw"

    class Doubled(client_module.Serializer):  # a custom one: two methods
        def serialize(self, data):
            return {"x": np.asarray(data, dtype=np.int32) * 2}

        def deserialize(self, outputs):
            return outputs["x"].tolist()

    predictor.serializer = Doubled()
    assert predictor.predict([1, 2]) == [2, 4]


def test_health_metadata_and_errors(predictor, client_module):
    assert predictor.live() and predictor.ready()
    assert predictor.metadata()["name"] == "ModelService"
    predictor.model = "nope"
    with pytest.raises(client_module.PredictionError) as raised:
        predictor.predict({"x": [1]})
    assert raised.value.status in (404, "NOT_FOUND")
    assert "model 'nope' is not served here" in raised.value.message


def test_raw_predict(server, client_module):
    predictor = client_module.Predictor(server.http)
    body = {"inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "data": [4]}]}
    response = predictor.raw_predict(body)
    assert response.status_code == 200 and response.json()["outputs"][0]["data"] == [4]
    response = predictor.raw_predict(io.BytesIO(b'{"parameters": {"k": 1}}'))
    assert response.json()["parameters"] == {"k": 1}
    response = predictor.raw_predict(b"{bad", headers={"X-Request-Id": "raw-1"})
    assert response.status_code == 400 and response.headers["X-Request-Id"] == "raw-1"
    assert response.json()["error"].startswith("the request body is not valid JSON")


@pytest.fixture(scope="module")
def streamer(tmp_path_factory):
    directory = render(tmp_path_factory.mktemp("client-stream") / "project")
    (directory / "customize_service.py").write_text(
        (SERVICES / "streaming.py").read_text()
    )
    flags = ["--token", "t0ken", "--show-model-errors", "true"]
    running = Server(directory, flags).wait_ready()
    yield running
    running.stop()


def test_streams_and_token(streamer, client_module):
    grpc_predictor = client_module.Predictor(
        streamer.grpc, model="StreamingService", protocol="grpc", token="t0ken"
    )
    items = list(grpc_predictor.stream({"x": np.int32([1])}, n=3))
    assert [i["token"].item() for i in items] == [b"tok0", b"tok1", b"tok2"]
    http_predictor = client_module.Predictor(
        streamer.http, model="StreamingService", token="t0ken"
    )
    events = list(http_predictor.stream({"text_input": "hi"}, n=2))
    assert [e["token"] for e in events] == ["tok0", "tok1"]
    with pytest.raises(client_module.PredictionError) as raised:
        list(http_predictor.stream({}, mode="error"))
    assert raised.value.status == 500 and "this message is bad" in raised.value.message

    anonymous = client_module.Predictor(streamer.http, model="StreamingService")
    with pytest.raises(client_module.PredictionError) as raised:
        anonymous.predict({"x": [1]})
    assert raised.value.status == 401
    anonymous_grpc = client_module.Predictor(
        streamer.grpc, model="StreamingService", protocol="grpc"
    )
    with pytest.raises(client_module.PredictionError) as raised:
        anonymous_grpc.predict({"x": [1]})
    assert raised.value.status == "UNAUTHENTICATED"
