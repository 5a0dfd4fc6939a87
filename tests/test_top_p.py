"""Top-p (nucleus) sampling: the kernels keep the set numpy's expression keeps, and draw
what charrnn.reference draws from the same uniforms, alone and after temperature and top-k."""
import math

import numpy as np
import pytest
from conftest import POEM, random_params
from test_kernels import build  # noqa: F401  (a fixture: once per kernel build)

import charrnn
from charrnn import _stack, reference

DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["float64", "float32"]


@pytest.fixture(scope="module")
def trained():
    return charrnn.train(POEM, hidden_size=40, num_iterations=300, seed=2)


# -- the filter itself ----------------------------------------------------------------------

def test_nucleus_is_the_shortest_prefix_reaching_p_with_ties_by_index():
    """Exact binary fractions, so the sums are exact and the definition is visible:
    most likely first, lower index first among equals, the crossing character kept."""
    p = np.array([0.125, 0.375, 0.125, 0.375])
    cases = {0.2: [1], 0.375: [1], 0.5: [1, 3], 0.75: [1, 3], 0.8: [0, 1, 3],
             0.9: [0, 1, 2, 3], 0.999: [0, 1, 2, 3]}
    for top_p, kept in cases.items():
        q = reference.top_p_filter(p, top_p)
        assert np.flatnonzero(q).tolist() == kept, f"top_p={top_p}"
        assert np.array_equal(q[kept], p[kept]), f"top_p={top_p}: kept values changed"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_kernel_filter_equals_the_reference(build, dtype):
    rng = np.random.RandomState(0)
    logits = {
        "gaussian": rng.randn(200) * 3,
        "ties": rng.randint(-3, 4, 150) * 0.5,
        "all equal": np.zeros(50),
        "one value": np.zeros(1),
        "peaked": np.r_[20.0, rng.randn(99)],
        "dropped by top-k": np.where(rng.rand(80) < 0.5, -np.inf, rng.randn(80)),
    }
    for name, y in logits.items():
        e = np.exp(y - y.max())
        p = (e / e.sum()).astype(dtype)
        for top_p in (1e-9, 0.05, 0.3, 0.5, 0.77, 0.9, 0.99, 1 - 1e-12):
            want = reference.top_p_filter(p, top_p)
            got = p.copy()
            build._keep_top_p(got, np.empty_like(got), top_p)
            assert np.array_equal(got, want), (
                f"{name}, top_p={top_p}: kept {np.flatnonzero(got).tolist()}, the reference "
                f"{np.flatnonzero(want).tolist()}")
            assert got.dtype == dtype


def test_kernel_filter_checks_its_arguments(build):
    p = np.full(4, 0.25)
    for top_p, scratch in ((0.0, np.empty(4)), (1.0, np.empty(4)), (0.5, np.empty(3))):
        with pytest.raises(ValueError, match="0 < top_p < 1"):
            build._keep_top_p(p.copy(), scratch, top_p)


# -- sampling: the same characters as the reference ------------------------------------------

COMBINATIONS = [
    dict(top_p=0.9),
    dict(top_p=0.5),
    dict(top_p=0.3, temperature=1.5),
    dict(top_p=0.8, temperature=0.7, top_k=5),
    dict(top_p=0.95, top_k=2),
]
COMBINATION_IDS = ["p0.9", "p0.5", "p0.3-t1.5", "p0.8-t0.7-k5", "p0.95-k2"]


@pytest.mark.parametrize("options", COMBINATIONS, ids=COMBINATION_IDS)
def test_seeds_sampler_draws_what_the_reference_draws(trained, build, options):
    params = tuple(np.array(a) for a in trained.params)
    h, n = trained.hprev.copy(), 500
    want = reference.sample(h, 3, n, params, np.random.RandomState(7), **options)
    got = charrnn.sample(h, 3, n, params, np.random.RandomState(7), **options)
    assert got == want
    assert len(set(got)) > 1


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_ties_are_kept_by_index_in_the_sampler(build, dtype):
    """Why = 0: every step's logits are the quantised by, full of exact ties; the
    characters drawn are exactly those of the nucleus the definition gives."""
    V, H, n = 30, 5, 600
    rng = np.random.RandomState(3)
    Wxh, Whh, _, bh, _ = (a.astype(dtype) for a in random_params(rng, H, V, 0.5))
    by = (rng.randint(-3, 3, (V, 1)) * 0.5).astype(dtype)
    params = (Wxh, Whh, np.zeros((V, H), dtype), bh, by)
    h = np.zeros((H, 1), dtype)
    for top_p in (0.1, 0.35, 0.6, 0.9):
        got = charrnn.sample(h, 0, n, params, np.random.RandomState(1), top_p=top_p)
        e = np.exp(by.ravel().astype(np.float64) - by.max())
        nucleus = np.flatnonzero(reference.top_p_filter(e / e.sum(), top_p))
        assert set(got) == set(nucleus.tolist()), f"top_p={top_p}"


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("options", COMBINATIONS[:2] + COMBINATIONS[3:4],
                         ids=COMBINATION_IDS[:2] + COMBINATION_IDS[3:4])
