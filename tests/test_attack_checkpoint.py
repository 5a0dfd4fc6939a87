"""Hostile checkpoints: deflate bombs, lying headers, unknown members, deep JSON, bad fields.

Each file is built by hand (zip and ``.npy`` bytes written here, bombs streamed from
repeated deflate blocks so that the test never holds the gigabytes it claims). Every
one must give a CheckpointError that says what is wrong, never another exception, and
loading it must stay within a few MiB of memory (tracemalloc sees numpy's buffers).
"""
import functools
import io
import json
import os
import stat
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import charrnn
from charrnn import checkpoint
from charrnn.checkpoint import CheckpointError

from conftest import POEM

MiB = 1 << 20
GiB = 1 << 30
BOMB_PEAK = 50 * MiB  # bytes a hostile file may make the loader allocate


# -- building files ------------------------------------------------------------------------

class Raw:
    """A member's stored bytes as they go into the zip, with what its entry declares."""

    def __init__(self, data, size, crc, method=zipfile.ZIP_DEFLATED, flags=0):
        self.data, self.size, self.crc, self.method, self.flags = data, size, crc, method, flags


def write_zip(path, entries):
    """A zip of ``entries`` (name -> bytes, stored, or Raw), written field by field."""
    central = []
    with open(path, "wb") as f:
        for name, e in entries.items():
            if isinstance(e, bytes):
                e = Raw(e, len(e), zlib.crc32(e), zipfile.ZIP_STORED)
            offset, n = f.tell(), name.encode()
            fields = (e.flags, e.method, 0, 0x21, e.crc, len(e.data), e.size, len(n))
            f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, *fields, 0) + n + e.data)
            central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, *fields,
                                       0, 0, 0, 0, 0, offset) + n)
        start, directory = f.tell(), b"".join(central)
        f.write(directory)
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central),
                            len(directory), start, 0))


def npy(a):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(a), allow_pickle=False)
    return buf.getvalue()


def npy_header(descr, shape, version=(1, 0), fortran=False, pad=0):
    """A ``.npy`` header of any version, declaring whatever it is told to."""
    return raw_header(f"{{'descr': {descr!r}, 'fortran_order': {fortran}, "
                      f"'shape': {tuple(shape)!r}, }}" + " " * pad, version)


def raw_header(text, version=(1, 0)):
    """A ``.npy`` header holding ``text``, its length field right."""
    wide = version != (1, 0)
    text += " " * (-(10 + 2 * wide + len(text) + 1) % 64) + "\n"
    raw = text.encode("utf8" if version == (3, 0) else "latin1")
    return b"\x93NUMPY" + bytes(version) + struct.pack("<I" if wide else "<H", len(raw)) + raw


