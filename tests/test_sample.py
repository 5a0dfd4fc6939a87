"""Sampling: the compiled sampler draws what the seeds' np.random.choice loop draws."""
import numpy as np
import pytest
from conftest import POEM, random_params
from test_kernels import BUILDS, build  # noqa: F401  (build: a fixture, once per kernel build)

import charrnn
from charrnn import reference


@pytest.fixture(scope="module")
def trained():
    return charrnn.train(POEM, hidden_size=50, num_iterations=300, seed=1)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_sample_matches_reference_for_1000_characters(trained, activation):
    params = tuple(np.array(a) for a in trained.params)
    h = trained.hprev.copy()
    got = charrnn.sample(h, 3, 1000, params, np.random.RandomState(42), activation=activation)
    want = reference.sample(h, 3, 1000, params, np.random.RandomState(42), activation=activation)
    assert len(got) == 1000
    assert got == want
    assert len(set(got)) > 5  # a real sample, not one character repeated


def test_sample_keeps_the_random_stream_in_step(trained):
    """After a sample the RandomState is where the seeds' loop would leave it."""
    params, h = trained.params, trained.hprev
    a, b = np.random.RandomState(5), np.random.RandomState(5)
    charrnn.sample(h, 0, 100, params, a)
    reference.sample(h, 0, 100, params, b)
    assert a.random_sample() == b.random_sample()


def test_sample_default_rng_is_numpys_global_state(trained):
    params, h = trained.params, trained.hprev
    np.random.seed(123)
    got = charrnn.sample(h, 1, 200, params)
    np.random.seed(123)
    want = reference.sample(h, 1, 200, params)
    assert got == want


def test_sample_from_an_all_zero_first_input(trained):
    params, h = trained.params, trained.hprev
    got = charrnn.sample(h, None, 300, params, np.random.RandomState(0))
    want = reference.sample(h, None, 300, params, np.random.RandomState(0))
    assert got == want


def test_sample_does_not_modify_h(trained):
    h = trained.hprev.copy()
    charrnn.sample(h, 0, 50, trained.params, 0)
    np.testing.assert_array_equal(h, trained.hprev)


def test_sample_zero_characters(trained):
    assert charrnn.sample(trained.hprev, 0, 0, trained.params, 0) == []


def test_greedy_takes_the_argmax(trained):
    params, h = trained.params, trained.hprev
    Wxh, Whh, Why, bh, by = params
    ixes = charrnn.sample(h, 2, 20, params, greedy=True)
    x, hh = 2, h
    for ix in ixes:
        hh = np.tanh(Wxh[:, [x]] + Whh @ hh + bh)
        assert ix == int(np.argmax(Why @ hh + by))
        x = ix


def test_top_k_draws_only_among_the_k_most_likely(trained):
    params, h = trained.params, trained.hprev
    Wxh, Whh, Why, bh, by = params
    ixes = charrnn.sample(h, 2, 300, params, np.random.RandomState(3), top_k=2)
    x, hh = 2, h
    for ix in ixes:
        hh = np.tanh(Wxh[:, [x]] + Whh @ hh + bh)
        y = (Why @ hh + by).ravel()
        assert ix in set(np.argsort(-y)[:2].tolist())
        x = ix


def test_low_temperature_approaches_greedy_and_high_spreads(trained):
    params, h = trained.params, trained.hprev
    greedy = charrnn.sample(h, 2, 100, params, greedy=True)
    cold = charrnn.sample(h, 2, 100, params, np.random.RandomState(0), temperature=1e-9)
    hot = charrnn.sample(h, 2, 2000, params, np.random.RandomState(0), temperature=50.0)
    assert cold == greedy
    assert len(set(hot)) > len(set(greedy))


def test_model_sample_returns_text_and_is_reproducible(trained):
    a = trained.sample(200, seed=7)
    b = trained.sample(200, seed=7)
    assert isinstance(a, str) and len(a) == 200 and a == b
    assert set(a) <= set(trained.chars)


@pytest.mark.parametrize("start", [None, "carried", "zero"])
def test_model_sample_with_prime_warms_the_hidden_state(trained, start):
    prime = POEM[:40]
    ix = [trained.char_to_ix[c] for c in prime]
    Wxh, Whh, Why, bh, by = trained.params
    # the default start of a model trained by the seeds' loop is the carried state
    h = np.zeros((trained.hidden_size, 1)) if start == "zero" else trained.hprev.copy()
    for x in ix[:-1]:
        h = np.tanh(Wxh[:, [x]] + Whh @ h + bh)
    want = reference.sample(h, ix[-1], 150, trained.params, np.random.RandomState(9))
    got = trained.sample(150, prime=prime, seed=9, start=start)
    assert got == "".join(trained.chars[i] for i in want)


def test_generate_streams_the_same_characters_as_sample(trained):
    whole = trained.sample(700, prime="And ", seed=11)
    streamed = "".join(trained.generate(700, prime="And ", seed=11, chunk=64))
    assert streamed == whole


def test_prime_with_unknown_characters_is_refused(trained):
    with pytest.raises(ValueError, match="not in the vocabulary"):
        trained.sample(10, prime="Zebra#")


def test_generate_checks_its_arguments_when_called(trained):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        trained.generate(10, temperature=0)      # no next() needed
    with pytest.raises(ValueError, match="not in the vocabulary"):
        trained.generate(10, prime="#")
    with pytest.raises(ValueError, match="n must be >= 0"):
        trained.generate(-1)


