"""The kernel builds themselves: vector math against numpy, both builds against the
reference, minibatch streams against the numpy minibatch loop, threads, float32."""
import numpy as np
import pytest
from conftest import PARAM_NAMES, POEM, assert_close, random_params, rel_diff

import charrnn
from charrnn import _dispatch, _stack, core, nets, reference


def available_builds():
    """(name, module or None, why it is missing) for every build of the kernels."""
    builds = [("baseline", _dispatch.load("baseline")[0], "")]
    for name, cpu_has in [("avx2", _dispatch._baseline.cpu_has_avx2_fma),
                          ("avx512", _dispatch._baseline.cpu_has_avx512)]:
        if not cpu_has():
            builds.append((name, None, f"this CPU cannot run the {name} build"))
            continue
        try:
            builds.append((name, _dispatch.load(name)[0], ""))
        except ImportError:  # a build without the vector variants (not x86-64)
            builds.append((name, None, f"this installation has no {name} build"))
    return builds


ALL_BUILDS = available_builds()
BUILDS = [(name, module) for name, module, _ in ALL_BUILDS if module is not None]


@pytest.fixture(params=[pytest.param(name, marks=pytest.mark.skipif(module is None, reason=why))
                        for name, module, why in ALL_BUILDS])
def build(request, monkeypatch):
    """Run the public API on one build of the kernels (skipped where it cannot run)."""
    module = dict(BUILDS)[request.param]
    for user in (core, nets, _stack):  # every module that calls the kernels
        monkeypatch.setattr(user, "_kernels", module)
    return module


def test_dispatch_picks_the_widest_build_the_cpu_runs_and_obeys_the_override(monkeypatch):
    info = charrnn.kernel_info()
    assert info["variant"] in ("baseline", "avx2", "avx512")
    assert info["threads"] >= 1
    assert _dispatch.load("baseline")[1] == "baseline"
    monkeypatch.delenv("CHARRNN_KERNELS", raising=False)
    assert _dispatch.load()[1] == BUILDS[-1][0]     # the widest that can run here
    for name, module in BUILDS:
        monkeypatch.setenv("CHARRNN_KERNELS", name)
        assert _dispatch.load() == (module, name)
    for name, module, why in ALL_BUILDS:
        if module is None and "CPU" in why:
            monkeypatch.setenv("CHARRNN_KERNELS", name)
            with pytest.raises(ImportError, match="this CPU has no"):
                _dispatch.load()
    monkeypatch.setenv("CHARRNN_KERNELS", "sse9")
    with pytest.raises(ValueError, match="CHARRNN_KERNELS must be one of"):
        _dispatch.load()


@pytest.mark.parametrize("dtype,ulps", [(np.float64, 4), (np.float32, 2)])
def test_vector_math_is_accurate(build, dtype, ulps):
    eps = np.finfo(dtype).eps
    rng = np.random.RandomState(0)
    x = np.concatenate([rng.uniform(-3, 3, 20000), rng.uniform(-40, 40, 20000),
                        [0.0, -0.0, 0.624999, 0.625, 0.625001, -0.625, 1e-300, -1e-12, 20.0,
                         -30.0, 700.0, -700.0]]).astype(dtype)
    for name, fn, want in [("tanh", build._vec_tanh, np.tanh(x.astype(np.float64))),
                           ("sigmoid", build._vec_sigmoid,
                            1 / (1 + np.exp(-x.astype(np.float64))))]:
        got = x.copy()
        fn(got)
        # relative error, with an absolute floor at the smallest normal number (a
        # sigmoid of -700 is 1e-304 in double and rounds to about 0 in float32)
        tiny = np.finfo(dtype).tiny
        err = np.maximum(np.abs(got - want) - tiny, 0) / np.maximum(np.abs(want), tiny)
        assert err.max() <= ulps * eps, f"{name}: {err.max() / eps:.2f} ulp"
    y = rng.uniform(-700, 0, 5000).astype(dtype) if dtype == np.float64 else \
        rng.uniform(-80, 0, 5000).astype(dtype)
    got = y.copy()
    total = build._vec_exp_shift(got, 0.0)
    want = np.exp(y.astype(np.float64))
    err = np.abs(got - want) / want
    assert err.max() <= ulps * eps, f"exp: {err.max() / eps:.2f} ulp"
    assert abs(total - got.sum(dtype=np.float64)) <= 1e-6 * abs(total)


@pytest.mark.parametrize("H,V,T", [(1, 1, 1), (7, 3, 5), (33, 65, 25), (100, 65, 25),
                                   (129, 17, 40)])
def test_each_build_matches_the_reference(build, H, V, T):
    rng = np.random.RandomState(H + V + T)
    params = random_params(rng, H, V, 0.5, rho=0.9)
    inputs, targets = rng.randint(V, size=T), rng.randint(V, size=T)
    hprev = np.tanh(rng.randn(H, 1))
    for activation in ("tanh", "sigmoid"):
        got = charrnn.lossFun(inputs, targets, hprev, params, activation=activation)
        want = reference.lossFun(inputs, targets, hprev, params, activation=activation)
        for k, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, 1e-12, f"{activation} output {k} (H={H} V={V} T={T})")
    h = np.tanh(rng.randn(H, 1))
    assert charrnn.sample(h, 0, 500, params, 7) == reference.sample(h, 0, 500, params, 7)


def test_each_build_trains_like_the_reference(build):
    kw = dict(hidden_size=48, seed=1, num_iterations=5)
    got, want = charrnn.train(POEM, **kw), reference.train(POEM, **kw)
    for name, g, w in zip(PARAM_NAMES, got.params, want.params):
        assert_close(g, w, 1e-9, f"{name} after 5 iterations")