@functools.lru_cache(maxsize=None)
def _zero_crc(prefix, n):
    crc, block = zlib.crc32(prefix), bytes(MiB)
    for _ in range(n // MiB):
        crc = zlib.crc32(block, crc)
    return zlib.crc32(bytes(n % MiB), crc)


def deflated(prefix, zeros, declared=None, crc=None):
    """``prefix`` then ``zeros`` zero bytes, deflated without ever holding the zeros.

    After a full flush deflate starts afresh, so every MiB of zeros compresses to the
    same ~1 kB: the stream is that block repeated.
    """
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = z.compress(prefix) + z.flush(zlib.Z_FULL_FLUSH)
    block = z.compress(bytes(MiB)) + z.flush(zlib.Z_FULL_FLUSH) if zeros >= MiB else b""
    tail = z.compress(bytes(zeros % MiB)) + z.flush()
    size = len(prefix) + zeros
    return Raw(head + block * (zeros // MiB) + tail, size if declared is None else declared,
               _zero_crc(prefix, zeros) if crc is None else crc)


@pytest.fixture(scope="module")
def good_entries(tmp_path_factory):
    """The members of a small trained checkpoint, as name -> .npy bytes."""
    model = charrnn.train(POEM * 3, hidden_size=8, seq_length=10, num_iterations=40)
    model.history.add_val_loss(20, 3.5)
    path = tmp_path_factory.mktemp("good") / "m.npz"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


@pytest.fixture
def entries(good_entries):
    return dict(good_entries)


def config_of(entries):
    return json.loads(np.load(io.BytesIO(entries["config.npy"]))[()])


def with_config(entries, **changes):
    config = config_of(entries)
    config.update(changes)
    entries["config.npy"] = npy(np.array(json.dumps(config)))
    return entries


def peak_memory(fn):
    """Peak bytes traced while ``fn`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def refused(path, match):
    """Load ``path``: CheckpointError matching ``match``; returns the loader's peak memory."""
    def attempt():
        with pytest.raises(CheckpointError, match=match):
            charrnn.load(path)
    return peak_memory(attempt)


# -- deflate bombs and lying sizes -----------------------------------------------------------

def test_history_bomb_of_two_gigabytes_is_refused_before_inflating(entries, tmp_path):
    n = GiB // 8  # iterations, each a float64 loss: 1 GiB per history member
    with_config(entries, iteration=n)
    for name in ("history_loss.npy", "history_smooth_loss.npy"):
        entries[name] = deflated(npy_header("<f8", (n,)), 8 * n)
    path = tmp_path / "bomb.npz"
    write_zip(path, entries)
    assert path.stat().st_size < 3 * MiB
    with zipfile.ZipFile(path) as z:  # what an unbounded loader would allocate
        assert sum(i.file_size for i in z.infolist()) > 2 * GiB
    peak = refused(path, r"history_loss 1,073,741,\d+.*decompression bomb")
    assert peak < BOMB_PEAK, f"loading the bomb peaked at {peak / MiB:.1f} MiB"


@pytest.mark.parametrize("member", ["hprev", "params"], ids=["hprev", "every-float-member"])
def test_zeros_claimed_by_the_config_are_refused(entries, tmp_path, member):
    """Optimizer state and hprev may be zeros, but not gigabytes of them in a small file."""
    config = config_of(entries)
    H, V = config["hidden_size"], np.load(io.BytesIO(entries["chars.npy"])).size
    if member == "hprev":
        B = GiB // 8 // H
        with_config(entries, batch_size=B)
        entries["hprev.npy"] = deflated(npy_header("<f8", (B * H,)), 8 * B * H)
    else:  # a hidden size whose parameters take ~1 GiB: every float member is zeros
        H = 11000
        with_config(entries, hidden_size=H)
        P = 2 * H * V + H * H + H + V
        for name in ("params", "m1", "m2", "hprev"):
            n = H if name == "hprev" else P
            entries[name + ".npy"] = deflated(npy_header("<f8", (n,)), 8 * n)
    path = tmp_path / "bomb.npz"
    write_zip(path, entries)
    peak = refused(path, "hprev 1,073,741,824.*decompression bomb" if member == "hprev"
                   else r"params 9\d\d,\d+,\d+, m1 9.*, m2 9.*decompression bomb")
    assert peak < BOMB_PEAK, f"{peak / MiB:.1f} MiB"


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)], ids=["v1", "v2", "v3"])
def test_npy_header_declaring_a_trillion_floats(entries, tmp_path, version):
    entries["params.npy"] = npy_header("<f8", (10**12,), version) + bytes(64)
    path = tmp_path / "huge.npz"
    write_zip(path, entries)
    assert refused(path, r"entry 'params' has 1,000,000,000,000 values, but hidden size 8"
                   ) < BOMB_PEAK


def test_headers_and_zip_entries_agreeing_with_a_huge_config(entries, tmp_path):
    """Every size declared agrees (4 GB per member), the data are not there: the size
    rule refuses the file before reading any."""
    n = 5 * 10**8
    with_config(entries, iteration=n)
    for name in ("history_loss.npy", "history_smooth_loss.npy"):
        header = npy_header("<f8", (n,), (3, 0))
        entries[name] = Raw(header + bytes(64), len(header) + 8 * n, 0, zipfile.ZIP_STORED)
    path = tmp_path / "huge.npz"
    write_zip(path, entries)
    assert refused(path, r"8,000,0\d\d,\d+ bytes in memory.*decompression bomb") < BOMB_PEAK


def test_member_that_inflates_beyond_its_zip_entry(entries, tmp_path):
    """The directory declares the true size and CRC, the stream goes on for 1 GiB more."""
    true = entries["history_loss.npy"]
    entries["history_loss.npy"] = deflated(true, GiB, declared=len(true),
                                           crc=zlib.crc32(true))
    path = tmp_path / "longer.npz"
    write_zip(path, entries)
    peak = refused(path, "entry 'history_loss' holds more data than its zip entry declares")
    assert peak < BOMB_PEAK, f"{peak / MiB:.1f} MiB"


