"""charrnn.steps (seed 000's modular steps) against the numpy reference, charrnn.train's
bits and a numerical gradient; their checks at the boundary."""
import numpy as np
import pytest
from conftest import POEM, PARAM_NAMES, assert_close, random_params

import charrnn
from charrnn import reference, steps

RTOL = 1e-12
CASES = [(1, 1, 1, 0.5), (3, 5, 7, 0.3), (8, 17, 25, 0.5), (100, 65, 25, 0.01),
         (64, 30, 60, 0.2), (7, 250, 2, 1.5)]


def _case(H, V, T, scale, seed):
    rng = np.random.RandomState(seed)
    params = random_params(rng, H, V, scale, rho=0.9)
    eye = np.eye(V)
    X, Y = eye[rng.randint(V, size=T)], eye[rng.randint(V, size=T)]
    return X, Y, np.tanh(rng.randn(H, 1)), params


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
@pytest.mark.parametrize("H,V,T,scale", CASES, ids=[f"H{c[0]}-V{c[1]}-T{c[2]}" for c in CASES])
def test_each_step_matches_the_reference(H, V, T, scale, activation):
    X, Y, hprev, params = _case(H, V, T, scale, seed=H + V + T)
    caches = steps.forward_propogation(X, params, T, hprev, activation=activation)
    want = reference.forward_propogation(X, params, T, hprev, activation=activation)
    assert list(caches) == list(want)
    assert len(caches) == len(want) == 2 * T + 1
    for key in want:
        assert_close(caches[key], want[key], RTOL, f"caches[{key!r}] (H={H} V={V} T={T})")
    cost = steps.compute_cost(Y, caches)
    assert isinstance(cost, np.float64)
    assert_close(cost, reference.compute_cost(Y, want), RTOL, "cost")
    grads = steps.backward_propogation(X, Y, caches, params)
    want_grads = reference.backward_propogation(X, Y, want, params, activation=activation)
    for g, w, name in zip(grads, want_grads, PARAM_NAMES):
        assert_close(g, w, RTOL, f"d{name} (H={H} V={V} T={T})")
    # forward + cost + backward is lossFun
    loss, *dparams, h_last = charrnn.lossFun(X.argmax(1), Y.argmax(1), hprev, params,
                                             activation=activation)
    assert_close(cost, loss, 1e-14, "cost against lossFun's loss")  # from ps, not logits
    for g, w, name in zip(grads, dparams, PARAM_NAMES):
        np.testing.assert_array_equal(g, w, err_msg=f"d{name} differs from lossFun's")
    np.testing.assert_array_equal(caches[f"h{T}"], h_last)


def test_update_matches_the_reference():
    X, Y, hprev, params = _case(20, 9, 12, 0.3, seed=5)
    grads = steps.backward_propogation(X, Y, steps.forward_propogation(X, params, 12, hprev),
                                       params)
    rng = np.random.RandomState(1)
    mems = tuple(np.abs(rng.randn(*a.shape)) for a in params)
    mine = tuple(a.copy() for a in params), tuple(m.copy() for m in mems)
    theirs = tuple(a.copy() for a in params), tuple(m.copy() for m in mems)
    out = steps.update_parameters(mine[0], grads, mine[1], 0.1)
    assert out[0] is mine[0] and out[1] is mine[1]  # the tuples given, updated in place
    reference.update_parameters(theirs[0], grads, theirs[1], 0.1)
    for got, want, name in zip(mine[0] + mine[1], theirs[0] + theirs[1],
                               PARAM_NAMES + tuple("m" + n for n in PARAM_NAMES)):
        assert_close(got, want, RTOL, name)  # the AVX2 build fuses mem += d * d (FMA)


def _seed_loop(data, hidden_size, seq_length, learning_rate, num_iterations, seed):
    """Seed 000's ``Model`` loop, written with charrnn.steps (no sampling)."""
    chars = sorted(set(data))
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    V = len(chars)
    parameters, mems = steps.initialize_parameters(hidden_size, V,
                                                   rng=np.random.RandomState(seed))
    n = p = 0
    smooth_loss = -np.log(1.0 / V) * seq_length
    costs = []
    while n < num_iterations:
        if p + seq_length + 1 >= len(data) or n == 0:
            hprev = np.zeros((hidden_size, 1))
            p = 0
        X, Y = steps.get_one_hot(p, char_to_ix, data, V, seq_length)
        caches = steps.forward_propagation(X, parameters, seq_length, hprev)
        cost = steps.compute_cost(Y, caches)
        grads = steps.backward_propagation(X, Y, caches, parameters)
        parameters, mems = steps.update_parameters(parameters, grads, mems, learning_rate)
        smooth_loss = smooth_loss * 0.999 + cost * 0.001
        costs.append(cost)
        hprev = caches["h" + str(seq_length)]
        p += seq_length
        n += 1
    return parameters, mems, hprev, smooth_loss, costs


