"""Bad input gives a clear ValueError or IndexError, before any kernel runs."""
import numpy as np
import pytest
from conftest import POEM, random_params

import charrnn

H, V = 6, 5


@pytest.fixture
def args():
    rng = np.random.RandomState(0)
    params = random_params(rng, H, V, 0.1)
    return [0, 1, 2], [1, 2, 3], np.zeros((H, 1)), params


def replace_param(params, k, value):
    p = list(params)
    p[k] = value
    return tuple(p)


# -- lossFun --------------------------------------------------------------------------

@pytest.mark.parametrize("inputs,targets,exc,match", [
    ([0, 1, 5], [1, 2, 3], IndexError, r"inputs\[2\] = 5 is outside the vocabulary \[0, 5\)"),
    ([0, -1, 2], [1, 2, 3], IndexError, r"inputs\[1\] = -1 is outside"),
    ([0, 1, 2], [1, 2, 10**12], IndexError, r"targets\[2\] = 1000000000000 is outside"),
    ([0, 1], [1, 2, 3], ValueError, "same length, got 2 and 3"),
    ([], [], ValueError, "inputs is empty"),
    ([0.0, 1.0], [1, 2], ValueError, "must hold integers, got dtype float64"),
    ([True, False], [1, 2], ValueError, "must hold integers, got dtype bool"),
    ([[0, 1]], [[1, 2]], ValueError, "one-dimensional"),
    ("abc", [1, 2, 3], ValueError, "sequence of integer indices, not str"),
    ([0, None, 1], [1, 2, 3], ValueError, "must hold integers, got dtype object"),
    ([0, 2**70], [1, 2], ValueError, "must hold integers"),
])
def test_lossfun_bad_indices(args, inputs, targets, exc, match):
    _, _, hprev, params = args
    with pytest.raises(exc, match=match):
        charrnn.lossFun(inputs, targets, hprev, params)


@pytest.mark.parametrize("hprev,match", [
    (np.zeros(H), r"hprev must have shape \(6, 1\), got \(6,\)"),
    (np.zeros((H + 1, 1)), "hprev must have shape"),
    (np.zeros((H, 1), np.float32), "hprev has dtype float32, but the parameters are float64"),
    (np.zeros((H, 1), int), "hprev must have dtype float64 or float32"),
    (np.full((H, 1), np.nan), "hprev contains NaN"),
    ([[0.0]] * H, "hprev must be a numpy array"),
])
def test_lossfun_bad_hprev(args, hprev, match):
    inputs, targets, _, params = args
    with pytest.raises(ValueError, match=match):
        charrnn.lossFun(inputs, targets, hprev, params)


@pytest.mark.parametrize("k,value,match", [
    (1, np.zeros((H, H + 1)), r"Whh must have shape \(6, 6\)"),
    (2, np.zeros((V, H)).T, r"Why must have shape \(5, 6\)"),
    (3, np.zeros(H), r"bh must have shape \(6, 1\)"),
    (4, np.zeros((V, 1), np.float32), "by has dtype float32"),
    (0, np.zeros((H, V), np.int64), "Wxh must be a 2-D array|dtype float64 or float32"),
    (2, np.full((V, H), np.inf), "Why contains NaN or infinite"),
    (1, np.zeros((H, H), object), "dtype float64 or float32"),
    (0, np.zeros(H), r"Wxh must be a 2-D array of shape \(H, V\)"),
    (0, np.zeros((0, V)), "sizes must be >= 1"),
])
def test_lossfun_bad_params(args, k, value, match):
    inputs, targets, hprev, params = args
    with pytest.raises(ValueError, match=match):
        charrnn.lossFun(inputs, targets, hprev, replace_param(params, k, value))


def test_lossfun_params_must_be_five_arrays(args):
    inputs, targets, hprev, params = args
    for bad in (params[:4], None, list(params) + [params[0]]):
        with pytest.raises(ValueError, match="five arrays"):
            charrnn.lossFun(inputs, targets, hprev, bad)


