"""max_decoded_size: what a request would take once decoded is counted before it is
allocated; large tensors are converted in steps with the same result and the same
errors as small ones."""

import json

import numpy as np
import pytest

from taichu_runtime.budget import (
    BYTES_ELEMENT_SIZE,
    JSON_VALUE_SIZE,
    MOST_PER_WIRE_BYTE,
    NO_LIMIT,
    DecodeBudget,
    budget_for,
)
from taichu_runtime.errors import InvalidInput, PayloadTooLarge
from taichu_runtime.grpc_api import codec as grpc_codec
from taichu_runtime.http_api.codec import decode_request
from taichu_runtime.proto import open_inference_pb2 as pb2
from taichu_runtime.proto import taichu_infer_pb2 as legacy_pb2
from taichu_runtime.tensors import from_contents, from_list, from_raw, pack_bytes

MANY = 200_000  # more values than one conversion step takes


def json_body(data, datatype="FP32"):
    tensor = {"name": "x", "datatype": datatype, "shape": [len(data)], "data": data}
    return json.dumps({"inputs": [tensor]}).encode()


def test_a_json_body_counts_its_values_and_its_tensors():
    body = json_body([0.5] * 100, "FP64")
    values = body.count(b",") + 1  # at most: a value is first or after a comma
    needed = values * JSON_VALUE_SIZE + 100 * 8
    with pytest.raises(PayloadTooLarge, match="max_decoded_size"):
        decode_request(body, {}, "m", "1", DecodeBudget(needed - 1))
    request = decode_request(body, {}, "m", "1", DecodeBudget(needed))
    assert request.data["x"].tolist() == [0.5] * 100


def test_the_json_values_are_counted_before_the_parse():
    budget = DecodeBudget(1000)
    with pytest.raises(PayloadTooLarge, match="the request's JSON"):
        decode_request(b"[" + b"1," * 10_000 + b"1", {}, "m", "1", budget)  # not JSON


def test_bytes_elements_count_their_length_and_their_object():
    items = ["abc"] * 10
    exact = 10 * (BYTES_ELEMENT_SIZE + 3)
    with pytest.raises(PayloadTooLarge, match="input 's'"):
        from_list("s", "BYTES", [10], items, DecodeBudget(exact - 1))
    assert (
        from_list("s", "BYTES", [10], items, DecodeBudget(exact)).tolist()
        == [b"abc"] * 10
    )
    raw = pack_bytes([b"abc"] * 10)
    with pytest.raises(PayloadTooLarge):
        from_raw("s", "BYTES", [10], raw, DecodeBudget(10 * BYTES_ELEMENT_SIZE))


def test_a_bytes_shape_larger_than_its_data_is_a_bad_shape_not_a_large_one():
    raw = pack_bytes([b"a", b"b"])
    with pytest.raises(InvalidInput, match="needs 1000000000000 BYTES elements"):
        from_raw("s", "BYTES", [10**12], raw, DecodeBudget(1 << 20))


def test_binary_numbers_are_read_in_place_and_take_nothing():
    raw = np.arange(1000, dtype="<f4").tobytes()
    array = from_raw("x", "FP32", [1000], raw, DecodeBudget(1))
    assert array.base is not None and array[999] == 999


def test_grpc_typed_contents_and_json_param_are_counted():
    request = pb2.ModelInferRequest(model_name="m")
    tensor = request.inputs.add(name="s", datatype="BYTES", shape=[1000])
    tensor.contents.bytes_contents.extend([b"a"] * 1000)
    with pytest.raises(PayloadTooLarge):
        grpc_codec.decode_request(request, grpc_codec.V2, {}, DecodeBudget(1000))
    legacy = legacy_pb2.ModelInferRequest(model_name="m")
    legacy.parameters["p"].json_param = json.dumps(list(range(1000)))
    with pytest.raises(PayloadTooLarge, match="json_param"):
        grpc_codec.decode_request(legacy, grpc_codec.LEGACY, {}, DecodeBudget(1000))


@pytest.mark.parametrize("datatype", ["FP32", "INT64", "UINT8"])
def test_many_values_convert_as_few_do(datatype):
    values = np.random.default_rng(1).integers(0, 200, MANY)
    data = values.tolist() if datatype != "FP32" else (values / 7).tolist()
    expected = np.asarray(data).astype(from_list("x", datatype, [1], data[:1]).dtype)
    assert np.array_equal(from_list("x", datatype, [MANY], data), expected)
    assert np.array_equal(from_contents("x", datatype, [MANY], data), expected)


def test_a_bad_value_in_a_later_step_is_still_found():
    data = [1.0] * MANY
    data[150_000] = "1"
    with pytest.raises(InvalidInput, match="FP32 data must be numbers"):
        from_list("x", "FP32", [MANY], data)
    data = [1] * MANY
    data[150_000] = 300
    with pytest.raises(InvalidInput, match="does not fit INT8"):
        from_list("x", "INT8", [MANY], data)
    request = pb2.ModelInferRequest(model_name="m")
    tensor = request.inputs.add(name="x", datatype="INT32", shape=[MANY])
    tensor.contents.int64_contents.extend([1] * MANY)
    tensor.contents.int64_contents[150_000] = 2**40
    with pytest.raises(InvalidInput, match="does not fit INT32"):
        from_contents("x", "INT32", [MANY], tensor.contents.int64_contents)


def test_a_body_too_small_to_reach_the_limit_is_not_counted():
    assert budget_for(1000, 64 * 1000) is NO_LIMIT
    assert isinstance(budget_for(1001, 64 * 1000), DecodeBudget)
    # The worst case per wire byte stays within what budget_for assumes.
    worst = (
        b'{"inputs":[{"name":"s","datatype":"BYTES","shape":[3],"data":["","",""]}]}'
    )
    budget = DecodeBudget(1 << 30)
    decode_request(worst, {}, "m", "1", budget)
    assert budget.limit - budget.left <= len(worst) * MOST_PER_WIRE_BYTE
