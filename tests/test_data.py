"""Chunked encoding of files (charrnn.data.encode_file) and training on encoded arrays."""
import numpy as np
import pytest
from conftest import PARAM_NAMES, POEM

import charrnn
from charrnn import data

# One-, two-, three- and four-byte UTF-8 characters, so that tiny chunks split many of them.
MIXED = POEM + "Ça va? Ἐν ἀρχῇ ἦν ὁ λόγος — 中文字符 — 🙂🎭 naïve café\n" * 3


def write(tmp_path, content, name="text.txt"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 7, 64, 1 << 20], ids=lambda c: f"chunk{c}")
def test_encode_file_equals_encode(tmp_path, chunk_bytes):
    path = write(tmp_path, MIXED)
    chars = data.vocabulary(MIXED)
    assert data.scan_vocabulary(path, chunk_bytes=chunk_bytes) == chars
    got = data.encode_file(path, chunk_bytes=chunk_bytes)
    expected = data.encode(MIXED, chars)
    assert got.chars == chars
    assert got.indices.dtype == expected.dtype
    np.testing.assert_array_equal(got.indices, expected)


def test_encode_file_with_given_chars_and_wide_vocabulary(tmp_path):
    text = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 300)) + "ab\n"  # > 256 characters
    path = write(tmp_path, text)
    chars = sorted(set(text)) + ["z"]  # a superset is fine
    got = data.encode_file(path, chars=chars, chunk_bytes=5)
    assert got.indices.dtype == np.uint16
    np.testing.assert_array_equal(got.indices, data.encode(text, chars))
    with pytest.raises(ValueError, match=r"1 character\(s\) .* not in the vocabulary: 'b'"):
        data.encode_file(path, chars=[c for c in chars if c != "b"])


def test_encode_file_into_memmap(tmp_path):
    path = write(tmp_path, MIXED)
    expected = data.encode(MIXED, data.vocabulary(MIXED))
    got = data.encode_file(path, out=tmp_path / "ix.npy", chunk_bytes=11)
    assert isinstance(got.indices, np.memmap)
    np.testing.assert_array_equal(np.load(tmp_path / "ix.npy", mmap_mode="r"), expected)
    out = np.memmap(tmp_path / "ix.bin", dtype=np.uint8, mode="w+", shape=expected.shape)
    got = data.encode_file(path, out=out)
    assert got.indices is out
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match="out must have shape"):
        data.encode_file(path, out=np.empty(3, np.uint8))


@pytest.mark.parametrize("chunk_bytes", [1, 4, 1 << 20], ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("bad, offset", [
    (b"\xff", 3),                    # a byte that never starts a character
    (b"\xe2\x82x", 3),               # a three-byte character cut short by "x"
    (b"\x80", 3),                    # a lone continuation byte
])
def test_invalid_utf8_names_the_byte_offset(tmp_path, chunk_bytes, bad, offset):
    path = write(tmp_path, "abc".encode() + bad + "défg".encode())
    with pytest.raises(ValueError, match=rf"not valid utf-8: .* at byte offset {offset} "):
        data.encode_file(path, chunk_bytes=chunk_bytes)


def test_truncated_last_character_names_its_offset(tmp_path):
    path = write(tmp_path, "aé".encode() + "€".encode()[:2])
    with pytest.raises(ValueError, match="at byte offset 3 "):
        data.scan_vocabulary(path, chunk_bytes=2)


def test_empty_file(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        data.encode_file(write(tmp_path, b""))


def test_training_on_a_memmap_equals_training_on_the_str(tmp_path):
    path = write(tmp_path, MIXED)
    data.encode_file(path, out=tmp_path / "ix.npy", chunk_bytes=7)
    indices = np.load(tmp_path / "ix.npy", mmap_mode="r")  # read-only memmap
    encoded = data.EncodedText(indices, data.scan_vocabulary(path))
    kw = dict(hidden_size=16, num_iterations=30, seed=2)
    got = charrnn.train(encoded, **kw)
    expected = charrnn.train(MIXED, **kw)
    assert got.chars == expected.chars
    assert got._data is indices  # the model trains on the memmap itself, not a copy
    for name, a, b in zip(PARAM_NAMES, got.params, expected.params):
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(got.history.loss, expected.history.loss)
    # a plain (indices, chars) pair works too
    pair = charrnn.train((np.asarray(indices), "".join(encoded.chars)), **kw)
    np.testing.assert_array_equal(pair.params[0], expected.params[0])
    assert np.shares_memory(pair._data, indices)


@pytest.mark.parametrize("indices, message", [
    (np.zeros((4, 10), np.uint8), "one-dimensional"),
    (np.zeros(40, np.int64), "uint8, uint16 or uint32"),
    (np.zeros(80, np.uint8)[::2], "C-contiguous"),
    (np.zeros(5, np.uint8), "at least seq_length"),
    (np.array([0, 1] * 20 + [7], np.uint16), r"indices\[40\] = 7 is outside the vocabulary"),
    ([0, 1] * 20, "numpy array"),
], ids=["2d", "int64", "strided", "short", "out-of-range", "list"])
def test_set_data_rejects_bad_arrays(indices, message):
    model = charrnn.CharRNN("abc", hidden_size=4, seq_length=25)
    with pytest.raises(ValueError, match=message):
        model.set_data(indices)
