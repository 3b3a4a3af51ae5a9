"""http_api/codec.py: JSON and the binary tensor extension decode to one InferRequest."""

import asyncio
import json

import numpy as np
import pytest

from taichu_runtime.errors import InvalidInput
from taichu_runtime.http_api.codec import (
    decode_request,
    dumps,
    encode_response,
    encode_response_parts,
)
from taichu_runtime.protocol import PARAMETERS, TENSORS, InferResponse


def test_json_and_binary_bodies_decode_to_the_same_tensors():
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    json_body = dumps(
        {
            "id": "a",
            "inputs": [
                {"name": "x", "datatype": "FP32", "shape": [2, 3], "data": values}
            ],
        }
    )
    header = json.dumps(
        {
            "id": "a",
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": [2, 3],
                    "parameters": {"binary_data_size": values.nbytes},
                }
            ],
        }
    ).encode()
    binary = decode_request(
        header + values.tobytes(),
        {"inference-header-content-length": str(len(header))},
        "m",
        "1",
    )
    plain = decode_request(json_body, {}, "m", "1")
    for request in (plain, binary):
        assert request.mode == TENSORS and request.id == "a"
        np.testing.assert_array_equal(request.data["x"], values)


def test_a_parameters_only_body_is_the_2x_form():
    request = decode_request(b'{"parameters": {"q": 1}}', {}, "m", "1")
    assert request.mode == PARAMETERS and request.data == {"q": 1}


@pytest.mark.parametrize(
    "body, message",
    [
        (b"not json", "JSON"),
        (b"[1, 2]", "object"),
        (b"{}", "no 'inputs'"),
        (b'{"inputs": [], "outputs": 3}', "'outputs'"),
    ],
)
def test_bad_bodies_are_invalid_input(body, message):
    with pytest.raises(InvalidInput) as caught:
        decode_request(body, {}, "m", "1")
    assert message in str(caught.value)


def test_a_response_lists_each_output_with_its_datatype_and_shape():
    request = decode_request(b'{"parameters": {}, "inputs": []}', {}, "m", "1")
    response = InferResponse(
        "m", "1", "r", TENSORS, outputs={"y": np.array([[1, 2]], np.int32)}
    )
    content, headers = encode_response(response, request)
    document = json.loads(content)
    assert headers == {}
    assert document["outputs"] == [
        {"name": "y", "datatype": "INT32", "shape": [1, 2], "data": [1, 2]}
    ]


def sent_by(parts, headers=None):
    """The ASGI messages send_parts() sends for `parts`."""
    from taichu_runtime.http_api.infer_route import send_parts

    messages = []

    async def send(message):
        messages.append(message)

    asyncio.run(send_parts(send, 200, parts, list(headers or [])))
    return messages


def test_large_binary_outputs_are_sent_from_the_arrays_own_memory():
    request = decode_request(
        b'{"inputs": [], "parameters": {"binary_data_output": true}}', {}, "m", "1"
    )
    first = np.arange(200_000, dtype=np.float32)  # 800 kB each
    second = np.arange(200_000, dtype=np.int32)
    response = InferResponse("m", "1", "r", TENSORS, outputs={"a": first, "b": second})
    header, binary, headers = encode_response_parts(response, request)
    parts = [header, *binary]
    start, *bodies = sent_by(parts)
    assert (b"content-length", str(sum(map(len, parts))).encode()) in start["headers"]
    assert [m.get("more_body", False) for m in bodies] == [True, True, False]
    assert np.shares_memory(np.frombuffer(bodies[1]["body"], np.float32), first)
    assert np.shares_memory(np.frombuffer(bodies[2]["body"], np.int32), second)
    joined, _ = encode_response(response, request)
    assert b"".join(bytes(m["body"]) for m in bodies) == joined  # the same bytes
    header = int(headers["Inference-Header-Content-Length"])
    assert json.loads(joined[:header])["outputs"][1]["parameters"] == {
        "binary_data_size": second.nbytes
    }


def test_a_small_body_in_parts_is_sent_in_one_message():
    parts = [b'{"outputs": []}', memoryview(b"\x00" * 16)]
    start, body = sent_by(parts)
    assert body == {"type": "http.response.body", "body": b"".join(parts)}
    assert (b"content-length", b"31") in start["headers"]