def test_a_loop_of_the_steps_is_charrnn_train_bit_for_bit():
    """Over several wraps of the pointer: parameters and state, every bit.

    The costs agree to rounding: compute_cost works from the probabilities, as the
    seed does; the training loop's loss from the logits (log-sum-exp minus the target's).
    """
    parameters, mems, hprev, smooth_loss, costs = _seed_loop(POEM, 30, 25, 0.1, 60, seed=3)
    model = charrnn.train(POEM, hidden_size=30, seq_length=25, learning_rate=0.1,
                          num_iterations=60, seed=3)
    for got, want, name in zip(parameters, model.params, PARAM_NAMES):
        np.testing.assert_array_equal(got, want, err_msg=name)
    np.testing.assert_array_equal(hprev, model.hprev)
    assert_close(costs, model.history.loss, 1e-14, "costs")
    assert_close(smooth_loss, model.smooth_loss, 1e-14, "smooth_loss")


def test_a_loop_of_the_steps_matches_the_reference_train():
    parameters, mems, hprev, smooth_loss, _ = _seed_loop(POEM, 12, 10, 0.1, 40, seed=0)
    ref = reference.train(POEM, hidden_size=12, seq_length=10, learning_rate=0.1,
                          num_iterations=40, seed=0)
    for got, want, name in zip(parameters + mems, tuple(ref.params) + tuple(ref.mems[0]),
                               PARAM_NAMES + tuple("m" + n for n in PARAM_NAMES)):
        assert_close(got, want, 1e-11, name)
    assert_close(smooth_loss, ref.smooth_loss, 1e-12, "smooth_loss")


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_backward_is_the_gradient_of_the_cost(activation):
    """Central differences of compute_cost(forward(...)) against backward, unclipped."""
    H, V, T = 6, 5, 8
    X, Y, hprev, params = _case(H, V, T, 0.5, seed=11)

    def cost(ps):
        caches = steps.forward_propogation(X, ps, T, hprev, activation=activation)
        return float(steps.compute_cost(Y, caches))

    caches = steps.forward_propogation(X, params, T, hprev, activation=activation)
    grads = steps.backward_propogation(X, Y, caches, params, clip=None)
    rng = np.random.RandomState(0)
    eps = 1e-6
    for k, name in enumerate(PARAM_NAMES):
        for _ in range(10):
            i = tuple(rng.randint(s) for s in params[k].shape)
            plus = [a.copy() for a in params]
            minus = [a.copy() for a in params]
            plus[k][i] += eps
            minus[k][i] -= eps
            numeric = (cost(tuple(plus)) - cost(tuple(minus))) / (2 * eps)
            analytic = grads[k][i]
            assert abs(numeric - analytic) <= 1e-7 * max(1.0, abs(numeric)), (
                f"d{name}{i}: numerical {numeric:.10g} != analytic {analytic:.10g}")


def test_backward_clips_as_the_seed():
    X, Y, hprev, params = _case(10, 7, 30, 3.0, seed=2)
    caches = steps.forward_propogation(X, params, 30, hprev)
    raw = steps.backward_propogation(X, Y, caches, params, clip=None)
    clipped = steps.backward_propogation(X, Y, caches, params)
    assert max(np.abs(g).max() for g in raw) > 5
    for r, c, name in zip(raw, clipped, PARAM_NAMES):
        np.testing.assert_array_equal(c, np.clip(r, -5, 5), err_msg=name)


def test_float32():
    X, Y, hprev, params = _case(16, 11, 20, 0.3, seed=4)
    p32 = tuple(a.astype(np.float32) for a in params)
    caches = steps.forward_propogation(X, p32, 20, hprev.astype(np.float32))
    assert caches["h1"].dtype == caches["A1"].dtype == np.float32
    grads = steps.backward_propogation(X, Y, caches, p32)
    want = reference.backward_propogation(X, Y, reference.forward_propogation(X, params, 20,
                                                                              hprev), params)
    for g, w, name in zip(grads, want, PARAM_NAMES):
        assert g.dtype == np.float32
        assert_close(g, w, 1e-4, f"float32 d{name}")
    mems = tuple(np.zeros_like(a) for a in p32)
    steps.update_parameters(p32, grads, mems, 0.1)


def test_caches_are_the_seeds_dict_read_only():
    X, Y, hprev, params = _case(4, 3, 5, 0.5, seed=0)
    caches = steps.forward_propogation(X, params, 5, hprev)
    assert list(caches) == ["h0", "A1", "h1", "A2", "h2", "A3", "h3", "A4", "h4", "A5", "h5"]
    assert caches["h0"].shape == (4, 1) and caches["A5"].shape == (3, 1)
    np.testing.assert_array_equal(caches["h0"], hprev)
    assert "h5" in caches and "h6" not in caches and "A0" not in caches and "h05" not in caches
    for key in ("h6", "A0", "x1", "h-1", "h01", 3):
        with pytest.raises(KeyError):
            caches[key]
    with pytest.raises(ValueError):
        caches["A1"][0, 0] = 1.0
    # a plain dict with the same keys works as well (the reference's)
    as_dict = {k: np.array(v) for k, v in caches.items()}
    assert steps.compute_cost(Y, as_dict) == steps.compute_cost(Y, caches)
    for g, w in zip(steps.backward_propogation(X, Y, as_dict, params),
                    steps.backward_propogation(X, Y, caches, params)):
        np.testing.assert_array_equal(g, w)