def test_member_whose_zip_entry_overstates_its_size(entries, tmp_path):
    true = entries["params.npy"]
    entries["params.npy"] = Raw(true, GiB, zlib.crc32(true), zipfile.ZIP_STORED)
    path = tmp_path / "overstated.npz"
    write_zip(path, entries)
    assert refused(path, "entry 'params' declares .* but its zip entry says") < BOMB_PEAK


def test_member_cut_short_of_its_header(entries, tmp_path):
    entries["params.npy"] = entries["params.npy"][:-8]
    path = tmp_path / "short.npz"
    write_zip(path, entries)
    refused(path, "entry 'params' declares")


def test_member_with_a_wrong_crc(entries, tmp_path):
    true = entries["m1.npy"]
    entries["m1.npy"] = Raw(true, len(true), zlib.crc32(true) ^ 1, zipfile.ZIP_STORED)
    path = tmp_path / "crc.npz"
    write_zip(path, entries)
    refused(path, "CRC")


# -- members that must not be read -----------------------------------------------------------

@pytest.mark.parametrize("name", ["extra.npy", "readme.txt", "params", "dir/", "../m1.npy"])
def test_unknown_members_are_refused_unread(entries, tmp_path, name):
    entries[name] = deflated(b"", GiB)  # a bomb: reading it at all would show
    path = tmp_path / "unknown.npz"
    write_zip(path, entries)
    assert refused(path, f"entry {name!r} is not part of a charrnn checkpoint.*unread"
                   ) < BOMB_PEAK


def test_repeated_member_is_refused(entries, tmp_path):
    path = tmp_path / "twice.npz"
    write_zip(path, entries)
    with zipfile.ZipFile(path, "a") as z, pytest.warns(UserWarning, match="Duplicate"):
        z.writestr("m1.npy", entries["m1.npy"])
    refused(path, "entry 'm1' appears twice")


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"])
def test_compression_without_bounded_inflation_is_refused(entries, tmp_path, method):
    path = tmp_path / "bz.npz"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data, compress_type=method if name == "m1.npy" else 0)
    refused(path, "entry 'm1' uses zip compression method")


def test_encrypted_member_is_refused(entries, tmp_path):
    true = entries["m1.npy"]
    entries["m1.npy"] = Raw(true, len(true), zlib.crc32(true), zipfile.ZIP_STORED, flags=1)
    path = tmp_path / "enc.npz"
    write_zip(path, entries)
    refused(path, "entry 'm1' is encrypted")


# -- .npy headers ----------------------------------------------------------------------------

HEADERS = {
    "fortran-order": (npy_header("<f8", (8,), fortran=True), "Fortran order"),
    "structured": (raw_header("{'descr': [('a', '<f8')], 'fortran_order': False, "
                              "'shape': (8,), }"), "unreadable .npy header"),
    "odd-itemsize": (npy_header("<f3", (8,)), "dtype <f3; expected float64"),
    "complex": (npy_header("<c16", (8,)), "dtype <c16; expected float64"),
    "bool": (npy_header("|b1", (8,)), r"dtype \|b1; expected float64"),
    "integer": (npy_header("<i8", (8,)), "dtype int64; expected float64"),
    "float32": (npy_header("<f4", (8,)), "dtype float32, but the model is float64"),
    "object": (npy_header("|O", (8,)), "pickled Python object"),
    "2-d": (npy_header("<f8", (2, 4)), r"shape \(2, 4\); expected a 1-d array"),
    "header-too-long": (b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{",
                        "2,147,483,648-byte .npy header"),
    "header-64-kB": (npy_header("<f8", (8,), pad=65000), "65,0.. *-byte .npy header"),
    "unknown-version": (b"\x93NUMPY\x04\x00" + npy_header("<f8", (8,))[8:],
                        "not a .npy array of a known version"),
    "not-npy": (b"PK\x03\x04 hello", "not a .npy array"),
    "nested-parens": (raw_header("{'descr': '<f8', 'fortran_order': False, 'shape': "
                                 + "(" * 3000 + ")" * 3000 + "}"), "unreadable .npy header"),
    "big-dimension": (raw_header("{'descr': '<f8', 'fortran_order': False, 'shape': "
                                 "(" + "9" * 40 + ",), }"), "unreadable .npy header"),
    "repeated-key": (raw_header("{'descr': '<f8', 'shape': (8,), 'shape': (8,), }"),
                     "unreadable .npy header"),
    "code-in-header": (raw_header("{'descr': '<f8', 'fortran_order': __import__('os'), "
                                  "'shape': (8,), }"), "unreadable .npy header"),
}


@pytest.mark.parametrize("case", HEADERS, ids=HEADERS)
def test_bad_npy_headers(entries, tmp_path, case):
    data, match = HEADERS[case]
    entries["hprev.npy"] = data + bytes(64)
    path = tmp_path / "h.npz"
    write_zip(path, entries)
    refused(path, f"entry 'hprev'.*{match}")


def test_big_endian_members_load(entries, tmp_path, good_entries):
    for name in ("params.npy", "m1.npy", "history_loss.npy", "chars.npy", "rng_keys.npy"):
        a = np.load(io.BytesIO(entries[name]))
        entries[name] = npy(a.astype(a.dtype.newbyteorder(">")))
    path, good = tmp_path / "be.npz", tmp_path / "good.npz"
    write_zip(path, entries)
    write_zip(good, good_entries)
    a, b = charrnn.load(path), charrnn.load(good)
    assert a._flat.dtype == np.float64 and np.array_equal(a._flat, b._flat)
    assert a.chars == b.chars and np.array_equal(a.history.loss, b.history.loss)
    assert a.sample(50, seed=1) == b.sample(50, seed=1)


# -- JSON members ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 50_000, "[" * 33 + "]" * 33],
                         ids=["100k-brackets", "50k-objects", "33-levels"])
