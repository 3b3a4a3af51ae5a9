"""The client module the generated project ships (taichu_runtime/client.py), against the
generated server: every method, both protocols, errors, streams, serializers."""

import io
import ssl
import subprocess
import sys

import numpy as np
import pytest

from conftest import SERVICES, Server, free_port, render, self_signed


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
    assert [e["token"].item() for e in events] == [b"tok0", b"tok1"]  # as gRPC's
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


def test_metadata_has_one_shape_on_both_protocols(server, client_module):
    http = client_module.Predictor(server.http)
    grpc_predictor = client_module.Predictor(server.grpc, protocol="grpc")
    assert grpc_predictor.metadata() == http.metadata()
    over_http, over_grpc = http.server_metadata(), grpc_predictor.server_metadata()
    assert set(over_grpc) == set(over_http) == {"name", "version", "extensions"}
    assert over_grpc["version"] == over_http["version"]
    with pytest.raises(ValueError, match="raw_predict posts an HTTP body"):
        grpc_predictor.raw_predict({"inputs": []})


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_server_that_cannot_be_reached_is_a_prediction_error(client_module, protocol):
    port = free_port()  # nothing listens there
    predictor = client_module.Predictor(
        f"127.0.0.1:{port}", protocol=protocol, timeout=5
    )
    with pytest.raises(client_module.PredictionError) as raised:
        predictor.predict({"x": [1]})
    assert raised.value.status == "UNAVAILABLE"
    with pytest.raises(client_module.PredictionError):
        predictor.metadata()


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """The identity service with a token and TLS on both ports."""
    directory = render(tmp_path_factory.mktemp("client-tls") / "project")
    key, cert = self_signed(directory)
    flags = ["--token", "s3cret", "--tls-cert", str(cert), "--tls-key", str(key)]
    running = Server(directory, flags).wait_ready(ca_file=cert)
    yield running, cert
    running.stop()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_token_and_tls(secured, client_module, protocol):
    server, cert = secured
    endpoint = server.http if protocol == "http" else server.grpc
    predictor = client_module.Predictor(
        endpoint, protocol=protocol, token="s3cret", ca_file=str(cert)
    )
    outputs = predictor.predict({"x": np.array([3], dtype=np.int32)})
    assert outputs["x"].tolist() == [3]
    assert predictor.ready() and predictor.metadata()["name"] == "ModelService"
    no_token = client_module.Predictor(endpoint, protocol=protocol, ca_file=str(cert))
    with pytest.raises(client_module.PredictionError) as raised:
        no_token.predict({"x": [1]})
    assert raised.value.status in (401, "UNAUTHENTICATED")
    untrusted = client_module.Predictor(endpoint, protocol=protocol, token="s3cret")
    untrusted.tls = True  # TLS, but trusting only the system's authorities
    untrusted._ssl = ssl.create_default_context()
    with pytest.raises(client_module.PredictionError):
        untrusted.predict({"x": [1]})


@pytest.mark.parametrize(
    "client", ["http_client.py", "grpc_client.py", "sdk_client.py", "sse_client.py",
               "stream_grpc_client.py"],
)  # fmt: skip
def test_example_clients_take_token_and_tls(secured, client):
    server, cert = secured
    result = subprocess.run(
        [sys.executable, f"test/{client}", "--http-port", str(server.http_port),
         "--grpc-port", str(server.grpc_port), "--token", "s3cret",
         "--ca-file", str(cert)],
        cwd=server.project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    refused = subprocess.run(
        [sys.executable, f"test/{client}", "--http-port", str(server.http_port),
         "--grpc-port", str(server.grpc_port), "--ca-file", str(cert)],
        cwd=server.project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr, refused.stderr
    assert "401" in refused.stderr or "UNAUTHENTICATED" in refused.stderr
