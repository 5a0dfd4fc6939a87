"""Stacked cells through the public API: CharRNN/train against the numpy reference,
threads, split fits and checkpoints bit for bit, score, state_dict and PyTorch."""
import math

import numpy as np
import pytest
from conftest import POEM, assert_close

import charrnn
from charrnn import reference

CELLS = ["rnn", "lstm", "gru"]

TEXT = POEM * 3


def assert_params_match(model, ref, rtol):
    for (name, a), b in zip(model.state_dict().items(), ref.params.values()):
        assert_close(a, b, rtol, name)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_short_training_agrees_with_the_reference(cell, layers):
    """5 iterations of the model's loop against reference.stack_train, 1e-8."""
    options = dict(cell=cell, num_layers=layers, hidden_size=12, seq_length=7,
                   learning_rate=3e-3, num_iterations=5, seed=3, optimizer="adam",
                   dropout=0.25 if layers > 1 else 0.0, batch_size=3, clip_norm=2.0,
                   lr_schedule="cosine", warmup_iters=2, decay_iters=10)
    if cell == "rnn" and layers == 1:
        options["dropout"] = 0.3  # the stacked rnn, not the seeds' model
    model = charrnn.train(TEXT, **options)
    ref = reference.stack_train(TEXT, **options)
    assert_params_match(model, ref, 1e-8)
    assert_close(model.history.loss, ref.loss_history, 1e-10, "losses")
    assert_close(model.hprev, ref.state, 1e-8, "state")
    assert (model.pointer, model.iteration) == (ref.p, ref.n)


def test_the_seeds_model_is_unchanged():
    """cell='rnn', one layer, no dropout: still the seeds' model and parameters."""
    model = charrnn.train(TEXT, hidden_size=10, num_iterations=20)
    ref = reference.train(TEXT, hidden_size=10, num_iterations=20)
    assert len(model.params) == 5 and model.params[0].shape == (10, model.vocab_size)
    for a, b, name in zip(model.params, ref.params, ("Wxh", "Whh", "Why", "bh", "by")):
        assert_close(a, b, 1e-10, name)
    assert model.hprev.shape == (10, 1)


def test_step_schedule_and_clip_norm_on_the_seeds_model_follow_the_reference():
    """The seeds' loop with a schedule: the learning rate of each update is lr_at(n)."""
    options = dict(hidden_size=8, seq_length=9, learning_rate=0.1, seed=1)
    model = charrnn.train(TEXT, num_iterations=6, lr_schedule="step", lr_decay=0.5,
                          decay_every=2, **options)
    # by hand: the reference's seeds' step with the scheduled rate, clip then no norm clip
    ref = charrnn.train(TEXT, num_iterations=0, **options)
    for n in range(6):
        ref.learning_rate = charrnn.schedule.lr_at(n, 0.1, "step", lr_decay=0.5, decay_every=2)
        ref.fit(1)
    for a, b in zip(model.params, ref.params):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_one_and_two_threads_give_the_same_bits(cell):
    options = dict(cell=cell, num_layers=2, hidden_size=10, seq_length=6, num_iterations=4,
                   dropout=0.2, batch_size=9, optimizer="adam", learning_rate=1e-2)
    one = charrnn.train(TEXT, num_threads=1, **options)
    two = charrnn.train(TEXT, num_threads=2, **options)
    np.testing.assert_array_equal(one._flat, two._flat)
    np.testing.assert_array_equal(one.hprev, two.hprev)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_split_fits_and_a_checkpoint_resume_are_bit_exact(tmp_path, dtype):
    options = dict(cell="lstm", num_layers=2, hidden_size=10, seq_length=6, dropout=0.3,
                   batch_size=2, optimizer="adam", learning_rate=1e-2, dtype=dtype,
                   lr_schedule="cosine", warmup_iters=3, decay_iters=12, clip_norm=1.0)
    whole = charrnn.train(TEXT, num_iterations=12, **options)
    half = charrnn.train(TEXT, num_iterations=5, **options)
    half.save(tmp_path / "half.npz")
    resumed = charrnn.load(tmp_path / "half.npz")
    assert (resumed.cell, resumed.num_layers, resumed.dropout) == ("lstm", 2, 0.3)
    resumed.set_text(TEXT)
    resumed.fit(4)
    resumed.fit(3)
    for name in ("_flat", "_m1", "_m2", "_state"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(whole, name), name)
    np.testing.assert_array_equal(resumed.history.loss, whole.history.loss)
    assert resumed._dropout_rng.get_state()[2] == whole._dropout_rng.get_state()[2]