@pytest.mark.parametrize("member", ["config", "meta"])
def test_deeply_nested_json(entries, tmp_path, member, text):
    entries[member + ".npy"] = npy(np.array(text))
    path = tmp_path / "deep.npz"
    write_zip(path, entries)
    refused(path, f"entry '{member}' nests JSON deeper than 32 levels")


def test_brackets_inside_json_strings_do_not_count(entries, tmp_path):
    meta = {"note": "[" * 5000 + '\\"{' * 100, "deep": [[[[["ok"]]]]]}
    entries["meta.npy"] = npy(np.array(json.dumps(meta)))
    path = tmp_path / "strings.npz"
    write_zip(path, entries)
    assert charrnn.load_with_meta(path)[1] == meta


def test_oversized_json_is_refused_before_reading(entries, tmp_path):
    text = json.dumps({"pad": " " * 300_000})
    entries["meta.npy"] = deflated(npy_header(f"<U{len(text)}", ()), 0)  # header only
    path = tmp_path / "big.npz"
    write_zip(path, entries)
    refused(path, "entry 'meta' is a string of 300,011 characters")


@pytest.mark.parametrize("text, match", [
    ('{"a": 1e999999}', None),
    ('{"a": ' + "9" * 5000 + "}", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('"text"', "must be a JSON object"),
    ("{", "not valid JSON"),
    ("", "not valid JSON"),
], ids=["inf", "5000-digits", "list", "string", "unclosed", "empty"])
def test_odd_meta(entries, tmp_path, text, match):
    entries["meta.npy"] = npy(np.array(text))
    path = tmp_path / "meta.npz"
    write_zip(path, entries)
    if match is None:  # a JSON object: its fields are the caller's to check
        assert charrnn.load_with_meta(path)[1] == {"a": float("inf")}
    else:
        refused(path, f"entry 'meta' (is )?{match}")


def test_invalid_code_points_in_a_string_member(entries, tmp_path):
    entries["meta.npy"] = npy_header("<U1", ()) + struct.pack("<I", 0x110000)
    path = tmp_path / "ucs4.npz"
    write_zip(path, entries)
    refused(path, "corrupted")


# -- every config field ----------------------------------------------------------------------

BAD_FIELDS = [
    ("hidden_size", [0, -1, 2**31, "8", 8.0, True, None, [8]]),
    ("seq_length", [0, 2**31, "10", 1.5]),
    ("batch_size", [0, 10**12, "1", None]),
    ("learning_rate", [0, -0.1, "0.1", None, 10**400, True]),
    ("seed", [-1, 2**32, 1.0]),
    ("activation", ["relu", 0, None]),
    ("optimizer", ["lbfgs", 1]),
    ("clip", [0, -5, "5", True]),
    ("bptt", ["half", None]),
    ("reset_each_epoch", [1, "yes", None]),
    ("beta1", [1, 1.5, -0.1, "0.9"]),
    ("beta2", [1.0, -1]),
    ("decay_rate", [1, None]),
    ("eps", [0, -1e-8, "1e-8"]),
    ("dtype", ["float16", "int64", 64, None]),
    ("iteration", [-1, 2**62, 2**63 - 1, 2**64 - 1, 2**70, 1.5, "40", None]),
    ("pointer", [-1, 2**62, -(10**9), 0.5]),
    ("epoch", [-1, 2**62, "0"]),
    ("schedule", ["minutes", 0, True]),
]


@pytest.mark.parametrize("field, values", BAD_FIELDS, ids=[f for f, _ in BAD_FIELDS])
def test_every_bad_config_field_is_named(entries, tmp_path, field, values):
    path = tmp_path / "f.npz"
    for value in values:
        write_zip(path, with_config(dict(entries), **{field: value}))
        refused(path, f"config field {field} must")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_json_numbers(entries, tmp_path, value):
    path = tmp_path / "f.npz"
    write_zip(path, with_config(entries, learning_rate=value))
    refused(path, "config field learning_rate must be a finite number")


def test_unknown_and_missing_config_fields(entries, tmp_path):
    path = tmp_path / "f.npz"
    write_zip(path, with_config(dict(entries), colour="red"))
    refused(path, "config has fields 'colour' that a format 2 checkpoint does not have")
    config = config_of(entries)
    del config["eps"], config["seed"]
    entries["config.npy"] = npy(np.array(json.dumps(config)))
    write_zip(path, entries)
    refused(path, "config lacks seed, eps")


def test_batch_size_defaults_to_one_in_early_format_1_files(entries, tmp_path):
    config = config_of(entries)
    del config["batch_size"]
    entries["config.npy"] = npy(np.array(json.dumps(config)))
    path = tmp_path / "old.npz"
    write_zip(path, entries)
    assert charrnn.load(path).batch_size == 1


BAD_MEMBERS = [
    ("rng_has_gauss", np.array(2**62), r"rng_has_gauss' holds values outside \[0, 1\]"),
    ("rng_has_gauss", np.array(2), "rng_has_gauss"),
    ("rng_has_gauss", np.array(1, np.uint64), "dtype uint64; expected int64"),
    ("rng_pos", np.array(-1), "rng_pos"),
    ("rng_pos", np.array(625), r"outside \[0, 624\]"),
    ("rng_gauss", np.array(np.nan), "rng_gauss' holds NaN"),
    ("rng_keys", np.zeros(624, np.int64), "dtype int64; expected uint32"),
    ("rng_keys", np.zeros(623, np.uint32), "624 keys"),
    ("smooth_loss", np.array(-1.0), "smooth_loss"),
    ("smooth_loss", np.array(np.inf), "smooth_loss"),
    ("history_val_iteration", np.array([2**64 - 1], np.uint64), "history_val_iteration"),
    ("history_val_iteration", np.array([41]), r"outside \[0, 40\]"),
    ("history_val_iteration", np.array([-1]), "outside"),
    ("history_val_iteration", np.array([2**63 - 1]), "outside"),
    ("history_val_loss", np.array([np.nan]), "history_val_loss"),
    ("history_val_loss", np.array([1.0, 2.0]), "different lengths"),
    ("history_loss", np.zeros(41), "expected 0 to 40 .one history entry per iteration"),
    ("history_smooth_loss", np.zeros(39), "different lengths"),
    ("format_version", np.array(2**63 - 1), "newer"),
    ("format_version", np.array(1.0), "format_version"),
    ("format", np.array("charrnn2"), "not a charrnn checkpoint"),
    ("chars", lambda c: np.append(c[1:], c[0]), None),  # same V, chars in another order
    ("chars", lambda c: np.append(c[:-1], c[0]), "repeated"),
    ("chars", lambda c: np.append(c[:-1], np.uint32(0x110000)), "code points"),
    ("chars", lambda c: np.append(c[:-1], np.uint32(2**32 - 1)), "code points"),
]


@pytest.mark.parametrize("name, value, match", BAD_MEMBERS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(BAD_MEMBERS)])
def test_every_bad_member_is_named(entries, tmp_path, name, value, match):
    if callable(value):
        value = value(np.load(io.BytesIO(entries[name + ".npy"])))
    entries[name + ".npy"] = npy(value)
    path = tmp_path / "m.npz"
    write_zip(path, entries)
    if match is None:
        assert charrnn.load(path).chars == [chr(c) for c in value]
    else:
        refused(path, match)