@pytest.mark.parametrize("kw,match", [
    (dict(activation="relu"), "activation must be one of"),
    (dict(bptt="truncated"), "bptt must be one of"),
    (dict(clip=-1.0), "clip must be > 0"),
    (dict(clip=float("nan")), "clip must be finite"),
])
def test_lossfun_bad_options(args, kw, match):
    with pytest.raises(ValueError, match=match):
        charrnn.lossFun(*args, **kw)


def test_read_only_arrays_are_fine(args):
    inputs, targets, hprev, params = args
    want = charrnn.lossFun(inputs, targets, hprev, params)
    ro = []
    for a in params + (hprev,):
        a = a.copy()
        a.flags.writeable = False
        ro.append(a)
    got = charrnn.lossFun(np.array(inputs), np.array(targets), ro[5], tuple(ro[:5]))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


# -- sample and init_params -------------------------------------------------------------

@pytest.mark.parametrize("seed_ix,n,rng,exc,match", [
    (5, 10, 0, IndexError, r"seed_ix = 5 is outside the vocabulary \[0, 5\)"),
    (-1, 10, 0, IndexError, "seed_ix = -1 is outside"),
    (1.5, 10, 0, ValueError, "seed_ix must be an integer"),
    (0, -1, 0, ValueError, "n must be >= 0"),
    (0, 2.0, 0, ValueError, "n must be an integer"),
    (0, 10, "seed", ValueError, "rng must be None, an int seed or a numpy.random.RandomState"),
    (0, 10, -3, ValueError, r"int seed must be in \[0, 2\*\*32\)"),
])
def test_sample_bad_arguments(args, seed_ix, n, rng, exc, match):
    _, _, h, params = args
    with pytest.raises(exc, match=match):
        charrnn.sample(h, seed_ix, n, params, rng)


@pytest.mark.parametrize("kw,match", [
    (dict(temperature=0), "temperature must be > 0"),
    (dict(temperature=-1), "temperature must be > 0"),
    (dict(top_k=0), "top_k must be >= 1"),
])
def test_sample_bad_controls(args, kw, match):
    _, _, h, params = args
    with pytest.raises(ValueError, match=match):
        charrnn.sample(h, 0, 5, params, 0, **kw)


@pytest.mark.parametrize("H_,V_,match", [
    (0, 5, "hidden_size must be >= 1"), (5, -2, "vocab_size must be >= 1"),
    (2.5, 5, "hidden_size must be an integer"), (True, 5, "hidden_size must be an integer"),
])
def test_init_params_bad_sizes(H_, V_, match):
    with pytest.raises(ValueError, match=match):
        charrnn.init_params(H_, V_)


# -- train and CharRNN ---------------------------------------------------------------------

@pytest.mark.parametrize("text,kw,match", [
    ("", {}, "text is empty"),
    (b"bytes", {}, "text must be a str"),
    ("abc", {}, r"text has 3 characters; training needs at least seq_length \+ 1 = 26"),
    (POEM, dict(hidden_size=0), "hidden_size must be >= 1"),
    (POEM, dict(seq_length=0), "seq_length must be >= 1"),
    (POEM, dict(learning_rate=0), "learning_rate must be > 0"),
    (POEM, dict(learning_rate=-0.1), "learning_rate must be > 0"),
    (POEM, dict(learning_rate=float("inf")), "learning_rate must be finite"),
    (POEM, dict(num_iterations=-1), "num_iterations must be >= 0"),
    (POEM, dict(num_iterations=10, epochs=1), "exactly one of num_iterations and epochs"),
    (POEM, dict(optimizer="lbfgs"), "optimizer must be one of"),
    (POEM, dict(dtype="float16"), "dtype must be 'float64' or 'float32'"),
    (POEM, dict(beta2=1.0), "beta2 must be < 1"),
    (POEM, dict(seed=-1), "seed must be >= 0"),
    (POEM, dict(callback=3), "callback must be callable"),
])
def test_train_bad_arguments(text, kw, match):
    with pytest.raises(ValueError, match=match):
        charrnn.train(text, **kw)


