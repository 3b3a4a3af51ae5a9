"""tensors.py: every wire form decodes to the same array; bad input is InvalidInput."""

import numpy as np
import pytest

from taichu_runtime.errors import InvalidInput
from taichu_runtime.tensors import (
    as_output,
    datatype_of,
    from_contents,
    from_list,
    from_raw,
    pack_bytes,
    raw_view,
    to_raw,
    unpack_bytes,
)


@pytest.mark.parametrize(
    "datatype, values",
    [
        ("FP32", [[1.5, -2.0], [3.25, 0.0]]),
        ("INT64", [[1, -2], [3, 2**40]]),
        ("UINT8", [[0, 255], [7, 8]]),
        ("BOOL", [[True, False], [False, True]]),
        ("FP16", [[0.5, 1.0], [2.0, -4.0]]),
    ],
)
def test_json_typed_and_raw_forms_decode_alike(datatype, values):
    from_json = from_list("x", datatype, [2, 2], values)
    flat = [v for row in values for v in row]
    from_typed = from_contents("x", datatype, [2, 2], flat)
    from_bytes = from_raw("x", datatype, [2, 2], to_raw(from_json))
    assert from_json.shape == (2, 2) and datatype_of(from_json) == datatype
    np.testing.assert_array_equal(from_json, np.array(values, from_json.dtype))
    np.testing.assert_array_equal(from_typed, from_json)
    np.testing.assert_array_equal(from_bytes, from_json)


def test_bytes_round_trip_through_the_length_prefixed_form():
    items = [b"", b"abc", "caf\u00e9".encode(), bytes(range(256))]
    assert unpack_bytes(pack_bytes(items), "s") == items
    array = from_list("s", "BYTES", [2, 2], ["", "abc", "caf\u00e9", "d"])
    assert array.dtype == object and array[1, 0] == "caf\u00e9".encode()
    assert from_raw("s", "BYTES", [4], pack_bytes(items)).tolist() == items


@pytest.mark.parametrize(
    "call",
    [
        lambda: from_list("x", "FP32", [2, 2], [1.0, 2.0, 3.0]),  # wrong count
        lambda: from_list("x", "FP32", [-1], []),  # negative dim
        lambda: from_list("x", "FP99", [1], [1.0]),  # unknown datatype
        lambda: from_list("x", "UINT8", [1], [300]),  # does not fit
        lambda: from_raw("x", "FP32", [2], b"\x00" * 7),  # wrong byte count
        lambda: unpack_bytes(b"\x05\x00\x00\x00ab", "s"),  # length beyond the data
        lambda: from_contents("x", "INT32", [3], [1, 2]),
    ],
)
def test_bad_tensors_are_invalid_input_naming_the_tensor(call):
    with pytest.raises(InvalidInput) as caught:
        call()
    assert "'x'" in str(caught.value) or "'s'" in str(caught.value)


def test_hook_results_become_v2_tensors():
    assert datatype_of(as_output("y", 3)) == "INT64"
    assert datatype_of(as_output("y", 2.5)) == "FP64"
    assert datatype_of(as_output("y", True)) == "BOOL"
    text = as_output("y", "hi")
    assert datatype_of(text) == "BYTES" and text.reshape(-1).tolist() == [b"hi"]
    assert datatype_of(as_output("y", np.zeros(3, np.float32))) == "FP32"


@pytest.mark.parametrize("text", ["tok", "héllo ✓", ""])
def test_a_str_output_is_the_same_tensor_as_its_array(text):
    """A str (a streamed token, usually) takes a shorter way to its tensor: the same
    one, a scalar BYTES tensor of its UTF-8 bytes, that a str array becomes."""
    fast, general = as_output("y", text), as_output("y", np.array(text))
    assert fast.dtype == general.dtype == object
    assert fast.shape == general.shape == ()
    assert fast.tolist() == general.tolist() == text.encode("utf-8")


@pytest.mark.parametrize(
    "array",
    [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.arange(6, dtype=">i4"),  # big-endian: converted
        np.arange(6, dtype=np.float64)[::2],  # not contiguous: copied
        np.zeros((2, 3), np.float16).T,
        np.array(3.5),
        np.array([True, False]),
        np.array([b"ab", b"c"], dtype=object),
        np.zeros((0, 3), np.float16),
    ],
)
def test_raw_view_is_the_raw_encoding(array):
    assert bytes(raw_view(array)) == to_raw(array)


def test_raw_view_of_a_contiguous_tensor_copies_nothing():
    array = np.arange(1024, dtype=np.float32)
    view = raw_view(array)
    assert isinstance(view, memoryview)
    assert np.shares_memory(np.frombuffer(view, np.float32), array)