# -- top-k: the k-th largest logit in O(V), same samples as the numpy expression -----------

DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["float64", "float32"]


def finite_random_bits(rng, n, dtype):
    """Floats of every sign, exponent and mantissa: each byte of the keys varies."""
    width = np.dtype(dtype).itemsize
    raw = rng.randint(0, 256, n * width * 2, dtype=np.uint64).astype(np.uint8)
    y = raw.view(dtype)
    return y[np.isfinite(y)][:n]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_kth_largest_equals_numpys_sort_for_every_k(build, dtype):
    rng = np.random.RandomState(0)
    cases = {
        "gaussian": rng.randn(700),
        "ties": rng.randint(-3, 4, 500) * 0.5,
        "all equal": np.full(300, 1.25),
        "signed zeros": [0.0, -0.0, 1.0, -1.0, 0.0, -0.0, -0.0, 2.0],
        "wide range": rng.randn(600) * 10.0 ** rng.randint(-30, 30, 600),
        "random bits": finite_random_bits(rng, 900, dtype),
        "infinities": [-np.inf, np.inf, 1.0, 2.0, -np.inf, np.inf],
        "one value": [3.5],
    }
    for name, values in cases.items():
        y = np.array(values, dtype)
        before = y.copy()
        descending = np.sort(y)[::-1]
        for k in range(1, y.size + 1):
            got = build._kth_largest(y, np.empty_like(y), k)
            assert got == descending[k - 1], (
                f"{name}, k={k}: got {got!r}, np.sort(y)[-k] = {descending[k - 1]!r}")
        assert np.array_equal(y, before, equal_nan=True), f"{name}: y was changed"


def test_kth_largest_checks_its_arguments(build):
    y = np.arange(5.0)
    for k, scratch in ((0, np.empty(5)), (6, np.empty(5)), (2, np.empty(4))):
        with pytest.raises(ValueError, match="1 <= k <= len"):
            build._kth_largest(y, scratch, k)


def numpy_top_k_sample(h, x, n, params, uniforms, top_k, temperature):
    """The seeds' sampling loop with top-k as a numpy expression, in the model's dtype:
    logits below ``np.sort(y)[-k]`` are dropped (ties with it kept), then numpy's draw
    ``searchsorted(cumsum(p) / cumsum(p)[-1], u, 'right')``."""
    Wxh, Whh, Why, bh, by = params
    dt = Wxh.dtype.type
    out = []
    for u in uniforms:
        h = np.tanh(Wxh[:, [x]] + Whh @ h + bh)
        y = ((Why @ h + by) / dt(temperature)).ravel()
        if top_k < y.size:
            y[y < np.sort(y)[-top_k]] = -np.inf
        p = np.exp(y.astype(np.float64) - y.max())
        cdf = np.cumsum(p)
        x = int(np.searchsorted(cdf / cdf[-1], u, side="right"))
        out.append(x)
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_top_k_keeps_ties_and_draws_what_numpy_draws(build, dtype, temperature):
    """Logits with many exact ties (Why = 0, so they are the quantised by in every
    step): the kept set and every draw equal the numpy expression's."""
    V, H, n = 40, 6, 400
    rng = np.random.RandomState(2)
    Wxh, Whh, _, bh, _ = (a.astype(dtype) for a in random_params(rng, H, V, 0.5))
    Why = np.zeros((V, H), dtype)
    by = (rng.randint(-4, 4, (V, 1)) * 0.5).astype(dtype)   # 8 distinct values
    params = (Wxh, Whh, Why, bh, by)
    h = np.zeros((H, 1), dtype)
    for k in (1, 2, 3, 7, V // 2, V - 1, V, V + 5):
        uniforms = np.random.RandomState(k).random_sample(n)
        want = numpy_top_k_sample(h, 0, n, params, uniforms, k, temperature)
        got = charrnn.sample(h, 0, n, params, np.random.RandomState(k), top_k=k,
                             temperature=temperature)
        kept = np.flatnonzero(by.ravel() >= np.sort(by.ravel())[-min(k, V)])
        assert got == want, f"top_k={k}: the draws differ from the numpy expression's"
        assert set(got) <= set(kept.tolist()), f"top_k={k}: drew a dropped logit"
        if k == 1:
            assert kept.size > 1, "the test needs a tie at the largest logit"
        if k <= 7:  # the kept logits are the top one or two values: every one is drawn
            assert set(got) == set(kept.tolist()), f"top_k={k}: a tied logit was dropped"


@pytest.mark.parametrize("k", ["1", "5", "V-1", "V", "V+10"])
def test_top_k_follows_the_numpy_expression_on_a_trained_model(trained, build, k):
    params = tuple(np.array(a) for a in trained.params)
    h, V, n = trained.hprev.copy(), trained.vocab_size, 300
    k = eval(k, {"V": V})
    uniforms = np.random.RandomState(k).random_sample(n)
    want = numpy_top_k_sample(h, 3, n, params, uniforms, k, 0.8)
    got = charrnn.sample(h, 3, n, params, np.random.RandomState(k), top_k=k, temperature=0.8)
    assert got == want


def test_top_k_draws_one_uniform_per_character(trained):
    a, b = np.random.RandomState(4), np.random.RandomState(4)
    charrnn.sample(trained.hprev, 0, 50, trained.params, a, top_k=3)
    b.random_sample(50)
    assert a.random_sample() == b.random_sample()