def test_history_may_be_shorter_than_the_iterations(entries, tmp_path):
    """A history reset by hand: fewer entries than iterations is not an error."""
    for name in ("history_loss.npy", "history_smooth_loss.npy"):
        entries[name] = npy(np.zeros(5))
    path = tmp_path / "short.npz"
    write_zip(path, entries)
    assert len(charrnn.load(path).history) == 5


HOSTILE = [None, True, -1, 0, 2**31, 2**63, 2**64 + 1, 10**400, 1e308, -1e308, 0.5, "",
           "x" * 100, [], [1], {}, {"a": [1]}]


def test_no_field_value_escapes_as_another_exception(entries, tmp_path):
    """Every field x every hostile JSON value: a CheckpointError or a model, nothing else."""
    path = tmp_path / "f.npz"
    names = list(config_of(entries))
    outcomes = {"refused": 0, "loaded": 0}
    for name in names:
        for value in HOSTILE:
            write_zip(path, with_config(dict(entries), **{name: value}))
            try:
                charrnn.load(path)
            except CheckpointError:
                outcomes["refused"] += 1
            else:
                outcomes["loaded"] += 1
    # only a few values are valid for some field (clip, clip_norm, decay_iters, min_lr
    # and schedule None; a 0 pointer or warmup; a huge count for decay_every, ...)
    assert outcomes["refused"] > 0.85 * len(names) * len(HOSTILE), outcomes


