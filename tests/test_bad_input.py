"""Bad input, tried on purpose: what users and attackers really pass to every public
function and to the CLI.

Each case ends in a clear Python exception (ValueError, IndexError, RuntimeError,
OSError, ...) with a message that says what was wrong, or in a documented, correct
result: never a crash, a hang or a silently wrong model. The last part fuzzes
``lossFun`` and ``sample`` with hypothesis: every example either equals
``charrnn.reference`` or raises ValueError/IndexError. Profiles: ``ci`` (the default, a
few hundred examples in all) and ``thorough`` (``HYPOTHESIS_PROFILE=thorough``, many
thousands).
"""
import json
import os
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings, strategies as st

import charrnn
from charrnn import checkpoint, cli, reference
from charrnn.checkpoint import CheckpointError
from conftest import POEM, assert_close, random_params

settings.register_profile(
    "ci", max_examples=100, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile(
    "thorough", max_examples=5000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

H, V, T = 6, 5, 4
TEXT = POEM * 3
NAMES = ("Wxh", "Whh", "Why", "bh", "by", "hprev")


def good_args(dtype=np.float64):
    rng = np.random.RandomState(0)
    params = tuple(a.astype(dtype) for a in random_params(rng, H, V, 0.3, rho=0.8))
    h = (rng.randn(H, 1) * 0.3).astype(dtype)
    return [0, 1, 4, 2], [1, 4, 2, 3], h, params


def with_array(args, k, value):
    """args with array k (0-4: a parameter, 5: the hidden state) replaced."""
    inputs, targets, h, params = args
    if k == 5:
        return inputs, targets, value, params
    p = list(params)
    p[k] = value
    return inputs, targets, h, tuple(p)


# -- arrays: each mutation applied to each of Wxh, Whh, Why, bh, by, hprev -----------------

def _strided(a):
    big = np.zeros(a.shape + (2,), a.dtype)
    big[..., 0] = a
    view = big[..., 0]
    assert view.size <= 1 or not view.flags.c_contiguous
    return view


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def _nan_at(a, value):
    a = a.copy()
    a.flat[a.size // 2] = value
    return a


# (id, mutation, None for "same result as the original", or (exception, message))
SAME = None
ARRAY_MUTATIONS = [
    ("fortran-order", np.asfortranarray, SAME),
    ("non-contiguous", _strided, SAME),
    ("read-only", _readonly, SAME),
    ("big-endian", lambda a: a.astype(a.dtype.newbyteorder(">")), SAME),
    ("subclass-matrix", lambda a: np.asmatrix(a), SAME),
    ("float32-among-float64", lambda a: a.astype(np.float32),
     (ValueError, "has dtype float32, but the parameters are float64")),
    ("float16", lambda a: a.astype(np.float16), (ValueError, "dtype float64 or float32")),
    ("longdouble", lambda a: a.astype(np.longdouble), (ValueError, "dtype float64 or float32")),
    ("int64", lambda a: a.astype(np.int64), (ValueError, "dtype float64 or float32")),
    ("bool", lambda a: a > 0, (ValueError, "dtype float64 or float32")),
    ("complex", lambda a: a.astype(complex), (ValueError, "dtype float64 or float32")),
    ("object", lambda a: a.astype(object), (ValueError, "dtype float64 or float32")),
    ("str", lambda a: a.astype(str), (ValueError, "dtype float64 or float32")),
    ("nan", lambda a: _nan_at(a, np.nan), (ValueError, "contains NaN or infinite")),
    ("+inf", lambda a: _nan_at(a, np.inf), (ValueError, "contains NaN or infinite")),
    ("-inf", lambda a: _nan_at(a, -np.inf), (ValueError, "contains NaN or infinite")),
    ("flattened", np.ravel, (ValueError, "must have shape|must be a 2-D array")),
    ("extra-axis", lambda a: a[None], (ValueError, "must have shape|must be a 2-D array")),
    ("one-more-row", lambda a: np.vstack([a, a[:1]]), (ValueError, "must have shape")),
    ("one-more-column", lambda a: np.hstack([a, a[:, :1]]), (ValueError, "must have shape")),
    ("empty", lambda a: a[:0], (ValueError, "must have shape|sizes must be >= 1")),
    ("nested-list", lambda a: a.tolist(), (ValueError, "must be a numpy array|2-D array")),
    ("None", lambda a: None, (ValueError, "must be a numpy array|2-D array")),
    ("scalar", lambda a: np.float64(1.0), (ValueError, "must be a numpy array|2-D array")),
]


def _check_same(got, want):
    for g, w, name in zip(got, want, ("loss",) + NAMES[:5] + ("h",)):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w), err_msg=name)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
@pytest.mark.parametrize("k", range(6), ids=NAMES)
@pytest.mark.parametrize("mid,mutate,expect", ARRAY_MUTATIONS,
                         ids=[m[0] for m in ARRAY_MUTATIONS])
def test_lossfun_array_arguments(k, mid, mutate, expect):
    args = good_args()
    original = (args[3] + (args[2],))[k]
    if mid == "float32-among-float64" and k == 0:
        # Wxh sets the dtype: then every other array is the odd one out
        expect = (ValueError, "has dtype float64, but the parameters are float32")
    if mid == "empty" and k in (3, 4, 5):
        expect = (ValueError, "must have shape")
    bad = with_array(args, k, mutate(original))
    if expect is SAME:
        _check_same(charrnn.lossFun(*bad), charrnn.lossFun(*args))
    else:
        with pytest.raises(expect[0], match=expect[1]):
            charrnn.lossFun(*bad)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
@pytest.mark.parametrize("k", range(6), ids=NAMES)
@pytest.mark.parametrize("mid,mutate,expect", ARRAY_MUTATIONS,
                         ids=[m[0] for m in ARRAY_MUTATIONS])
def test_sample_array_arguments(k, mid, mutate, expect):
    _, _, h, params = good_args()
    original = (params + (h,))[k]
    if mid == "float32-among-float64" and k == 0:
        expect = (ValueError, "has dtype float64, but the parameters are float32")
    if mid == "empty" and k in (3, 4, 5):
        expect = (ValueError, "must have shape")
    _, _, bh, bp = with_array((None, None, h, params), k, mutate(original))
    if expect is SAME:
        assert charrnn.sample(bh, 1, 30, bp, 7) == charrnn.sample(h, 1, 30, params, 7)
    else:
        with pytest.raises(expect[0], match=expect[1]):
            charrnn.sample(bh, 1, 30, bp, 7)


def test_all_float32_is_a_documented_correct_result():
    args64 = good_args()
    args32 = good_args(np.float32)
    got = charrnn.lossFun(*args32)
    want = reference.lossFun(*args64)
    assert got[1].dtype == np.float32
    for g, w, name in zip(got, want, ("loss",) + NAMES):
        assert_close(g, w, 1e-4, f"float32 {name}")


def test_params_container():
    inputs, targets, h, params = good_args()
    for bad in (None, params[:4], params + (params[0],), {"Wxh": params[0]}, "params",
                iter(params)):
        with pytest.raises(ValueError, match="five arrays"):
            charrnn.lossFun(inputs, targets, h, bad)
    # a list is a fine container
    _check_same(charrnn.lossFun(inputs, targets, h, list(params)),
                charrnn.lossFun(inputs, targets, h, params))


# -- indices ------------------------------------------------------------------------------------

INDEX_CASES = [
    ("negative", [0, -1, 2, 3], IndexError, r"\[1\] = -1 is outside the vocabulary \[0, 5\)"),
    ("equal-to-V", [0, 1, 5, 3], IndexError, r"\[2\] = 5 is outside"),
    ("huge", [0, 1, 2, 10**15], IndexError, r"\[3\] = 1000000000000000 is outside"),
    ("int64-max", np.array([0, 1, 2, 2**63 - 1]), IndexError, "is outside"),
    ("int64-min", np.array([0, 1, 2, -2**63]), IndexError, "is outside"),
    ("uint64-max", np.array([0, 1, 2, 2**64 - 1], np.uint64), IndexError, "is outside"),
    ("2**32+1-wraps-in-int32", [0, 1, 2, 2**32 + 1], IndexError, "is outside"),
    ("beyond-int64", [0, 1, 2, 2**70], ValueError, "must hold integers"),
    ("float", [0.0, 1.0, 2.0, 3.0], ValueError, "must hold integers, got dtype float64"),
    ("float-nan", [0, 1, 2, float("nan")], ValueError, "must hold integers"),
    ("bool", [True, False, True, False], ValueError, "got dtype bool"),
    ("None-inside", [0, None, 2, 3], ValueError, "must hold integers, got dtype object"),
    ("str", "abcd", ValueError, "not str"),
    ("bytes", b"\x00\x01\x02\x03", ValueError, "not bytes"),
    ("str-digits-list", ["0", "1", "2", "3"], ValueError, "must hold integers"),
    ("nested", [[0, 1], [2, 3]], ValueError, "one-dimensional"),
    ("ragged", [[0, 1], [2]], ValueError, "sequence of integer indices|one-dimensional"),
    ("scalar", 3, ValueError, "one-dimensional"),
    ("None", None, ValueError, "one-dimensional|must hold integers"),
    ("empty", [], ValueError, "is empty"),
    ("wrong-length", [0, 1, 2], ValueError, "same length"),
    ("dict", {0: 1}, ValueError, "one-dimensional|must hold integers"),
]
INDEX_OK = [
    ("tuple", (0, 1, 4, 2)),
    ("int8-array", np.array([0, 1, 4, 2], np.int8)),
    ("uint64-array", np.array([0, 1, 4, 2], np.uint64)),
    ("non-contiguous", np.array([0, 9, 1, 9, 4, 9, 2, 9])[::2]),
    ("read-only", _readonly(np.array([0, 1, 4, 2]))),
    ("numpy-ints", [np.int64(0), np.int16(1), np.uint8(4), 2]),
]


@pytest.mark.parametrize("which", ["inputs", "targets"])
@pytest.mark.parametrize("cid,value,exc,match", INDEX_CASES, ids=[c[0] for c in INDEX_CASES])
def test_lossfun_bad_indices(which, cid, value, exc, match):
    inputs, targets, h, params = good_args()
    if which == "inputs":
        inputs = value
    else:
        targets = value
    with pytest.raises(exc, match=match):
        charrnn.lossFun(inputs, targets, h, params)


@pytest.mark.parametrize("cid,value", INDEX_OK, ids=[c[0] for c in INDEX_OK])
def test_lossfun_index_containers_that_work(cid, value):
    inputs, targets, h, params = good_args()
    _check_same(charrnn.lossFun(value, targets, h, params),
                charrnn.lossFun(inputs, targets, h, params))


# -- scalar options -----------------------------------------------------------------------------

LOSSFUN_OPTIONS = [
    ("activation-relu", dict(activation="relu"), "activation must be one of"),
    ("activation-None", dict(activation=None), "activation must be one of"),
    ("activation-upper", dict(activation="TANH"), "activation must be one of"),
    ("bptt-truncated", dict(bptt="truncated"), "bptt must be one of"),
    ("bptt-True", dict(bptt=True), "bptt must be one of"),
    ("clip-0", dict(clip=0), "clip must be > 0"),
    ("clip-negative", dict(clip=-5.0), "clip must be > 0"),
    ("clip-nan", dict(clip=float("nan")), "clip must be finite"),
    ("clip-inf", dict(clip=float("inf")), "clip must be finite"),
    ("clip-str", dict(clip="5"), "clip must be a real number"),
    ("clip-bool", dict(clip=True), "clip must be a real number"),
]


@pytest.mark.parametrize("cid,kw,match", LOSSFUN_OPTIONS, ids=[c[0] for c in LOSSFUN_OPTIONS])
def test_lossfun_bad_options(cid, kw, match):
    with pytest.raises(ValueError, match=match):
        charrnn.lossFun(*good_args(), **kw)


SAMPLE_CASES = [
    # (id, keyword changes, expected exception and message)
    ("seed_ix-negative", dict(seed_ix=-1), IndexError, "seed_ix = -1 is outside"),
    ("seed_ix-V", dict(seed_ix=V), IndexError, r"seed_ix = 5 is outside the vocabulary \[0, 5\)"),
    ("seed_ix-huge", dict(seed_ix=2**70), IndexError, "is outside"),
    ("seed_ix-float", dict(seed_ix=1.0), ValueError, "seed_ix must be an integer"),
    ("seed_ix-bool", dict(seed_ix=True), ValueError, "seed_ix must be an integer"),
    ("seed_ix-str", dict(seed_ix="a"), ValueError, "seed_ix must be an integer"),
    ("seed_ix-array", dict(seed_ix=np.array([1])), ValueError, "seed_ix must be an integer"),
    ("n-negative", dict(n=-1), ValueError, "n must be >= 0"),
    ("n-float", dict(n=10.0), ValueError, "n must be an integer"),
    ("n-bool", dict(n=True), ValueError, "n must be an integer"),
    ("n-str", dict(n="10"), ValueError, "n must be an integer"),
    ("n-None", dict(n=None), ValueError, "n must be an integer"),
    ("n-beyond-memory", dict(n=2**62), (ValueError, MemoryError), "(?i)too big|allocate|maximum"),
    ("temperature-0", dict(temperature=0), ValueError, "temperature must be > 0"),
    ("temperature-negative", dict(temperature=-1.0), ValueError, "temperature must be > 0"),
    ("temperature-nan", dict(temperature=float("nan")), ValueError, "must be finite"),
    ("temperature-inf", dict(temperature=float("inf")), ValueError, "must be finite"),
    ("temperature-str", dict(temperature="1"), ValueError, "must be a real number"),
    ("temperature-subnormal", dict(temperature=1e-320), ValueError, "temperature .* too small"),
    ("top_k-0", dict(top_k=0), ValueError, "top_k must be >= 1"),
    ("top_k-negative", dict(top_k=-2), ValueError, "top_k must be >= 1"),
    ("top_k-float", dict(top_k=2.0), ValueError, "top_k must be an integer"),
    ("rng-str", dict(rng="seed"), ValueError, "rng must be None, an int seed"),
    ("rng-negative", dict(rng=-1), ValueError, r"in \[0, 2\*\*32\)"),
    ("rng-2**32", dict(rng=2**32), ValueError, r"in \[0, 2\*\*32\)"),
    ("rng-float", dict(rng=1.5), ValueError, "rng must be None"),
    ("rng-Generator", dict(rng=np.random.default_rng(0)), ValueError, "rng must be None"),
    ("activation-bad", dict(activation="relu"), ValueError, "activation must be one of"),
]


def _sample_call(**changes):
    _, _, h, params = good_args()
    kw = dict(h=h, seed_ix=1, n=20, params=params, rng=3)
    kw.update(changes)
    return charrnn.sample(kw.pop("h"), kw.pop("seed_ix"), kw.pop("n"), kw.pop("params"),
                          kw.pop("rng"), **kw)


@pytest.mark.parametrize("cid,kw,exc,match", SAMPLE_CASES, ids=[c[0] for c in SAMPLE_CASES])
def test_sample_bad_arguments(cid, kw, exc, match):
    with pytest.raises(exc, match=match):
        _sample_call(**kw)


SAMPLE_DOCUMENTED = [
    ("n-0-is-empty", dict(n=0), lambda out: out == []),
    ("seed_ix-None-zero-input", dict(seed_ix=None), lambda out: len(out) == 20),
    ("seed_ix-numpy-int", dict(seed_ix=np.int64(1)), lambda out: out == _sample_call()),
    ("top_k-V-is-no-limit", dict(top_k=V), lambda out: out == _sample_call()),
    ("top_k-huge-is-no-limit", dict(top_k=2**70), lambda out: out == _sample_call()),
    ("top_k-1-is-greedy", dict(top_k=1), lambda out: out == _sample_call(greedy=True)),
    ("tiny-temperature-is-greedy", dict(temperature=1e-6),
     lambda out: out == _sample_call(greedy=True)),
    ("huge-temperature-is-uniform", dict(temperature=1e300, n=5000),
     lambda out: set(out) == set(range(V))),
    ("rng-RandomState", dict(rng=np.random.RandomState(3)), lambda out: out == _sample_call()),
]


@pytest.mark.parametrize("cid,kw,ok", SAMPLE_DOCUMENTED, ids=[c[0] for c in SAMPLE_DOCUMENTED])
def test_sample_edge_values_with_documented_results(cid, kw, ok):
    out = _sample_call(**kw)
    assert all(0 <= i < V for i in out)
    assert ok(out)


def test_sample_refuses_weights_whose_logits_overflow():
    _, _, h, params = good_args()
    params = list(params)
    params[2] = np.full((V, H), 1e308)  # finite, but Why @ h overflows
    with pytest.raises(ValueError, match="overflow"):
        charrnn.sample(h, 0, 5, tuple(params), 0)


INIT_CASES = [
    ("H-0", (0, 5), "hidden_size must be >= 1"),
    ("V-0", (5, 0), "vocab_size must be >= 1"),
    ("H-negative", (-3, 5), "hidden_size must be >= 1"),
    ("H-float", (2.0, 5), "hidden_size must be an integer"),
    ("V-str", (2, "5"), "vocab_size must be an integer"),
    ("H-None", (None, 5), "hidden_size must be an integer"),
    ("H-bool", (True, 5), "hidden_size must be an integer"),
    ("dtype-float16", (2, 5, None, "float16"), "dtype must be 'float64' or 'float32'"),
    ("dtype-int", (2, 5, None, int), "dtype must be 'float64' or 'float32'"),
    ("dtype-garbage", (2, 5, None, "fp64"), "dtype must be 'float64' or 'float32'"),
    ("rng-str", (2, 5, "0"), "rng must be None"),
]


@pytest.mark.parametrize("cid,args,match", INIT_CASES, ids=[c[0] for c in INIT_CASES])
def test_init_params_bad_arguments(cid, args, match):
    with pytest.raises(ValueError, match=match):
        charrnn.init_params(*args)


def test_init_params_far_too_big_is_a_clear_error():
    with pytest.raises((MemoryError, ValueError), match="(?i)too big|allocate"):
        charrnn.init_params(10**10, 10**10, rng=0)


# -- train, CharRNN and its methods ------------------------------------------------------------

TRAIN_CASES = [
    ("text-empty", "", {}, "text is empty"),
    ("text-one-char", "a", {}, r"text has 1 characters; training needs at least"),
    ("text-shorter-than-seq_length+1", "abcde", dict(seq_length=5), "at least seq_length"),
    ("text-bytes", b"hello world", {}, "text must be a str"),
    ("text-None", None, {}, "text must be a str"),
    ("text-int", 42, {}, "text must be a str"),
    ("text-list-of-chars", list("hello world"), {}, "text must be a str"),
    ("encoded-int64", (np.arange(40) % 3, ["a", "b", "c"]), {}, "dtype uint8, uint16"),
    ("encoded-out-of-vocab", (np.arange(40, dtype=np.uint8), ["a", "b"]), {},
     r"indices\[2\] = 2 is outside"),
    ("encoded-2d", (np.zeros((2, 30), np.uint8), ["a"]), {}, "one-dimensional"),
    ("encoded-strided", (np.zeros(80, np.uint8)[::2], ["a"]), {}, "C-contiguous"),
    ("encoded-too-short", (np.zeros(3, np.uint8), ["a"]), {}, "at least seq_length"),
    ("encoded-chars-repeated", (np.zeros(40, np.uint8), ["a", "a"]), {}, "repeated"),
    ("encoded-chars-multichar", (np.zeros(40, np.uint8), ["ab"]), {}, "single characters"),
    ("encoded-triple", (np.zeros(40, np.uint8), ["a"], 1), {}, "encoded text"),
    ("hidden_size-0", TEXT, dict(hidden_size=0), "hidden_size must be >= 1"),
    ("hidden_size-negative", TEXT, dict(hidden_size=-5), "hidden_size must be >= 1"),
    ("hidden_size-float", TEXT, dict(hidden_size=8.0), "hidden_size must be an integer"),
    ("seq_length-0", TEXT, dict(seq_length=0), "seq_length must be >= 1"),
    ("seq_length-huge", TEXT, dict(seq_length=10**12), "at least seq_length"),
    ("learning_rate-0", TEXT, dict(learning_rate=0), "learning_rate must be > 0"),
    ("learning_rate-negative", TEXT, dict(learning_rate=-0.1), "learning_rate must be > 0"),
    ("learning_rate-nan", TEXT, dict(learning_rate=float("nan")), "must be finite"),
    ("learning_rate-str", TEXT, dict(learning_rate="0.1"), "must be a real number"),
    ("num_iterations-negative", TEXT, dict(num_iterations=-1), "num_iterations must be >= 0"),
    ("num_iterations-float", TEXT, dict(num_iterations=10.0), "must be an integer"),
    ("num_iterations-bool", TEXT, dict(num_iterations=True), "must be an integer"),
    ("epochs-negative", TEXT, dict(epochs=-1), "epochs must be >= 0"),
    ("both-iterations-and-epochs", TEXT, dict(num_iterations=5, epochs=1), "exactly one"),
    ("report_every-0", TEXT, dict(report_every=0), "report_every must be >= 1"),
    ("callback-not-callable", TEXT, dict(callback="print"), "callback must be callable"),
    ("seed-negative", TEXT, dict(seed=-1), "seed must be >= 0"),
    ("seed-2**32", TEXT, dict(seed=2**32), "(?i)seed"),
    ("clip-0", TEXT, dict(clip=0), "clip must be > 0"),
    ("clip-negative", TEXT, dict(clip=-1), "clip must be > 0"),
    ("optimizer-bad", TEXT, dict(optimizer="lbfgs"), "optimizer must be one of"),
    ("optimizer-None", TEXT, dict(optimizer=None), "optimizer must be one of"),
    ("activation-bad", TEXT, dict(activation="relu"), "activation must be one of"),
    ("bptt-bad", TEXT, dict(bptt="some"), "bptt must be one of"),
    ("dtype-float16", TEXT, dict(dtype="float16"), "dtype must be"),
    ("beta1-1", TEXT, dict(optimizer="adam", beta1=1.0), "beta1 must be < 1"),
    ("beta2-negative", TEXT, dict(optimizer="adam", beta2=-0.1), "beta2 must be >= 0"),
    ("decay_rate-1", TEXT, dict(optimizer="rmsprop", decay_rate=1), "decay_rate must be < 1"),
    ("eps-0", TEXT, dict(eps=0), "eps must be > 0"),
    ("unknown-option", TEXT, dict(momentum=0.9), "momentum"),
]


@pytest.mark.parametrize("cid,text,kw,match", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_train_bad_arguments(cid, text, kw, match):
    kw = dict(dict(hidden_size=4, num_iterations=3), **kw)
    if "epochs" in kw and kw.get("num_iterations") == 3:
        del kw["num_iterations"]
    expected = TypeError if cid == "unknown-option" else ValueError
    with pytest.raises(expected, match=match):
        charrnn.train(text, **kw)


TRAIN_DOCUMENTED = [
    # the smallest texts that train, one-character vocabularies, zero iterations
    ("text-exactly-seq_length+1", "abcdef", dict(seq_length=5), 3),
    ("one-character-vocabulary", "aaaaaaaaaaaa", dict(seq_length=3), 5),
    ("two-characters-seq_length-1", "ab", dict(seq_length=1), 4),
    ("zero-iterations", TEXT, dict(), 0),
    ("zero-epochs", TEXT, dict(epochs=0), 0),
    ("subnormal-learning-rate", TEXT, dict(learning_rate=5e-324), 3),
    ("vocabulary-beyond-the-bmp", "𝄞🎵a" * 20, dict(seq_length=4), 3),
    ("lone-surrogates", "\ud800\udfff" * 20, dict(seq_length=4), 3),
]


@pytest.mark.parametrize("cid,text,kw,n", TRAIN_DOCUMENTED, ids=[c[0] for c in TRAIN_DOCUMENTED])
def test_train_edge_values_with_documented_results(cid, text, kw, n):
    if "epochs" not in kw:
        kw = dict(kw, num_iterations=n)
    model = charrnn.train(text, hidden_size=4, **kw)
    assert model.iteration == n
    assert np.isfinite(model._flat).all()
    if model.vocab_size == 1:
        assert np.all(model.history.loss == 0) and model.sample(4) == text[0] * 4
    assert len(model.sample(5)) == 5 and set(model.sample(20)) <= set(text)


@pytest.fixture(scope="module")
def model():
    return charrnn.train(TEXT, hidden_size=8, seq_length=10, num_iterations=50)


MODEL_CASES = [
    ("sample-n-negative", lambda m: m.sample(-1), ValueError, "n must be >= 0"),
    ("sample-n-float", lambda m: m.sample(2.5), ValueError, "n must be an integer"),
    ("sample-prime-unknown-chars", lambda m: m.sample(5, prime="xyz\x00"), ValueError,
     "not in the vocabulary"),
    ("sample-prime-bytes", lambda m: m.sample(5, prime=b"And"), ValueError,
     "prime must be a str"),
    ("sample-prime-int", lambda m: m.sample(5, prime=3), ValueError, "prime must be a str"),
    ("sample-temperature-0", lambda m: m.sample(5, temperature=0), ValueError, "> 0"),
    ("sample-top_k-0", lambda m: m.sample(5, top_k=0), ValueError, "top_k must be >= 1"),
    ("sample-seed-negative", lambda m: m.sample(5, seed=-1), ValueError, "seed"),
    ("sample-seed-str", lambda m: m.sample(5, seed="a"), ValueError, "seed must be None"),
    ("generate-n-negative", lambda m: list(m.generate(-1)), ValueError, "n must be >= 0"),
    ("generate-chunk-0", lambda m: list(m.generate(5, chunk=0)), ValueError, "chunk"),
    ("evaluate-empty", lambda m: m.evaluate(""), ValueError, "at least two characters"),
    ("evaluate-one-char", lambda m: m.evaluate("A"), ValueError, "at least two characters"),
    ("evaluate-unknown-chars", lambda m: m.evaluate("A\x00B"), ValueError,
     "not in the vocabulary"),
    ("evaluate-bytes", lambda m: m.evaluate(b"And"), ValueError, "text must be a str"),
    ("set_text-too-short", lambda m: m.set_text("And"), ValueError, "at least seq_length"),
    ("set_text-unknown-chars", lambda m: m.set_text("\x00" * 40), ValueError,
     "not in the vocabulary"),
    ("set_data-list", lambda m: m.set_data([0, 1, 2] * 10), ValueError, "numpy array"),
    ("set_data-int64", lambda m: m.set_data(np.zeros(40, np.int64)), ValueError, "dtype"),
    ("set_data-float", lambda m: m.set_data(np.zeros(40)), ValueError, "dtype"),
    ("set_data-out-of-vocab", lambda m: m.set_data(np.full(40, 255, np.uint8)), ValueError,
     r"indices\[0\] = 255 is outside"),
    ("set_data-strided", lambda m: m.set_data(np.zeros(100, np.uint8)[::2]), ValueError,
     "C-contiguous"),
    ("fit-no-arguments", lambda m: m.fit(), ValueError, "exactly one"),
    ("fit-other-schedule", lambda m: m.fit(epochs=1), ValueError, "trained by iterations"),
    ("fit-bad-schedule", lambda m: m.fit(3, schedule="minutes"), ValueError, "schedule must"),
    ("save-to-missing-folder", lambda m: m.save("/nonexistent/dir/m.npz"), OSError,
     "cannot save checkpoint"),
    ("save-to-a-directory", lambda m: m.save("/"), OSError, "cannot save checkpoint"),
    ("save-path-None", lambda m: m.save(None), TypeError, "(?i)path"),
]


@pytest.mark.parametrize("cid,use,exc,match", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_model_methods_bad_arguments(model, cid, use, exc, match):
    before = model._flat.copy()
    with pytest.raises(exc, match=match):
        use(model)
    assert np.array_equal(model._flat, before), "a refused call changed the model"


def test_fit_without_text_and_charrnn_bad_vocabularies():
    with pytest.raises(ValueError, match="no training text"):
        charrnn.CharRNN(list("ab"), 4).fit(1)
    for chars, match in (([], "empty"), (["a", "a"], "repeated"), (["ab"], "single"),
                         ([1, 2], "single"), ([b"a"], "single"), ("", "empty")):
        with pytest.raises(ValueError, match=match):
            charrnn.CharRNN(chars, 4)


# -- data functions ------------------------------------------------------------------------------

def test_encode_and_decode_bad_arguments():
    data = charrnn.data
    with pytest.raises(ValueError, match="chars is empty"):
        data.encode("abc", [])
    with pytest.raises(ValueError, match="single characters"):
        data.encode("abc", ["ab", "c"])
    with pytest.raises(ValueError, match="text must be a str"):
        data.encode(b"abc", ["a"])
    with pytest.raises(ValueError, match="not in the vocabulary: 'z'"):
        data.encode("abz", ["a", "b"])
    assert data.encode("", ["a"]).size == 0
    with pytest.raises(IndexError, match="outside the vocabulary"):
        data.decode([0, -1], ["a", "b"])
    with pytest.raises(IndexError, match="outside the vocabulary"):
        data.decode([0, 2], ["a", "b"])
    assert data.decode(np.array([1, 0], np.uint8), ["a", "b"]) == "ba"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "good.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin1.txt").write_bytes("café au lait\n".encode("latin-1") * 5)
    (tmp_path / "truncated-utf8.txt").write_bytes("naïve".encode("utf-8")[:3])
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "one.txt").write_text("x", encoding="utf-8")
    (tmp_path / "dir").mkdir()
    return tmp_path


FILE_CASES = [
    ("missing", "missing.txt", FileNotFoundError, "missing.txt"),
    ("directory", "dir", IsADirectoryError, "dir"),
    ("empty", "empty.txt", ValueError, "is empty"),
    ("latin-1-as-utf8", "latin1.txt", ValueError, "not valid utf-8: .* at byte offset 3"),
    ("truncated-utf8", "truncated-utf8.txt", ValueError, "not valid utf-8.*byte offset 2"),
    ("binary", "binary.bin", ValueError, "not valid utf-8.*byte offset 128"),
]


@pytest.mark.parametrize("func", ["scan_vocabulary", "encode_file"])
@pytest.mark.parametrize("cid,name,exc,match", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_file_functions_bad_files(files, func, cid, name, exc, match):
    with pytest.raises(exc, match=match):
        getattr(charrnn.data, func)(files / name)


@pytest.mark.parametrize("cid,kw,match", [
    ("chars-missing-some", dict(chars=["a"]), "not in the vocabulary"),
    ("chars-empty", dict(chars=[]), "non-empty sequence of single characters"),
    ("chars-multichar", dict(chars=["ab"]), "single characters"),
    ("out-wrong-length", dict(out=np.zeros(3, np.uint8)), "must have shape"),
    ("out-signed", dict(out=np.zeros(len(TEXT), np.int64)), "unsigned dtype"),
    ("out-read-only", dict(out=_readonly(np.zeros(len(TEXT), np.uint8))), "writeable"),
    ("out-strided", dict(out=np.zeros(2 * len(TEXT), np.uint8)[::2]), "C-contiguous"),
    ("out-list", dict(out=[0] * len(TEXT)), "out must be None, a path or a numpy array"),
    ("chunk_bytes-0", dict(chunk_bytes=0), "chunk_bytes must be >= 1"),
    ("encoding-unknown", dict(encoding="no-such-codec"), "no-such-codec"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_encode_file_bad_arguments(files, cid, kw, match):
    with pytest.raises((ValueError, LookupError), match=match):
        charrnn.data.encode_file(files / "good.txt", **kw)


def test_one_character_file_encodes(files):
    enc = charrnn.data.encode_file(files / "one.txt")
    assert enc.chars == ["x"] and enc.indices.tolist() == [0]
    with pytest.raises(ValueError, match="at least seq_length"):
        charrnn.train(enc)


# -- checkpoints -----------------------------------------------------------------------------

@pytest.fixture
def ckpt(tmp_path):
    model = charrnn.train(TEXT, hidden_size=8, seq_length=10, num_iterations=40, seed=2)
    path = tmp_path / "m.npz"
    model.save(path)
    return model, path


def entries(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write_entries(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def with_changes(path, drop=(), **changes):
    e = entries(path)
    for k in drop:
        del e[k]
    e.update(changes)
    write_entries(path, **e)


def config_change(path, **changes):
    e = entries(path)
    config = json.loads(str(e["config"][()]))
    config.update(changes)
    e["config"] = np.array(json.dumps(config))
    write_entries(path, **e)


class Boom:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _huge_header(path):
    """Replace params.npy by a header that declares 2**40 float64 and holds 16 bytes."""
    e = entries(path)
    del e["params"]
    write_entries(path, **e)
    header = {"descr": "<f8", "fortran_order": False, "shape": (2**40,)}
    import io
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("params.npy", buf.getvalue() + b"\x00" * 16)


def _second_chars(path):
    e = entries(path)
    chars = e["chars"]
    e["chars"] = np.append(chars, np.uint32(ord("\x01")))  # one more character, same params
    write_entries(path, **e)


CKPT_CASES = [
    # (id, how to spoil the file, message)
    ("zero-bytes", lambda p: p.write_bytes(b""), "empty"),
    ("truncated-4-bytes", lambda p: p.write_bytes(p.read_bytes()[:4]), "truncated or corrupted"),
    ("truncated-100-bytes", lambda p: p.write_bytes(p.read_bytes()[:100]),
     "truncated or corrupted"),
    ("truncated-half", lambda p: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2]),
     "truncated or corrupted"),
    ("truncated-last-byte", lambda p: p.write_bytes(p.read_bytes()[:-1]),
     "truncated or corrupted"),
    ("text-file", lambda p: p.write_text("hello"), "not a charrnn checkpoint"),
    ("random-bytes", lambda p: p.write_bytes(np.random.RandomState(0).bytes(5000)),
     "not a charrnn checkpoint"),
    ("zip-of-text", lambda p: zipfile.ZipFile(p, "w").close() or _zip_text(p),
     "not a charrnn checkpoint|truncated or corrupted"),
    ("other-npz", lambda p: write_entries(p, x=np.arange(3)), "not a charrnn checkpoint"),
    ("future-version", lambda p: with_changes(p, format_version=np.array(3, np.int64)),
     "format version 3 is newer"),
    ("version-0", lambda p: with_changes(p, format_version=np.array(0, np.int64)),
     "invalid checkpoint format version 0"),
    ("version-as-text", lambda p: with_changes(p, format_version=np.array("1")),
     "format_version"),
    ("missing-params", lambda p: with_changes(p, drop=["params"]), "no 'params' entry"),
    ("params-for-a-bigger-vocabulary", _second_chars, "entry 'params'"),
    ("params-too-long", lambda p: with_changes(p, params=np.zeros(10**5)), "entry 'params'"),
    ("params-2d", lambda p: with_changes(p, params=np.zeros((2, 3))), "entry 'params'"),
    ("params-int", lambda p: with_changes(p, params=entries(p)["params"].astype(np.int64)),
     "entry 'params'"),
    ("params-float32", lambda p: with_changes(p, params=entries(p)["params"].astype(np.float32)),
     "but the model is float64"),
    ("params-nan", lambda p: with_changes(p, params=entries(p)["params"] * np.nan), "NaN"),
    ("hprev-inf", lambda p: with_changes(p, hprev=entries(p)["hprev"] + np.inf), "NaN or inf"),
    ("m1-wrong-size", lambda p: with_changes(p, m1=np.zeros(3)), "entry 'm1'"),
    ("hidden_size-disagrees", lambda p: config_change(p, hidden_size=9), "entry 'params'"),
    ("hidden_size-huge", lambda p: config_change(p, hidden_size=10**6), "hidden_size|params"),
    ("hidden_size-negative", lambda p: config_change(p, hidden_size=-8), "hidden_size"),
    ("hidden_size-text", lambda p: config_change(p, hidden_size="8"), "hidden_size"),
    ("learning_rate-negative", lambda p: config_change(p, learning_rate=-1), "learning_rate"),
    ("activation-unknown", lambda p: config_change(p, activation="relu"), "activation"),
    ("dtype-unknown", lambda p: config_change(p, dtype="float16"), "dtype"),
    ("schedule-unknown", lambda p: config_change(p, schedule="minutes"), "schedule"),
    ("pointer-negative", lambda p: config_change(p, pointer=-1), "pointer"),
    ("iteration-float", lambda p: config_change(p, iteration=1.5), "iteration"),
    ("config-missing-key", lambda p: with_changes(p, config=np.array('{"seed": 0}')),
     "config lacks"),
    ("config-not-json", lambda p: with_changes(p, config=np.array("{oops")), "not valid JSON"),
    ("config-a-list", lambda p: with_changes(p, config=np.array("[1, 2]")), "JSON object"),
    ("meta-not-json", lambda p: with_changes(p, meta=np.array("nope")), "not valid JSON"),
    ("chars-empty", lambda p: with_changes(p, chars=np.array([], np.uint32)), "vocabulary"),
    ("chars-beyond-unicode", lambda p: with_changes(
        p, chars=np.append(entries(p)["chars"][:-1], np.uint32(0x110000))), "code points"),
    ("chars-repeated", lambda p: with_changes(
        p, chars=np.append(entries(p)["chars"][:-1], entries(p)["chars"][0])), "repeated"),
    ("chars-signed", lambda p: with_changes(p, chars=entries(p)["chars"].astype(np.int64)),
     "entry 'chars'"),
    ("rng-keys-short", lambda p: with_changes(p, rng_keys=np.zeros(3, np.uint32)), "rng_keys"),
    ("rng-pos-out-of-range", lambda p: with_changes(p, rng_pos=np.array(625)), "rng_pos"),
    ("history-lengths-differ", lambda p: with_changes(p, history_loss=np.zeros(2)),
     "different lengths"),
    ("pickled-params", lambda p: with_changes(
        p, params=np.array([Boom(p.parent / "pwned")], dtype=object)), "pickled"),
    ("pickled-config", lambda p: with_changes(
        p, config=np.array([Boom(p.parent / "pwned")], dtype=object)), "pickled"),
    ("pickled-extra-entry", lambda p: with_changes(
        p, extra=np.array([Boom(p.parent / "pwned")], dtype=object)), "pickled"),
    ("huge-declared-shape", _huge_header, "params"),
]


def _zip_text(p):
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("readme.txt", "not numpy")


@pytest.mark.parametrize("cid,spoil,match", CKPT_CASES, ids=[c[0] for c in CKPT_CASES])
def test_load_bad_checkpoints(ckpt, cid, spoil, match):
    _, path = ckpt
    spoil(path)
    with pytest.raises(CheckpointError, match=match):
        charrnn.load(path)
    assert not (path.parent / "pwned").exists(), "a pickled object was unpickled"


def test_load_paths_that_are_not_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        charrnn.load(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError):
        charrnn.load(tmp_path)
    with pytest.raises(TypeError):
        charrnn.load(None)


def test_every_single_byte_flip_is_caught_or_harmless(ckpt):
    """Flip one byte at 300 places: the load fails cleanly or gives the saved model."""
    model, path = ckpt
    data = path.read_bytes()
    rng = np.random.RandomState(0)
    places = np.unique(np.concatenate([rng.randint(0, len(data), 260), np.arange(20),
                                       np.arange(len(data) - 22, len(data))]))
    loaded = caught = 0
    for k in places:
        spoiled = bytearray(data)
        spoiled[k] ^= 0x5A
        path.write_bytes(bytes(spoiled))
        try:
            again = charrnn.load(path)
        except CheckpointError:
            caught += 1
            continue
        loaded += 1
        assert np.array_equal(again._flat, model._flat), f"byte {k}: different parameters"
        assert again.chars == model.chars and again.iteration == model.iteration, f"byte {k}"
        assert np.array_equal(again._m1, model._m1) and again.pointer == model.pointer
    assert caught > 0


def test_every_truncation_is_caught(ckpt):
    _, path = ckpt
    data = path.read_bytes()
    for cut in list(range(0, 64)) + list(range(64, len(data), max(1, len(data) // 150))):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError):
            charrnn.load(path)


# -- the command line -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "poem.txt").write_text(TEXT, encoding="utf-8")
    (d / "latin1.txt").write_bytes("café au lait\n".encode("latin-1") * 20)
    (d / "empty.txt").write_bytes(b"")
    (d / "one.txt").write_text("x", encoding="utf-8")
    (d / "short.txt").write_text("abcdef", encoding="utf-8")
    (d / "digits.txt").write_text("0123456789" * 10, encoding="utf-8")
    (d / "dir").mkdir()
    (d / "notckpt.npz").write_text("hello")
    (d / "zero.npz").write_bytes(b"")
    model = charrnn.train(TEXT, hidden_size=8, seq_length=10, num_iterations=20)
    model.save(d / "good.npz")
    data = (d / "good.npz").read_bytes()
    (d / "truncated.npz").write_bytes(data[: len(data) // 2])
    (d / "future.npz").write_bytes(data)
    with_changes(d / "future.npz", format_version=np.array(9, np.int64))
    (d / "pickled.npz").write_bytes(data)
    with_changes(d / "pickled.npz", params=np.array([Boom(d / "pwned")], dtype=object))
    return d


T0 = ["train", "--hidden-size", "4", "--iterations", "3", "--quiet"]
CLI_CASES = [
    # (id, argv with {d} for the folder, part of the one error line)
    ("train-missing-file", T0 + ["{d}/missing.txt"], "no such file"),
    ("train-directory", T0 + ["{d}/dir"], "is a directory"),
    ("train-non-utf8", T0 + ["{d}/latin1.txt"], "not valid utf-8: byte 0xe9 at byte offset 3"),
    ("train-unknown-encoding", T0 + ["{d}/poem.txt", "--encoding", "klingon"],
     "unknown encoding"),
    ("train-empty-file", T0 + ["{d}/empty.txt"], "the text is empty"),
    ("train-one-character", T0 + ["{d}/one.txt"], "text has 1 characters"),
    ("train-shorter-than-seq-length", T0 + ["{d}/short.txt", "--seq-length", "10"],
     "at least seq_length"),
    ("train-everything-stripped", T0 + ["{d}/digits.txt", "--strip-digits"],
     "the text is empty"),
    ("train-beta1-1", T0 + ["{d}/poem.txt", "--optimizer", "adam", "--beta1", "1"],
     "beta1 must be < 1"),
    ("train-beta2-nan", T0 + ["{d}/poem.txt", "--beta2", "nan"], "beta2 must be finite"),
    ("train-checkpoint-missing-folder", T0 + ["{d}/poem.txt", "--checkpoint", "{d}/no/c.npz"],
     "does not exist"),
    ("train-checkpoint-is-a-directory", T0 + ["{d}/poem.txt", "--checkpoint", "{d}/dir"],
     "is a directory"),
    ("train-resume-missing", T0 + ["--resume", "{d}/missing.npz"], "no such checkpoint"),
    ("train-resume-directory", T0 + ["--resume", "{d}/dir"], "is a directory"),
    ("train-resume-not-a-checkpoint", T0 + ["--resume", "{d}/notckpt.npz"],
     "not a charrnn checkpoint"),
    ("train-resume-zero-bytes", T0 + ["--resume", "{d}/zero.npz"], "empty"),
    ("train-resume-truncated", T0 + ["--resume", "{d}/truncated.npz"], "truncated"),
    ("train-resume-future", T0 + ["--resume", "{d}/future.npz"], "newer"),
    ("train-resume-pickled", T0 + ["--resume", "{d}/pickled.npz"], "pickled"),
    ("train-keep-best-without-checkpoint", T0 + ["{d}/poem.txt", "--keep-best"],
     "--keep-best needs --checkpoint"),
    ("train-val-frac-too-small", T0 + ["{d}/poem.txt", "--val-frac", "0.0001"],
     "validation needs at least 2"),
    ("sample-missing", ["sample", "{d}/missing.npz"], "no such checkpoint"),
    ("sample-directory", ["sample", "{d}/dir"], "is a directory"),
    ("sample-text-file", ["sample", "{d}/poem.txt"], "not a charrnn checkpoint"),
    ("sample-zero-bytes", ["sample", "{d}/zero.npz"], "empty"),
    ("sample-truncated", ["sample", "{d}/truncated.npz"], "truncated"),
    ("sample-future", ["sample", "{d}/future.npz"], "newer"),
    ("sample-pickled", ["sample", "{d}/pickled.npz"], "pickled"),
    ("sample-prime-unknown", ["sample", "{d}/good.npz", "--prime", "\x01zz"],
     "not in the model's vocabulary"),
    ("sample-seed-too-big", ["sample", "{d}/good.npz", "--seed", str(2**32)], "--seed"),
    ("eval-missing-text", ["eval", "{d}/good.npz", "{d}/missing.txt"], "no such file"),
    ("eval-non-utf8", ["eval", "{d}/good.npz", "{d}/latin1.txt"], "not valid utf-8"),
    ("eval-one-character", ["eval", "{d}/good.npz", "{d}/one.txt"],
     "not in the vocabulary|at least two"),
    ("eval-text-directory", ["eval", "{d}/good.npz", "{d}/dir"], "is a directory"),
    ("eval-bad-checkpoint", ["eval", "{d}/truncated.npz", "{d}/poem.txt"], "truncated"),
    ("plot-bad-checkpoint", ["plot", "{d}/zero.npz"], "empty"),
]


def _argv(argv, d):
    return [a.replace("{d}", str(d)) for a in argv]


@pytest.mark.parametrize("cid,argv,message", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_errors_are_one_line(cli_files, capsys, cid, argv, message):
    status = cli.main(_argv(argv, cli_files))
    out, err = capsys.readouterr()
    assert status == 2, (status, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("charrnn: error: "), err
    assert __import__("re").search(message, lines[0]), lines[0]
    assert "Traceback" not in err
    assert not (cli_files / "pwned").exists()


ARGPARSE_CASES = [
    ("hidden-size-0", ["train", "--hidden-size", "0"], "must be >= 1"),
    ("hidden-size-negative", ["train", "--hidden-size", "-3"], "must be >= 1|expected one"),
    ("hidden-size-text", ["train", "--hidden-size", "ten"], "expected an integer"),
    ("seq-length-0", ["train", "--seq-length", "0"], "must be >= 1"),
    ("learning-rate-0", ["train", "--learning-rate", "0"], "finite number > 0"),
    ("learning-rate-negative", ["train", "--learning-rate", "-1"], "finite number > 0|expected"),
    ("learning-rate-nan", ["train", "--learning-rate", "nan"], "finite number > 0"),
    ("learning-rate-inf", ["train", "--learning-rate", "inf"], "finite number > 0"),
    ("iterations-negative", ["train", "--iterations", "-5"], "must be >= 0|expected"),
    ("iterations-float", ["train", "--iterations", "1.5"], "expected an integer"),
    ("val-frac-1", ["train", "--val-frac", "1"], r"must be in \[0, 1\)"),
    ("checkpoint-every-0", ["train", "--checkpoint-every", "0"], "must be >= 1"),
    ("optimizer-unknown", ["train", "--optimizer", "lbfgs"], "invalid choice"),
    ("dtype-unknown", ["train", "--dtype", "float16"], "invalid choice"),
    ("temperature-0", ["sample", "x.npz", "--temperature", "0"], "finite number > 0"),
    ("temperature-negative", ["sample", "x.npz", "-t", "-1"], "finite number > 0|expected"),
    ("top-k-0", ["sample", "x.npz", "--top-k", "0"], "must be >= 1"),
    ("length-negative", ["sample", "x.npz", "--length", "-1"], "must be >= 0|expected"),
    ("seed-negative", ["sample", "x.npz", "--seed", "-1"], "must be >= 0|expected"),
    ("no-command", [], "required"),
    ("unknown-command", ["fly"], "invalid choice"),
]


@pytest.mark.parametrize("cid,argv,message", ARGPARSE_CASES, ids=[c[0] for c in ARGPARSE_CASES])
def test_cli_usage_errors(capsys, cid, argv, message):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert __import__("re").search(message, err), err


def test_cli_sample_length_0_prints_nothing(cli_files, capfd):
    assert cli.main(["sample", str(cli_files / "good.npz"), "--length", "0"]) == 0
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_cli_train_on_a_one_character_vocabulary(cli_files, capfd, tmp_path):
    (tmp_path / "a.txt").write_text("a" * 50, encoding="utf-8")
    assert cli.main(["train", str(tmp_path / "a.txt"), "--hidden-size", "4", "--seq-length",
                     "5", "--iterations", "10", "--sample-length", "7"]) == 0
    out = capfd.readouterr().out
    assert "\naaaaaaa\n" in out


# -- hypothesis: lossFun and sample against the reference ----------------------------------------

DTYPES = [np.float64, np.float32, np.int64, np.float16, object]
LAYOUTS = ["C", "F", "strided", "readonly", "flat", "transposed", "list"]


GOOD_LAYOUTS = ["C", "C", "C", "F", "strided", "readonly"]
BAD_LAYOUTS = ["flat", "transposed", "list"]


@st.composite
def arrays(draw, base, dtype, spoil):
    """One argument array in ``dtype``, in a layout that must not matter; if ``spoil``,
    also of another dtype, a wrong shape or container, or with a NaN or inf."""
    a = base.copy()
    layout = draw(st.sampled_from(GOOD_LAYOUTS))
    if spoil:
        how = draw(st.sampled_from(["dtype", "layout", "nonfinite"]))
        if how == "dtype":
            dtype = draw(st.sampled_from([d for d in DTYPES if d is not dtype]))
        elif how == "layout":
            layout = draw(st.sampled_from(BAD_LAYOUTS))
        else:
            a.flat[draw(st.integers(0, a.size - 1))] = draw(
                st.sampled_from([np.nan, np.inf, -np.inf]))
    with np.errstate(invalid="ignore", over="ignore"):  # NaN to int: any value will do
        a = a.astype(dtype)
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "strided":
        a = _strided(a)
    elif layout == "readonly":
        a = _readonly(a)
    elif layout == "flat":
        a = a.ravel()
    elif layout == "transposed":
        a = a.T
    elif layout == "list":
        a = a.tolist()
    return a


def _valid_array(a, shape, dtype):
    return (isinstance(a, np.ndarray) and a.shape == shape and a.dtype == dtype
            and np.isfinite(a).all())


@st.composite
def problems(draw):
    """Arguments of lossFun/sample: sizes, arrays and indices; about half of the
    examples are valid, the others have one or two things wrong."""
    Hh = draw(st.integers(1, 7))
    Vv = draw(st.integers(1, 7))
    n = draw(st.integers(1, 9))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([0.01, 0.1, 0.5, 1.0]))
    rng = np.random.RandomState(seed)
    base = random_params(rng, Hh, Vv, scale, rho=draw(st.sampled_from([0.3, 0.9])))
    h0 = rng.uniform(-0.9, 0.9, (Hh, 1))
    shapes = [(Hh, Vv), (Hh, Hh), (Vv, Hh), (Hh, 1), (Vv, 1), (Hh, 1)]
    dtype = draw(st.sampled_from([np.float64, np.float64, np.float64, np.float32]))
    spoiled = draw(st.sets(st.sampled_from(["array", "array", "indices", "length"]),
                           max_size=2)) if draw(st.booleans()) else set()
    bad = draw(st.integers(0, 5)) if "array" in spoiled else -1
    args = [draw(arrays(b, dtype, k == bad)) for k, b in enumerate(base + (h0,))]
    good_index = st.integers(0, Vv - 1)
    index = st.one_of(good_index, st.integers(-3, Vv + 3),
                      st.sampled_from([2**31, 2**63 - 1, -2**31, -2**63])) \
        if "indices" in spoiled else good_index
    inputs = draw(st.lists(index, min_size=n, max_size=n))
    targets = draw(st.lists(index, min_size=n, max_size=n))
    if "length" in spoiled:
        targets = draw(st.lists(good_index, max_size=10))
    if draw(st.integers(0, 3)) == 0:  # an index array instead of a list
        fits = ["int64"] + (["uint64"] if min(inputs) >= 0 else []) \
            + (["int32"] if all(-2**31 <= i < 2**31 for i in inputs) else [])
        inputs = np.array(inputs, dtype=draw(st.sampled_from(fits)))
    return Hh, Vv, base, h0, shapes, args, inputs, targets, scale


def _arrays_valid(Hh, Vv, shapes, args):
    dt = args[0].dtype if isinstance(args[0], np.ndarray) else None
    if dt not in (np.float64, np.float32):
        return None
    if all(_valid_array(a, s, dt) for a, s in zip(args, shapes)):
        return dt
    return None


@given(problems(), st.sampled_from(["tanh"] * 6 + ["sigmoid"] * 3 + ["relu"]),
       st.sampled_from(["full"] * 6 + ["none"] * 3 + ["partial"]),
       st.sampled_from([5.0] * 6 + [None, None, 0.5, 0.0, -1.0, float("nan")]))
def test_fuzz_lossfun(problem, activation, bptt, clip):
    Hh, Vv, base, h0, shapes, args, inputs, targets, scale = problem
    dt = _arrays_valid(Hh, Vv, shapes, args)
    valid = (dt is not None and activation in ("tanh", "sigmoid") and bptt in ("full", "none")
             and (clip is None or clip > 0) and len(inputs) >= 1
             and len(inputs) == len(targets)
             and all(0 <= i < Vv for i in list(inputs) + list(targets)))
    call = lambda: charrnn.lossFun(inputs, targets, args[5], tuple(args[:5]),  # noqa: E731
                                   activation=activation, bptt=bptt, clip=clip)
    event("valid: compared with the reference" if valid else "invalid: refused")
    if not valid:
        with pytest.raises((ValueError, IndexError)):
            call()
        return
    got = call()
    assert got[1].dtype == dt and got[-1].shape == (Hh, 1)
    ref = reference.lossFun(inputs, targets, np.asarray(args[5], np.float64),
                            tuple(np.asarray(a, np.float64) for a in args[:5]),
                            activation=activation, bptt=bptt, clip=clip)
    rtol = 1e-10 if dt == np.float64 else 2e-3
    for g, w, name in zip(got, ref, ("loss",) + NAMES):
        assert_close(g, w, rtol, name)


@given(problems(), st.one_of(st.none(), st.integers(0, 6), st.integers(0, 6),
                             st.integers(-2, 9), st.sampled_from([2**40, 1.0])),
       st.one_of(st.integers(0, 40), st.integers(0, 40), st.integers(-1, 40),
                 st.sampled_from([1.5, None])),
       st.sampled_from([1.0] * 6 + [0.5, 2.0, 1e-3, 0.0, -1.0, float("nan"), 1e-320]),
       st.sampled_from([None] * 6 + [1, 2, 100, 0]),
       st.sampled_from([False, False, False, True]))
def test_fuzz_sample(problem, seed_ix, n, temperature, top_k, greedy):
    Hh, Vv, base, h0, shapes, args, _, _, scale = problem
    dt = _arrays_valid(Hh, Vv, shapes, args)
    seed_ok = seed_ix is None or (isinstance(seed_ix, int) and 0 <= seed_ix < Vv)
    n_ok = isinstance(n, int) and n >= 0
    valid = (dt is not None and seed_ok and n_ok and temperature > 0
             and (greedy or temperature != 1e-320) and (top_k is None or top_k >= 1))
    rng = np.random.RandomState(7)
    call = lambda: charrnn.sample(args[5], seed_ix, n, tuple(args[:5]), rng,  # noqa: E731
                                  temperature=temperature, top_k=top_k, greedy=greedy)
    event("valid" if valid else "invalid: refused")
    if not valid:
        with pytest.raises((ValueError, IndexError)):
            call()
        return
    got = call()
    assert len(got) == n and all(isinstance(i, int) and 0 <= i < Vv for i in got)
    if dt == np.float64 and temperature == 1.0 and top_k in (None, 100) and not greedy:
        event("valid: compared with the reference")
        want = reference.sample(np.asarray(args[5], np.float64), seed_ix, n,
                                tuple(np.asarray(a, np.float64) for a in args[:5]),
                                np.random.RandomState(7))
        assert got == want


@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**32 - 1),
       st.sampled_from([1e3, 1e30, 1e150, 1e300]), st.sampled_from([np.float64, np.float32]),
       st.sampled_from([1.0, 1e-3, 1e3]))
def test_fuzz_extreme_weights_never_crash(Hh, Vv, seed, scale, dtype, temperature):
    """Finite but enormous weights: a result of the right shape, or a clear ValueError."""
    rng = np.random.RandomState(seed)
    with np.errstate(over="ignore"):
        params = tuple(np.asarray(a, dtype) for a in random_params(rng, Hh, Vv, scale))
    assume(all(np.isfinite(a).all() for a in params))
    h = np.zeros((Hh, 1), dtype)
    out = charrnn.lossFun([0] * 3, [Vv - 1] * 3, h, params, clip=None)
    assert out[1].shape == (Hh, Vv) and out[-1].shape == (Hh, 1)
    try:
        ixes = charrnn.sample(h, 0, 20, params, 0, temperature=temperature)
    except ValueError as e:
        assert "overflow" in str(e)
    else:
        assert len(ixes) == 20 and all(0 <= i < Vv for i in ixes)