@pytest.mark.parametrize("B", [2, 5, 9])
@pytest.mark.parametrize("options", [
    dict(num_iterations=6),
    dict(epochs=1, optimizer="sgd", clip=None, activation="sigmoid", reset_each_epoch=True),
    dict(num_iterations=6, optimizer="adam", learning_rate=0.01, bptt="none", clip=1.0),
], ids=["seeds", "epochs-sgd-sigmoid", "adam-elman"])
def test_minibatch_streams_match_the_numpy_minibatch_loop(B, options):
    text = POEM * 2
    if "epochs" in options:
        text = text[: B * 120]
    kw = dict(hidden_size=24, seq_length=10, seed=2, batch_size=B, **options)
    got = charrnn.train(text, **kw)
    want = reference.train(text, **kw)
    assert got.iteration == want.n and got.pointer == want.p
    for name, g, w in zip(PARAM_NAMES, got.params, want.params):
        assert_close(g, w, 1e-9, f"B={B} {name}")
    assert_close(got.hprev, want.hprev, 1e-9, f"B={B} hprev")
    assert_close(got.history.loss, want.loss_history, 1e-10, f"B={B} loss history")


def test_batch_size_one_is_the_seeds_loop_exactly():
    a = charrnn.train(POEM, hidden_size=20, num_iterations=40, seed=4)
    b = charrnn.train(POEM, hidden_size=20, num_iterations=40, seed=4, batch_size=1,
                      num_threads=2)
    for x, y in zip(a.params, b.params):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("B", [3, 8, 50])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_results_do_not_depend_on_the_number_of_threads(B, dtype):
    text = charrnn.default_corpus()[:30000]
    runs = []
    for threads in (1, 2, 3):
        m = charrnn.train(text, hidden_size=32, seq_length=12, num_iterations=15, seed=6,
                          batch_size=B, num_threads=threads, dtype=dtype)
        runs.append(m)
    for m in runs[1:]:
        for x, y in zip(m.params, runs[0].params):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(m.hprev, runs[0].hprev)
        np.testing.assert_array_equal(m.history.loss, runs[0].history.loss)


def test_minibatch_split_training_is_bit_for_bit_and_survives_a_checkpoint(tmp_path):
    text = charrnn.default_corpus()[:20000]
    kw = dict(hidden_size=16, seq_length=10, seed=3, batch_size=6, num_threads=2)
    whole = charrnn.train(text, num_iterations=40, **kw)
    part = charrnn.train(text, num_iterations=20, **kw)
    part.save(tmp_path / "m.npz")
    again = charrnn.load(tmp_path / "m.npz")
    again.set_text(text)
    again.fit(20)
    for x, y in zip(again.params, whole.params):
        np.testing.assert_array_equal(x, y)
    assert again.batch_size == 6


def test_minibatch_text_must_hold_every_stream():
    with pytest.raises(ValueError, match=r"batch_size \* \(seq_length \+ 1\) = 52"):
        charrnn.train("ab" * 20, seq_length=12, batch_size=4)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        charrnn.train(POEM, batch_size=0)
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        charrnn.train(POEM, num_threads=0)


def test_float32_training_follows_the_float64_reference_at_float32_tolerance():
    """3 iterations. Adagrad divides small gradients by ~1e-4 (sqrt(d*d + 1e-8)), so
    float32's 1e-7 rounding of a gradient becomes up to ~1e-3 of the largest weight."""
    kw = dict(hidden_size=64, seed=5, num_iterations=3)
    got = charrnn.train(POEM, dtype="float32", **kw)
    want = reference.train(POEM, **kw)
    assert got.params[0].dtype == np.float32
    for name, g, w in zip(PARAM_NAMES, got.params, want.params):
        assert_close(g, w, 1e-3, f"float32 {name}")
    assert_close(got.history.loss, want.loss_history, 1e-5, "float32 loss history")


def test_float32_long_run_learns_like_float64():
    """Statistics, not bits: float32 is a far larger perturbation of the chaotic loop
    than any rounding order, so compare the mean over four runs (initial weights
    nudged by k * 1e-7) of the smooth loss averaged over the last 1000 iterations."""
    text = charrnn.default_corpus()[:2000]

    def tail_loss(dtype, nudge):
        m = charrnn.CharRNN(sorted(set(text)), hidden_size=32, seed=0, dtype=dtype)
        m._flat *= 1 + nudge
        m.set_text(text)
        m.fit(3000)
        return m.history.smooth_loss[-1000:].mean()

    f32 = np.mean([tail_loss("float32", k * 1e-7) for k in range(4)])
    f64 = np.mean([tail_loss("float64", k * 1e-7) for k in range(4)])
    assert abs(f32 - f64) < 0.03 * f64, (f32, f64)


@pytest.mark.parametrize("dtype,H,tol", [(np.float64, 180, 1e-12), (np.float32, 180, 2e-5),
                                         (np.float32, 64, 2e-5)])
def test_both_matrix_vector_forms_match_the_reference(build, dtype, H, tol):
    """Whh above 100 kB takes the dot form, below it the row form (see matvec)."""
    rng = np.random.RandomState(H)
    V, T = 40, 30
    params = random_params(rng, H, V, 0.3, rho=0.9)
    inputs, targets = rng.randint(V, size=T), rng.randint(V, size=T)
    hprev = np.tanh(rng.randn(H, 1))
    want = reference.lossFun(inputs, targets, hprev, params)
    got = charrnn.lossFun(inputs, targets, hprev.astype(dtype),
                          tuple(a.astype(dtype) for a in params))
    for k, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, tol, f"{np.dtype(dtype).name} H={H} output {k}")
    if dtype == np.float64:
        h = np.tanh(rng.randn(H, 1))
        assert charrnn.sample(h, 1, 300, params, 3) == reference.sample(h, 1, 300, params, 3)
