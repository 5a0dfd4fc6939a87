"""Chunked encoding of files (charrnn.data.encode_file) and training on encoded arrays."""
import os

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


# -- streamed reading and clean-up: read_pieces, scan_pieces, encode_pieces ---------------------

# Capital sigmas in every context str.lower distinguishes (after a letter, alone, before a
# letter, across accents and apostrophes, at the very end), digits of several scripts,
# and the characters of MIXED.
GREEK = ("ΟΔΥΣΣΕΥΣ Σ ΣΑ AΣ' xΣ\u0301 ΣΣΣ Α\u0345Σ ʰΣ ΣʰΑ İΣ 'Σ' ٣² ₃ 12 "
         "λόγοΣ. ΝΑΣ\u0301\u0301\n") * 4 + MIXED + "ΑΣ"
OPTIONS = [dict(), dict(lower=True), dict(strip_digits=True), dict(drop_chars="aΣ, \n"),
           dict(lower=True, strip_digits=True, drop_chars="σς.")]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "+".join(o) or "none")
@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 64, 1 << 20], ids=lambda c: f"chunk{c}")
def test_read_pieces_equals_the_whole_text_path(tmp_path, options, chunk_bytes):
    path = write(tmp_path, GREEK)
    pieces = list(data.read_pieces(path, chunk_bytes=chunk_bytes, **options))
    expected = data.preprocess(GREEK, **options)
    assert "".join(pieces) == expected
    # and the whole-text clean-up is seed 002's, character by character
    text = GREEK.lower() if options.get("lower") else GREEK
    if options.get("strip_digits"):
        text = "".join(c for c in text if not c.isdigit())
    text = "".join(c for c in text if c not in options.get("drop_chars", ""))
    assert expected == text


@pytest.mark.parametrize("chunk_bytes", [1, 3, 1 << 20], ids=lambda c: f"chunk{c}")
def test_scan_and_encode_pieces_equal_the_whole_text(tmp_path, chunk_bytes):
    import hashlib

    path = write(tmp_path, GREEK)
    text = data.preprocess(GREEK, lower=True)
    scan = data.scan_pieces(data.read_pieces(path, lower=True, chunk_bytes=chunk_bytes),
                            digest=True)
    assert scan.chars == data.vocabulary(text) and scan.length == len(text)
    assert scan.sha256 == hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    indices = data.encode_pieces(data.read_pieces(path, lower=True, chunk_bytes=chunk_bytes),
                                 scan.chars, scan.length, sha256=scan.sha256)
    np.testing.assert_array_equal(indices, data.encode(text, scan.chars))
    with pytest.raises(ValueError, match="changed while it was being read"):
        data.encode_pieces(iter([text[:-1]]), scan.chars, scan.length)
    with pytest.raises(ValueError, match="changed while it was being read"):
        data.encode_pieces(iter([text[::-1]]), scan.chars, scan.length, sha256=scan.sha256)
    with pytest.raises(ValueError, match=r"1 character\(s\) of the text are not in the "
                                         r"vocabulary: 'Z'"):
        data.encode_pieces(iter(["Z"]), scan.chars, 1)


def test_lower_case_of_random_texts_cut_anywhere():
    """Sigma's context crosses pieces in every way: random texts, random cuts."""
    rng = np.random.RandomState(0)
    alphabet = ["Σ", "A", "a", " ", "'", "\u0301", ".", "1", "İ", "ʰ", "\n", "σ", "\u0345"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet, size=rng.randint(0, 14)))
        cuts = sorted(rng.randint(0, len(text) + 1, size=rng.randint(0, 5)))
        pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
        assert "".join(data._lowered(iter(pieces))) == text.lower(), (text, pieces)


def test_bytes_mode_cleans_bytes(tmp_path):
    raw = "Grüße 42, ABC\n".encode() + b"\xff\x00\x80 RAW 7\n"
    path = write(tmp_path, raw * 3)
    got = "".join(data.read_pieces(path, bytes_mode=True, lower=True, strip_digits=True,
                                   drop_chars=",", chunk_bytes=3))
    expected = (raw * 3).lower().translate(None, b"0123456789,").decode("latin-1")
    assert got == expected


def test_special_files_are_refused_before_reading(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        data.scan_vocabulary(tmp_path / "d")
    with pytest.raises(ValueError, match="is a character device, not a regular file"):
        data.encode_file("/dev/zero")  # would never end
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"is a FIFO \(named pipe\), not a regular file"):
        data.scan_vocabulary(fifo)  # no writer: must not wait for one


def test_unknown_and_non_text_encodings(tmp_path):
    path = write(tmp_path, "abc")
    with pytest.raises(ValueError, match="unknown encoding: klingon"):
        data.read_pieces(path, "klingon")
    with pytest.raises(ValueError, match="base64 is not a text encoding"):
        data.read_pieces(path, "base64")