def test_one_character_vocabulary_trains_to_zero_loss():
    model = charrnn.train("a" * 100, hidden_size=4, num_iterations=5)
    assert model.vocab_size == 1
    assert np.all(model.history.loss == 0)
    assert model.sample(5) == "aaaaa"


def test_shortest_text_that_trains():
    model = charrnn.train("abcdef", seq_length=5, hidden_size=3, num_iterations=4)
    assert model.iteration == 4 and model.pointer == 5  # wrapped to 0 each iteration


def test_fit_needs_text_and_training_twice_at_once_is_refused():
    model = charrnn.CharRNN(list("ab"), hidden_size=3)
    with pytest.raises(ValueError, match="no training text"):
        model.fit(1)
    model.set_text("ab" * 40)
    model._lock.acquire()
    try:
        with pytest.raises(RuntimeError, match="being trained by another thread"):
            model.fit(1)
    finally:
        model._lock.release()
    model.fit(1)


def test_charrnn_bad_vocabulary():
    with pytest.raises(ValueError, match="repeated"):
        charrnn.CharRNN(["a", "a"])
    with pytest.raises(ValueError, match="single characters"):
        charrnn.CharRNN(["ab"])
    with pytest.raises(ValueError, match="empty"):
        charrnn.CharRNN([])


def test_set_text_with_characters_outside_the_vocabulary():
    model = charrnn.CharRNN(list("ab"), hidden_size=3, seq_length=2)
    with pytest.raises(ValueError, match="not in the vocabulary: 'cz'"):
        model.set_text("abzabcab")


# -- CharRNN's attributes: options can change between fits, the rest is read-only -----------

def test_options_changed_between_fits_apply_to_the_next_fit():
    model = charrnn.train(POEM, hidden_size=8, num_iterations=3)
    assert model.pointer == 75
    model.seq_length, model.optimizer, model.num_threads = 10, "adam", None
    model.fit(2)
    assert (model.pointer, model.iteration, len(model.history)) == (95, 5, 5)
    assert model.num_threads >= 1
    with pytest.raises(ValueError, match=r"the training data has \d+ characters; training "
                                         r"needs at least seq_length \+ 1"):
        model.seq_length = len(POEM)
    assert model.seq_length == 10, "a refused value is not kept"


@pytest.mark.parametrize("attr,advice", [
    ("hidden_size", r"build a new CharRNN\(\.\.\., hidden_size=\.\.\.\)"),
    ("dtype", r"build a new CharRNN\(\.\.\., dtype=\.\.\.\)"),
    ("seed", r"model\.rng\.seed\(s\) or sample\(\.\.\., seed=s\)"),
    ("vocab_size", "build a new CharRNN with the new chars"),
    ("hprev", r"write into it in place \(model\.hprev\[\.\.\.\] = 0"),
    ("epoch", r"only fit \(or charrnn\.load\) moves it"),
])
def test_read_only_attributes_say_what_to_do_instead(attr, advice):
    model = charrnn.CharRNN(list("ab"), hidden_size=3)
    with pytest.raises(AttributeError, match=f"{attr} cannot be set: .*{advice}"):
        setattr(model, attr, getattr(model, attr))


@pytest.mark.parametrize("state,match", [
    (dict(iteration=2**62 + 1), r"iteration = 4611686018427387905 is out of range \[0, 2\*\*62\]"),
    (dict(iteration=-1), "iteration must be >= 0"),
    (dict(pointer=2**64), "pointer = 18446744073709551616 is out of range"),
    (dict(epoch=1.5), "epoch must be an integer"),
    (dict(schedule="weekly"), "unknown schedule 'weekly'"),
    (dict(smooth_loss=float("inf")), "smooth_loss must be finite"),
])
def test_restoring_where_training_stands_is_checked(state, match):
    model = charrnn.CharRNN(list("ab"), hidden_size=3)
    good = dict(iteration=2**62, pointer=3, epoch=1, schedule="epochs", smooth_loss=1.5)
    model._restore(**good)
    assert (model.iteration, model.pointer, model.schedule) == (2**62, 3, "epochs")
    with pytest.raises(ValueError, match=match):
        model._restore(**{**good, **state})