def test_initialize_parameters_and_get_one_hot():
    np.random.seed(7)
    (Wxh, Whh, Why, bh, by), mems = steps.initialize_parameters(5, 3)
    np.random.seed(7)
    want = charrnn.init_params(5, 3)
    for got, w in zip((Wxh, Whh, Why, bh, by), want):
        np.testing.assert_array_equal(got, w)
    assert all(not m.any() and m.shape == a.shape for m, a in zip(mems, want))
    X, Y = steps.get_one_hot(2, {"a": 0, "b": 1, "c": 2}, "abcabca", 3, seq_length=4)
    np.testing.assert_array_equal(X.argmax(1), [2, 0, 1, 2])
    np.testing.assert_array_equal(Y.argmax(1), [0, 1, 2, 0])
    assert X.shape == Y.shape == (4, 3) and X.sum() == 4


def test_misuse_is_a_clear_error():
    X, Y, hprev, params = _case(4, 3, 5, 0.5, seed=0)
    with pytest.raises(ValueError, match=r"X\[2\] is not one-hot"):
        bad = X.copy()
        bad[2] = [0.5, 0.5, 0]
        steps.forward_propogation(bad, params, 5, hprev)
    with pytest.raises(ValueError, match="seq_length 6 needs at least 6"):
        steps.forward_propogation(X, params, 6, hprev)
    with pytest.raises(ValueError, match=r"shape \(seq_length, 3\)"):
        steps.forward_propogation(X[:, :2], params, 5, hprev)
    with pytest.raises(ValueError, match="hprev must have shape"):
        steps.forward_propogation(X, params, 5, hprev[:2])
    caches = steps.forward_propogation(X, params, 5, hprev)
    with pytest.raises(ValueError, match="Y has 4 rows"):
        steps.compute_cost(Y[:4], caches)
    with pytest.raises(ValueError, match="differs from the forward pass"):
        steps.backward_propogation(X, Y, caches, params, activation="sigmoid")
    with pytest.raises(ValueError, match="caches has no 'A3'"):
        steps.compute_cost(Y, {k: v for k, v in caches.items() if k != "A3"} | {"x": 0})
    with pytest.raises(ValueError, match="caches must be"):
        steps.backward_propogation(X, Y, [1, 2, 3], params)
    with pytest.raises(ValueError, match="caches must hold columns"):
        steps.compute_cost(Y, {"h0": 1, "A1": 2, "h1": 3})
    with pytest.raises(ValueError, match="caches has 1 entries"):
        steps.compute_cost(Y, {"h0": hprev})
    with pytest.raises(ValueError, match="caches' A must have dtype"):
        steps.compute_cost(Y, {k: v.astype(int) for k, v in caches.items()})
    with pytest.raises(ValueError, match="caches' arrays differ in shape"):
        steps.compute_cost(Y, dict(caches, A2=np.ones((4, 1))))
    other = random_params(np.random.RandomState(0), 5, 3, 0.1)
    with pytest.raises(ValueError, match=r"caches' h must have shape \(6, 5\)"):
        steps.backward_propogation(X, Y, caches, other)
    grads = steps.backward_propogation(X, Y, caches, params)
    mems = tuple(np.zeros_like(a) for a in params)
    with pytest.raises(ValueError, match="Wxh is updated in place"):
        steps.update_parameters((np.asfortranarray(params[0]),) + params[1:], grads, mems, 0.1)
    with pytest.raises(ValueError, match="mbh must hold sums of squares"):
        steps.update_parameters(params, grads, mems[:3] + (-np.ones((4, 1)),) + mems[4:], 0.1)
    with pytest.raises(ValueError, match="grads must be a tuple of five"):
        steps.update_parameters(params, grads[:4], mems, 0.1)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        steps.update_parameters(params, grads, mems, 0.0)
    with pytest.raises(ValueError, match="runs past the end"):
        steps.get_one_hot(5, {"a": 0}, "aaaaaa", 1, seq_length=1)
    with pytest.raises(ValueError, match="'z' of data is not in char_to_ix"):
        steps.get_one_hot(0, {"a": 0}, "aza", 1, seq_length=2)


def test_update_to_overflow_raises():
    params = tuple(np.full_like(a, 1e308) for a in random_params(np.random.RandomState(0), 3,
                                                                  2, 1.0))
    grads = tuple(-np.ones_like(a) for a in params)
    mems = tuple(np.zeros_like(a) for a in params)
    with pytest.raises(FloatingPointError, match="Wxh became non-finite"):
        steps.update_parameters(params, grads, mems, 1e308)
