"""The compiled lossFun against charrnn.reference, and a numerical gradient check."""
import numpy as np
import pytest
from conftest import PARAM_NAMES, assert_close, random_params, rel_diff

import charrnn
from charrnn import reference

# (H, V, T, weight scale): tiny to a few hundred, short to long, weights from the
# seeds' 0.01 up to sizes where most gradients are clipped. Whh has spectral radius
# about 0.9 (see random_params): large enough to carry gradients far back in time,
# not so large that the recurrence is chaotic (that case is tested on its own below).
CASES = [
    (1, 1, 1, 0.5), (1, 2, 3, 1.0), (2, 1, 5, 0.3), (2, 2, 1, 2.0), (3, 5, 7, 0.01),
    (5, 3, 200, 0.8), (8, 17, 25, 0.5), (16, 65, 25, 1.0), (33, 7, 50, 0.6),
    (64, 65, 100, 0.2), (100, 65, 25, 0.01), (100, 65, 25, 0.5), (100, 90, 200, 0.15),
    (128, 3, 31, 2.0), (150, 200, 60, 0.1), (257, 65, 25, 0.3), (300, 300, 10, 0.08),
    (31, 129, 199, 0.3), (7, 250, 2, 1.5), (200, 1, 40, 0.2),
]
RTOL = 1e-12


def _case(H, V, T, scale, seed, rho=0.9):
    rng = np.random.RandomState(seed)
    params = random_params(rng, H, V, scale, rho)
    inputs = rng.randint(V, size=T)
    targets = rng.randint(V, size=T)
    hprev = np.tanh(rng.randn(H, 1))
    return inputs, targets, hprev, params


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
@pytest.mark.parametrize("H,V,T,scale", CASES, ids=[f"H{c[0]}-V{c[1]}-T{c[2]}-w{c[3]}" for c in CASES])
def test_lossfun_matches_reference(H, V, T, scale, activation):
    inputs, targets, hprev, params = _case(H, V, T, scale, seed=H * 1000 + V + T)
    got = charrnn.lossFun(inputs, targets, hprev, params, activation=activation)
    want = reference.lossFun(list(inputs), list(targets), hprev, params, activation=activation)
    labels = ("loss",) + tuple("d" + n for n in PARAM_NAMES) + ("h_last",)
    for g, w, label in zip(got, want, labels):
        assert_close(g, w, RTOL, f"{label} (H={H} V={V} T={T})")
    assert isinstance(got[0], float)
    assert got[-1].shape == (H, 1)


def test_chaotic_recurrence_differs_no_more_than_the_reference_from_itself():
    """Whh with spectral radius ~3: rounding differences grow through time in any code.

    The tolerance is measured, not guessed: the reference is run again with its
    weights nudged by 1e-15 (relative), and the kernels may differ from the reference
    by no more than 100 times what that nudge does (and always by < 1e-6).
    """
    inputs, targets, hprev, params = _case(100, 65, 25, 0.5, seed=21, rho=3.0)
    got = charrnn.lossFun(inputs, targets, hprev, params)
    want = reference.lossFun(inputs, targets, hprev, params)
    nudged_params = tuple(a * (1 + 1e-15) for a in params)
    nudged = reference.lossFun(inputs, targets, hprev, nudged_params)
    for k, (g, w, z) in enumerate(zip(got, want, nudged)):
        sensitivity = rel_diff(z, w)
        assert_close(g, w, min(1e-6, max(RTOL, 100 * sensitivity)), f"chaotic output {k}")


def test_clipping_happens_in_the_large_weight_cases():
    """The equivalence cases include gradients at the clip bound, and the bound is the seeds' 5."""
    inputs, targets, hprev, params = _case(100, 65, 25, 0.5, seed=1)
    grads = charrnn.lossFun(inputs, targets, hprev, params)[1:6]
    unclipped = charrnn.lossFun(inputs, targets, hprev, params, clip=None)[1:6]
    assert max(np.abs(g).max() for g in grads) == 5.0
    assert max(np.abs(g).max() for g in unclipped) > 5.0
    for g, u in zip(grads, unclipped):
        np.testing.assert_array_equal(g, np.clip(u, -5, 5))


