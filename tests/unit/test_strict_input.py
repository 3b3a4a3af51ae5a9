"""Odd input gets a clear InvalidInput (400 / INVALID_ARGUMENT), never a 500, a wrong
value or a silently dropped part; odd output is never silently changed."""

import json

import numpy as np
import pytest

from taichu_runtime.errors import InvalidInput
from taichu_runtime.grpc_api import codec as grpc_codec
from taichu_runtime.http_api.codec import decode_request, encode_response
from taichu_runtime.pipeline.responses import Responses
from taichu_runtime.proto import open_inference_pb2 as pb2
from taichu_runtime.proto import taichu_infer_pb2 as legacy_pb2
from taichu_runtime.tensors import from_raw


def body(inputs=None, **fields):
    document = {"inputs": inputs if inputs is not None else [], **fields}
    return json.dumps(document).encode()


def tensor(data, datatype="INT32", shape=None, name="x"):
    shape = [len(data)] if shape is None else shape
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def rejected(raw: bytes, headers=None) -> str:
    with pytest.raises(InvalidInput) as caught:
        decode_request(raw, headers or {}, "m", "1")
    return str(caught.value)


@pytest.mark.parametrize(
    "data, datatype, message",
    [
        ([1.7], "INT32", "INT32 data must be integers"),
        (["12"], "INT32", "INT32 data must be integers"),
        ([True], "INT64", "INT64 data must be integers"),
        ([None, 1], "INT32", "INT32 data must be integers"),
        ([None, 1.5], "FP32", "FP32 data must be numbers"),
        (["1.5"], "FP64", "FP64 data must be numbers"),
        ([300], "UINT8", "does not fit UINT8"),
        ([-1], "UINT32", "does not fit UINT32"),
        ([2**70], "INT64", "INT64 data must be integers"),  # orjson: a float
        ([1, "a"], "BOOL", "BOOL data must be true or false"),
    ],
)
def test_numbers_must_be_numbers_of_the_declared_kind(data, datatype, message):
    assert message in rejected(body([tensor(data, datatype)]))


def test_integral_floats_are_numbers_for_float_tensors_and_ints_stay_exact():
    request = decode_request(body([tensor([1, 2.5], "FP32")]), {}, "m", "1")
    assert request.data["x"].tolist() == [1.0, 2.5]
    big = decode_request(body([tensor([2**63 - 1], "INT64")]), {}, "m", "1")
    assert big.data["x"].tolist() == [2**63 - 1]
    top = decode_request(body([tensor([2**64 - 1], "UINT64")]), {}, "m", "1")
    assert top.data["x"].tolist() == [2**64 - 1]
    empty = decode_request(body([tensor([], "INT32", [0, 3])]), {}, "m", "1")
    assert empty.data["x"].shape == (0, 3)


@pytest.mark.parametrize(
    "shape, message",
    [
        ([1] * 65, "at most 64 dimensions"),
        ([0, 2**62, 4], "too large"),
        ([0, 2**62, 2**62], "too large"),
    ],
)
def test_shapes_numpy_cannot_hold_are_invalid_input(shape, message):
    assert message in rejected(body([tensor([], "INT32", shape)]))
    with pytest.raises(InvalidInput, match=message):
        from_raw("x", "INT32", shape, b"")


def test_duplicate_input_names_are_refused():
    twice = [tensor([1]), tensor([2])]
    assert "input 'x' appears more than once" in rejected(body(twice))


@pytest.mark.parametrize(
    "request_id",
    ["a\nb", "line\r\nX-Injected: 1", "caf\u00e9", "x" * 257, "tab\tid"],
)
def test_request_ids_must_be_short_printable_ascii(request_id):
    message = rejected(body([tensor([1])], id=request_id))
    assert "'id' must be printable ASCII of at most 256 characters" in message


def test_deeply_nested_parameters_are_refused():
    nested: dict = {}
    inner = nested
    for _ in range(100):
        inner["a"] = {}
        inner = inner["a"]
    message = rejected(body([tensor([1])], parameters=nested))
    assert "nested deeper than 32 levels" in message


def grpc_request(**fields):
    message = pb2.ModelInferRequest(model_name="m", **fields)
    return message


def grpc_rejected(message, dialect=grpc_codec.V2) -> str:
    with pytest.raises(InvalidInput) as caught:
        grpc_codec.decode_request(message, dialect, {})
    return str(caught.value)


def test_grpc_typed_contents_beside_raw_contents_are_refused():
    message = grpc_request()
    tensor_ = message.inputs.add(name="x", datatype="INT32", shape=[1])
    tensor_.contents.int_contents.append(5)
    message.raw_input_contents.append(np.int32(7).tobytes())
    assert "both typed contents and raw_input_contents" in grpc_rejected(message)


def test_grpc_duplicate_names_ids_and_shapes():
    message = grpc_request()
    for value in (1, 2):
        message.inputs.add(
            name="x", datatype="INT32", shape=[1]
        ).contents.int_contents.append(value)
    assert "input 'x' appears more than once" in grpc_rejected(message)
    message = grpc_request(id="a\x01b")
    message.inputs.add(
        name="x", datatype="INT32", shape=[1]
    ).contents.int_contents.append(1)
    assert "'id' must be printable ASCII" in grpc_rejected(message)
    message = grpc_request()
    message.inputs.add(name="x", datatype="INT32", shape=[1] * 65)
    assert "at most 64 dimensions" in grpc_rejected(message)


def test_a_malformed_2x_json_param_is_invalid_input():
    message = legacy_pb2.ModelInferRequest(model_name="m")
    message.parameters["q"].json_param = "{not json"
    assert "parameter 'q': json_param is not valid JSON" in grpc_rejected(
        message, grpc_codec.LEGACY
    )


def test_nan_and_inf_outputs_keep_their_values_in_json():
    responses = Responses("m", "1")
    request = decode_request(body([tensor([1])]), {}, "m", "1")
    values = np.array([np.nan, np.inf, -np.inf, 1.5], dtype=np.float32)
    response = responses.of(request, {"y": values})
    content, _ = encode_response(response, request)
    (output,) = json.loads(content)["outputs"]  # Python's json reads NaN, Infinity
    decoded = np.array(output["data"], dtype=np.float32)
    np.testing.assert_array_equal(decoded, values)
    assert b"NaN" in content and b"-Infinity" in content


def test_nan_and_infinity_literals_in_a_body_are_read_as_triton_writes_them():
    raw = b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [3], "data": [NaN, Infinity, -Infinity]}]}'
    values = decode_request(raw, {}, "m", "1").data["x"]
    assert np.isnan(values[0]) and values[1] == np.inf and values[2] == -np.inf
    assert "not valid JSON" in rejected(b'{"inputs": [nope]}')


@pytest.mark.parametrize(
    "data, datatype, message",
    [
        ([1] * 100 + [1.5], "INT32", "INT32 data must be integers"),
        ([1.0] * 100 + [None], "FP32", "FP32 data must be numbers"),
        ([1] * 100 + ["2"], "FP64", "FP64 data must be numbers"),
        ([1] * 100 + [300], "UINT8", "does not fit UINT8"),
    ],
)
def test_long_data_is_checked_as_strictly_as_short(data, datatype, message):
    assert message in rejected(body([tensor(data, datatype)]))
    assert (
        decode_request(body([tensor([7] * 101, datatype)]), {}, "m", "1")
        .data["x"]
        .tolist()
        == [7] * 101
    )