def test_stack_sampler_draws_what_the_reference_draws(build, cell, options):
    H, V, L, n = 7, 13, 2, 300
    entries, P = _stack.layout(cell, L, H, V)
    flat = np.random.RandomState(4).uniform(-1.5, 1.5, P)
    params = {name: flat[o:o + math.prod(s)].reshape(s) for name, s, o in entries}
    state = np.random.RandomState(5).uniform(-0.5, 0.5, (_stack.CELLS[cell][2], L, H))
    want = reference.stack_sample(state, 2, n, params, cell, np.random.RandomState(6),
                                  **options)
    uniforms = np.random.RandomState(6).random_sample(n)
    got = _stack.sample(flat, state.copy(), 2, uniforms, np.empty(n, np.int64),
                        options.get("temperature", 1.0), False, options.get("top_k", 0),
                        options["top_p"], cell=cell)
    assert got.tolist() == want


def test_top_p_one_or_none_is_the_default_path_exactly(trained):
    params, h = trained.params, trained.hprev
    plain = charrnn.sample(h, 1, 300, params, np.random.RandomState(9))
    assert charrnn.sample(h, 1, 300, params, np.random.RandomState(9), top_p=1.0) == plain
    assert charrnn.sample(h, 1, 300, params, np.random.RandomState(9), top_p=None) == plain
    assert plain == reference.sample(h, 1, 300, params, np.random.RandomState(9))


def test_top_p_draws_one_uniform_per_character(trained):
    a, b = np.random.RandomState(4), np.random.RandomState(4)
    charrnn.sample(trained.hprev, 0, 50, trained.params, a, top_p=0.5)
    b.random_sample(50)
    assert a.random_sample() == b.random_sample()


def test_a_tiny_top_p_is_greedy(trained):
    params, h = trained.params, trained.hprev
    greedy = charrnn.sample(h, 2, 100, params, greedy=True)
    assert charrnn.sample(h, 2, 100, params, np.random.RandomState(0), top_p=1e-9) == greedy


@pytest.mark.parametrize("top_p, match", [
    (0, "top_p must be > 0"), (-0.5, "top_p must be > 0"), (1.5, r"top_p must be in \(0, 1\]"),
    (float("nan"), "top_p must be finite"), ("0.5", "top_p must be a real number"),
    (True, "top_p must be a real number")])
def test_bad_top_p_is_refused(trained, top_p, match):
    with pytest.raises(ValueError, match=match):
        charrnn.sample(trained.hprev, 0, 5, trained.params, top_p=top_p)
    with pytest.raises(ValueError, match=match):
        trained.sample(5, top_p=top_p)
    with pytest.raises(ValueError, match=match):
        trained.generate(5, top_p=top_p)  # checked when called, not at the first next()


# -- the model's API -------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_model_sample_and_generate_agree_and_follow_the_reference(cell):
    model = charrnn.train(POEM, hidden_size=16, num_iterations=100, seed=1, cell=cell,
                          num_layers=1 if cell == "rnn" else 2)
    text = model.sample(200, prime="And ", top_p=0.8, temperature=0.9, seed=3)
    assert text == "".join(model.generate(200, prime="And ", top_p=0.8, temperature=0.9,
                                          seed=3, chunk=7))
    state = model._net.zero_stream_state(model.dtype)
    prime = np.array([model.char_to_ix[c] for c in "And "], np.int32)
    model._net.advance(model._flat, state, prime[:-1])
    if cell == "rnn":
        want = reference.sample(state.reshape(-1, 1), int(prime[-1]), 200, model.params,
                                np.random.RandomState(3), top_p=0.8, temperature=0.9)
    else:
        want = reference.stack_sample(state, int(prime[-1]), 200, model.state_dict(), cell,
                                      np.random.RandomState(3), top_p=0.8, temperature=0.9)
    assert text == "".join(model.chars[i] for i in want)


def test_top_p_narrows_the_characters_drawn(trained):
    wide = set(trained.sample(2000, seed=5))
    narrow = set(trained.sample(2000, seed=5, top_p=0.3))
    assert narrow < wide