@pytest.mark.parametrize("bptt", ["full", "none"])
@pytest.mark.parametrize("clip", [None, 1.0, 5.0])
def test_lossfun_options_match_reference(bptt, clip):
    inputs, targets, hprev, params = _case(40, 30, 33, 0.4, seed=7)
    for activation in ("tanh", "sigmoid"):
        kw = dict(activation=activation, bptt=bptt, clip=clip)
        got = charrnn.lossFun(inputs, targets, hprev, params, **kw)
        want = reference.lossFun(inputs, targets, hprev, params, **kw)
        for k, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, RTOL, f"output {k} {kw}")


def test_lossfun_accepts_lists_arrays_and_any_integer_dtype():
    inputs, targets, hprev, params = _case(10, 12, 9, 0.3, seed=3)
    want = charrnn.lossFun(list(inputs), list(targets), hprev, params)
    for dt in (np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64):
        got = charrnn.lossFun(inputs.astype(dt), targets.astype(dt), hprev, params)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_lossfun_leaves_its_arguments_alone():
    inputs, targets, hprev, params = _case(10, 12, 9, 0.3, seed=4)
    copies = [a.copy() for a in params] + [hprev.copy()]
    charrnn.lossFun(inputs, targets, hprev, params)
    for a, c in zip(list(params) + [hprev], copies):
        np.testing.assert_array_equal(a, c)


def test_lossfun_non_contiguous_and_fortran_inputs_give_the_same_result():
    inputs, targets, hprev, params = _case(12, 9, 11, 0.3, seed=5)
    want = charrnn.lossFun(inputs, targets, hprev, params)
    odd = tuple(np.asfortranarray(a) for a in params)
    wide = np.repeat(inputs, 2)[::2]
    got = charrnn.lossFun(wide, targets, np.asfortranarray(hprev), odd)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
@pytest.mark.parametrize("bptt", ["full", "none"])
def test_numerical_gradient_check_of_the_kernels(activation, bptt):
    """Central differences on sampled entries of every parameter, against the kernels."""
    rng = np.random.RandomState(11)
    H, V, T = 9, 6, 12
    params = random_params(rng, H, V, 0.3)
    inputs, targets = rng.randint(V, size=T), rng.randint(V, size=T)
    hprev = np.tanh(rng.randn(H, 1))
    kw = dict(activation=activation, bptt=bptt, clip=None)
    _, *grads, _ = charrnn.lossFun(inputs, targets, hprev, params, **kw)
    eps = 1e-5
    worst = 0.0
    for name, param, grad in zip(PARAM_NAMES, params, grads):
        for _ in range(10):
            ix = tuple(rng.randint(s) for s in param.shape)
            old = param[ix]
            param[ix] = old + eps
            lp = charrnn.lossFun(inputs, targets, hprev, params, **kw)[0]
            param[ix] = old - eps
            lm = charrnn.lossFun(inputs, targets, hprev, params, **kw)[0]
            param[ix] = old
            if bptt == "none" and name in ("Wxh", "Whh", "bh"):
                continue  # Elman's gradient is not the gradient of this loss through time
            num = (lp - lm) / (2 * eps)
            ana = grad[ix]
            err = abs(num - ana) / max(abs(num) + abs(ana), 1e-8)
            worst = max(worst, err)
            assert err < 1e-6, f"d{name}{ix}: numerical {num:.10g} vs kernel {ana:.10g} (rel {err:.2e})"


def test_elman_gradient_with_a_single_step_is_the_full_gradient():
    """With T = 1 there is no time to back-propagate through: both modes agree exactly."""
    rng = np.random.RandomState(2)
    params = random_params(rng, 7, 5, 0.4)
    hprev = np.tanh(rng.randn(7, 1))
    a = charrnn.lossFun([3], [1], hprev, params, bptt="full")
    b = charrnn.lossFun([3], [1], hprev, params, bptt="none")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_float32_parameters_agree_at_float32_tolerance():
    inputs, targets, hprev, params = _case(50, 40, 25, 0.2, seed=9)
    want = reference.lossFun(inputs, targets, hprev, params)
    p32 = tuple(a.astype(np.float32) for a in params)
    got = charrnn.lossFun(inputs, targets, hprev.astype(np.float32), p32)
    assert got[1].dtype == np.float32
    for k, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, 2e-5, f"float32 output {k}")