def test_format_1_checkpoints_still_load(tmp_path):
    """A seeds' model saved as format 1 (no cell fields, no dropout stream) loads."""
    import json
    import zipfile
    model = charrnn.train(TEXT, hidden_size=6, num_iterations=3)
    model.save(tmp_path / "new.npz")
    with zipfile.ZipFile(tmp_path / "new.npz") as z, \
            zipfile.ZipFile(tmp_path / "old.npz", "w") as out:
        for info in z.infolist():
            data = z.read(info)
            name = info.filename
            if name.startswith("dropout_rng_"):
                continue
            if name == "format_version.npy":
                data = _npy(np.array(1, np.int64))
            if name == "config.npy":
                config = json.loads(str(np.load(tmp_path / "new.npz")["config"]))
                for key in ("cell", "num_layers", "dropout", "clip_norm", "lr_schedule",
                            "warmup_iters", "decay_iters", "min_lr", "lr_decay", "decay_every",
                            "reset_every"):
                    del config[key]
                data = _npy(np.array(json.dumps(config)))
            out.writestr(name, data)
    old = charrnn.load(tmp_path / "old.npz")
    assert old.cell == "rnn" and old.num_layers == 1 and old.lr_schedule == "constant"
    np.testing.assert_array_equal(old._flat, model._flat)


def _npy(a):
    import io
    f = io.BytesIO()
    np.save(f, a)
    return f.getvalue()


@pytest.mark.parametrize("cell", CELLS)
def test_score_is_the_log_probability_of_each_next_character(cell):
    model = charrnn.train(TEXT, cell=cell, num_layers=2, hidden_size=8, num_iterations=5,
                          optimizer="adam", learning_rate=1e-2)
    ix = [model.char_to_ix[c] for c in POEM[:60]]
    expected = reference.stack_logprobs(ix, model.state_dict(), cell)  # from zeros
    got = model.score(POEM[:60], start="zero")
    assert got.dtype == np.float64 and got.shape == (59,)
    assert_close(got, expected, 1e-12, "log-probabilities")
    assert math.isclose(model.evaluate(POEM[:60], start="zero"), -got.mean(), rel_tol=1e-13)
    # with a prime: the state after the whole prime, then the text
    primed = model.score(POEM[60:90], prime=POEM[:60])
    whole = model.score(POEM[:90])
    assert_close(primed, whole[60:], 1e-12, "primed scores")


@pytest.mark.parametrize("start", ["zero", "carried"])
def test_score_and_evaluate_of_the_seeds_model(start):
    model = charrnn.train(TEXT, hidden_size=8, num_iterations=30)
    got = model.score(POEM[:50], start=start)
    Wxh, Whh, Why, bh, by = model.params
    h = np.zeros((8, 1)) if start == "zero" else model.hprev.copy()
    expected = []
    for a, b in zip(POEM[:49], POEM[1:50]):
        x = np.zeros((model.vocab_size, 1))
        x[model.char_to_ix[a]] = 1
        h = np.tanh(Wxh @ x + Whh @ h + bh)
        y = (Why @ h + by).ravel()
        expected.append(y[model.char_to_ix[b]] - y.max() - np.log(np.exp(y - y.max()).sum()))
    assert_close(got, np.array(expected), 1e-12, "log-probabilities")
    assert math.isclose(model.evaluate(POEM[:50], start=start), -got.mean(), rel_tol=1e-13)


def test_evaluate_of_an_encoded_text_equals_that_of_the_string():
    model = charrnn.train(TEXT, cell="gru", hidden_size=8, num_iterations=5)
    ix = charrnn.data.encode(TEXT, model.chars)
    assert model.evaluate(ix) == model.evaluate(TEXT)
    with pytest.raises(IndexError, match="outside the vocabulary"):
        model.evaluate(np.array([0, 1, 999]))


@pytest.mark.parametrize("cell", CELLS)
def test_sampling_a_stacked_model_follows_the_reference(cell):
    model = charrnn.train(TEXT, cell=cell, num_layers=2, hidden_size=8, num_iterations=5,
                          dropout=0.1, learning_rate=1e-2, optimizer="adam")
    state = model.hprev[:, :, 0, :].copy()
    expected = reference.stack_sample(state, None, 40, model.state_dict(), cell,
                                      np.random.RandomState(5))
    assert model.sample(40, seed=5) == "".join(model.chars[i] for i in expected)
    assert model.sample(20, prime="The ", top_k=3, seed=1) == \
        "".join(model.generate(20, prime="The ", top_k=3, seed=1))


def test_state_dict_round_trip_and_names():
    model = charrnn.train(TEXT, cell="lstm", num_layers=2, hidden_size=6, num_iterations=3)
    sd = model.state_dict()
    V = model.vocab_size
    assert [(k, v.shape) for k, v in sd.items()] == [
        ("weight_ih_l0", (24, V)), ("weight_hh_l0", (24, 6)), ("bias_ih_l0", (24,)),
        ("bias_hh_l0", (24,)), ("weight_ih_l1", (24, 6)), ("weight_hh_l1", (24, 6)),
        ("bias_ih_l1", (24,)), ("bias_hh_l1", (24,)), ("decoder.weight", (V, 6)),
        ("decoder.bias", (V,))]
    copy = charrnn.CharRNN.from_state_dict(model.chars, sd, cell="lstm")
    np.testing.assert_array_equal(copy._flat, model._flat)
    assert copy.num_layers == 2 and copy.hidden_size == 6
    sd["weight_hh_l1"] = sd["weight_hh_l1"][:, :5]
    with pytest.raises(ValueError, match=r"weight_hh_l1.*needs \(24, 6\)"):
        charrnn.CharRNN.from_state_dict(model.chars, sd, cell="lstm")
    with pytest.raises(ValueError, match="lacks"):
        charrnn.CharRNN.from_state_dict(model.chars, {"weight_hh_l0": np.zeros((24, 6))},
                                        cell="lstm")