# -- what must still load --------------------------------------------------------------------

LEGIT = {
    "fresh": dict(iterations=0),
    "trained-adagrad": dict(),
    "adam-float32": dict(optimizer="adam", dtype="float32"),
    "sgd-fresh": dict(optimizer="sgd", iterations=0),
    "batch-16": dict(batch_size=16),
    "fresh-batch-64-adam": dict(batch_size=64, optimizer="adam", iterations=0),
}


@pytest.mark.parametrize("compressed", [False, True], ids=["as-saved", "savez_compressed"])
@pytest.mark.parametrize("options", LEGIT.values(), ids=LEGIT)
def test_legitimate_checkpoints_load(tmp_path, options, compressed):
    options = dict(options)
    n = options.pop("iterations", 30)
    model = charrnn.CharRNN(charrnn.data.vocabulary(POEM), 32, seq_length=8, **options)
    model.set_text(POEM * 4)
    model.fit(n)
    path = tmp_path / "m.npz"
    model.save(path)
    if compressed:  # a copy squeezed by someone else: zeros shrink to nothing
        with np.load(path) as z:
            np.savez_compressed(path, **{k: z[k] for k in z.files})
    loaded = charrnn.load(path)
    for name in ("_flat", "_m1", "_m2", "_state"):
        a, b = getattr(loaded, name), getattr(model, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert loaded.iteration == model.iteration and loaded.rng.get_state()[2] == \
        model.rng.get_state()[2]


def test_loading_a_legitimate_checkpoint_costs_about_its_size(tmp_path):
    model = charrnn.CharRNN(charrnn.data.vocabulary(POEM), 256, seq_length=8)
    path = tmp_path / "m.npz"
    model.save(path)
    size = path.stat().st_size
    peak = peak_memory(lambda: charrnn.load(path))
    # the loaded members, plus the model the constructor draws before they replace it
    assert peak < 2.5 * size + 4 * MiB, f"{peak / size:.2f} x the file"


# -- files that are not regular --------------------------------------------------------------

def test_loading_a_fifo_does_not_block(tmp_path):
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="it is a FIFO"):
        charrnn.load(fifo)


def test_loading_a_device_is_refused(tmp_path):
    node = tmp_path / "null.npz"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    except (PermissionError, OSError) as e:
        pytest.skip(f"cannot make a device node here ({e.strerror}); needs root")
    with pytest.raises(CheckpointError, match="it is a character device"):
        charrnn.load(node)


def test_loading_a_socket_is_refused():
    import socket
    import tempfile
    with tempfile.TemporaryDirectory(dir="/tmp") as d:  # short: socket paths are limited
        path = os.path.join(d, "s")
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(path)
            with pytest.raises(CheckpointError, match="it is a socket"):
                charrnn.load(path)


def test_loader_never_calls_numpy_load():
    """No numpy.load in the loader: the members are read by its own bounded reader."""
    import inspect
    source = inspect.getsource(checkpoint)
    assert "np.load(" not in source and "numpy.load(" not in source