def test_the_seeds_state_dict_names_its_weights_as_pytorch():
    model = charrnn.train(TEXT, hidden_size=6, num_iterations=3)
    sd = model.state_dict()
    Wxh, Whh, Why, bh, by = model.params
    np.testing.assert_array_equal(sd["weight_ih_l0"], Wxh)
    np.testing.assert_array_equal(sd["bias_ih_l0"], bh.ravel())
    assert not sd["bias_hh_l0"].any()
    back = charrnn.CharRNN.from_state_dict(model.chars, sd)
    np.testing.assert_array_equal(back._flat, model._flat)


@pytest.mark.parametrize("cell", CELLS)
def test_pytorch_gives_the_same_log_probabilities(cell):
    torch = pytest.importorskip("torch")
    model = charrnn.train(TEXT, cell=cell, num_layers=2, hidden_size=8, num_iterations=5,
                          optimizer="adam", learning_rate=1e-2, dropout=0.1)
    sd = model.state_dict()
    V = model.vocab_size
    rnn = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        V, 8, num_layers=2, dtype=torch.float64)
    dec = torch.nn.Linear(8, V, dtype=torch.float64)
    rnn.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()
                         if not k.startswith("decoder")})
    dec.load_state_dict({"weight": torch.from_numpy(sd["decoder.weight"]),
                         "bias": torch.from_numpy(sd["decoder.bias"])})
    ix = [model.char_to_ix[c] for c in POEM[:40]]
    x = torch.nn.functional.one_hot(torch.tensor(ix[:-1]), V).to(torch.float64)
    with torch.no_grad():
        out, _ = rnn(x[:, None, :])
        logp = torch.log_softmax(dec(out[:, 0, :]), -1)[torch.arange(39), torch.tensor(ix[1:])]
    assert_close(model.score(POEM[:40], start="zero"), logp.numpy(), 1e-12,
                 "torch log-probabilities")  # torch starts from zeros
    back = charrnn.CharRNN.from_state_dict(model.chars, {**rnn.state_dict(),
                                                         "decoder.weight": dec.weight,
                                                         "decoder.bias": dec.bias}, cell=cell)
    np.testing.assert_array_equal(back._flat, model._flat)


def test_bad_cell_options_are_refused():
    with pytest.raises(ValueError, match="cell must be one of"):
        charrnn.CharRNN("ab", cell="transformer")
    with pytest.raises(ValueError, match="num_layers must be >= 1"):
        charrnn.CharRNN("ab", num_layers=0)
    with pytest.raises(ValueError, match="dropout must be < 1"):
        charrnn.CharRNN("ab", cell="lstm", dropout=1.0)
    with pytest.raises(ValueError, match="activation='sigmoid' is the seeds'"):
        charrnn.CharRNN("ab", cell="lstm", activation="sigmoid")
    with pytest.raises(ValueError, match="bptt='none'"):
        charrnn.CharRNN("ab", cell="gru", bptt="none")
    m = charrnn.CharRNN("ab", cell="gru")
    with pytest.raises(ValueError, match="bptt='none'"):
        m.bptt = "none"
    with pytest.raises(ValueError, match="needs decay_iters"):
        charrnn.CharRNN("ab", lr_schedule="cosine")
    with pytest.raises(AttributeError, match="cell cannot be set"):
        m.cell = "lstm"
    with pytest.raises(AttributeError, match="dropout cannot be set"):
        m.dropout = 0.5


def test_train_fills_in_the_cosine_decay_from_the_run():
    model = charrnn.train(TEXT, hidden_size=6, num_iterations=7, lr_schedule="cosine")
    assert model.decay_iters == 7
    model = charrnn.train(TEXT, hidden_size=6, seq_length=10, epochs=2, lr_schedule="cosine")
    assert model.decay_iters == model.iteration == 2 * model.iterations_per_epoch()


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_data_changed_after_set_data_is_caught_by_the_kernel(cell):
    """A caller's array written to after set_data checked it: a clear error, no crash."""
    model = charrnn.CharRNN(sorted(set(TEXT)), 8, 10, cell=cell, batch_size=2)
    data = charrnn.data.encode(TEXT, model.chars).copy()
    model.set_data(data)
    model.fit(3)
    before = model._flat.copy()
    data[data.size // 2 + 100] = 250  # past the vocabulary, in stream 1's coming windows
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.fit(40)
    assert model.iteration < 43 and np.isfinite(model._flat).all()
    assert not np.array_equal(before, model._flat)  # the iterations before it were done
