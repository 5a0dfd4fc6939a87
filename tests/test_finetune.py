"""Fine-tuning: CharRNN.init_from, charrnn.fine_tune and charrnn train --init-from.

The model (shape, vocabulary, weights) comes from the checkpoint, bit for bit; training
starts afresh; --extend-vocab adds characters with a new model's weights and leaves the
old ones' untouched."""
import json

import numpy as np
import pytest
from conftest import POEM
from test_cli import CHARRNN, assert_error, run  # noqa: F401

import charrnn
from charrnn import CharRNN

NEW_TEXT = "Zounds! Quoth the raven, 'Nevermore' ~ and so it went on.\n" * 8
CELLS = [("rnn", 1), ("lstm", 2), ("gru", 1)]
CELL_IDS = ["seeds-rnn", "lstm-2", "gru"]
DTYPES = ["float64", "float32"]


def trained(cell="rnn", num_layers=1, dtype="float64", **options):
    return charrnn.train(POEM, hidden_size=12, num_iterations=60, seed=3, cell=cell,
                         num_layers=num_layers, dtype=dtype, **options)


@pytest.fixture(scope="module")
def base():
    return trained(optimizer="adam", learning_rate=0.01, clip=2.0)


#: The axis of each array with an entry per character (the rest have none).
V_AXIS = {"Wxh": 1, "Why": 0, "by": 0,
          "weight_ih_l0": 1, "decoder.weight": 0, "decoder.bias": 0}


def named(model):
    return [name for name, _, _ in model._net.layout]


def old_positions(old, new):
    return [new.char_to_ix[c] for c in old.chars]


# -- CharRNN.init_from ---------------------------------------------------------------------

def test_weights_are_kept_and_training_starts_afresh(base):
    model = CharRNN.init_from(base, POEM[:50])
    assert model.chars == base.chars and model is not base
    assert np.array_equal(model._flat, base._flat) and model._flat is not base._flat
    assert model.iteration == model.pointer == model.epoch == 0
    assert len(model.history) == 0 and model.history.val_loss.size == 0
    assert model.schedule is None
    assert not model.hprev.any() and not model._m1.any() and not model._m2.any()
    assert model.smooth_loss == CharRNN(base.chars, 12, seed=3).smooth_loss
    for name in ("hidden_size", "cell", "num_layers", "dropout", "activation", "dtype",
                 "optimizer", "learning_rate", "clip", "seq_length", "seed"):
        assert getattr(model, name) == getattr(base, name), name
    assert base.iteration == 60 and len(base.history) == 60  # the source is unchanged


def test_keep_optimizer_keeps_m1_and_m2(base):
    model = CharRNN.init_from(base, keep_optimizer=True)
    assert np.array_equal(model._m1, base._m1) and np.array_equal(model._m2, base._m2)
    assert base._m1.any() and model.iteration == 0


def test_training_options_may_be_given_anew(base):
    model = CharRNN.init_from(base, learning_rate=0.002, seq_length=9, batch_size=2,
                              optimizer="rmsprop", clip=None, seed=8, num_threads=1,
                              hidden_size=12, cell="rnn", dtype="float64")
    assert (model.learning_rate, model.seq_length, model.batch_size) == (0.002, 9, 2)
    assert (model.optimizer, model.clip, model.seed) == ("rmsprop", None, 8)
    assert model.hprev.shape == (2, 12)
    assert np.array_equal(model._flat, base._flat)


@pytest.mark.parametrize("option, value", [
    ("hidden_size", 13), ("cell", "gru"), ("num_layers", 2), ("dropout", 0.1),
    ("activation", "sigmoid"), ("dtype", "float32")])
def test_a_different_model_option_is_refused(base, option, value):
    with pytest.raises(ValueError, match=f"{option}=.* differs from the model fine-tuned"):
        CharRNN.init_from(base, **{option: value})


def test_unknown_options_and_bad_chars_are_refused(base):
    with pytest.raises(TypeError, match="unexpected option 'hiden_size'"):
        CharRNN.init_from(base, hiden_size=12)
    with pytest.raises(ValueError, match="single characters"):
        CharRNN.init_from(base, ["ab"])


def test_characters_outside_the_vocabulary_are_named(base):
    with pytest.raises(ValueError, match=r"3 character\(s\) are not in the vocabulary.*"
                                         r"'QZ~'.*extend_vocab=True"):
        CharRNN.init_from(base, "Zebra ~ Queen")


def test_init_from_a_checkpoint_path(base, tmp_path):
    base.save(tmp_path / "m.npz")
    model = CharRNN.init_from(tmp_path / "m.npz", keep_optimizer=True)
    assert np.array_equal(model._flat, base._flat) and np.array_equal(model._m2, base._m2)


# -- extending the vocabulary ----------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell, num_layers", CELLS, ids=CELL_IDS)
def test_extend_vocab_keeps_old_weights_and_draws_new_ones_as_a_new_model(cell, num_layers,
                                                                           dtype):
    old = trained(cell, num_layers, dtype)
    model = CharRNN.init_from(old, NEW_TEXT, extend_vocab=True, keep_optimizer=True)
    added = sorted(set(NEW_TEXT) - set(old.chars))
    assert model.chars == sorted(set(old.chars) | set(added)) and model.dtype == old.dtype
    pos = old_positions(old, model)
    new = [model.char_to_ix[c] for c in added]
    fresh = CharRNN(model.chars, 12, seed=3, cell=cell, num_layers=num_layers, dtype=dtype)
    for what, a, b, f in (("weights", old._flat, model._flat, fresh._flat),
                          ("m1", old._m1, model._m1, np.zeros_like(fresh._flat)),
                          ("m2", old._m2, model._m2, np.zeros_like(fresh._flat))):
        for name, x, y, z in zip(named(old), old._net.params(a), model._net.params(b),
                                 fresh._net.params(f)):
            axis = V_AXIS.get(name)
            if axis is None:
                assert np.array_equal(y, x), f"{what} {name}"
                continue
            x, y, z = (np.moveaxis(v, axis, 0) for v in (x, y, z))
            assert np.array_equal(y[pos], x), f"{what} {name}: old characters"
            assert np.array_equal(y[new], z[new]), f"{what} {name}: added characters"


@pytest.mark.parametrize("cell, num_layers", CELLS, ids=CELL_IDS)
def test_extend_vocab_keeps_the_old_characters_logits(cell, num_layers):
    """The same state after a prime of old characters, so the same logits for them: the
    log-probabilities of old characters differ from the old model's by one constant per
    step (the new characters' share of the normaliser)."""
    old = trained(cell, num_layers)
    model = CharRNN.init_from(old, NEW_TEXT, extend_vocab=True)
    prime = "And be one traveler"
    s_old, s_new = old._net.zero_stream_state(old.dtype), model._net.zero_stream_state(old.dtype)
    old._net.advance(old._flat, s_old, old._encode_prime(prime))
    model._net.advance(model._flat, s_new, model._encode_prime(prime))
    assert np.array_equal(s_old, s_new)
    context = "And be one trave"
    for a, b in ("le", "lw", "ao", " r", "Ad"):
        gap_old = (old.score(context + a, start="zero")[-1]
                   - old.score(context + b, start="zero")[-1])
        gap_new = (model.score(context + a, start="zero")[-1]
                   - model.score(context + b, start="zero")[-1])
        assert abs(gap_new - gap_old) <= 1e-12 * max(1.0, abs(gap_old)), (a, b)
    assert (model.score(context + "e", start="zero")[-1]
            < old.score(context + "e", start="zero")[-1])


def test_extend_vocab_of_the_seeds_model_by_rows():
    old = trained()
    model = CharRNN.init_from(old, NEW_TEXT, extend_vocab=True)
    pos = old_positions(old, model)
    (Wxh0, Whh0, Why0, bh0, by0), (Wxh, Whh, Why, bh, by) = old.params, model.params
    assert np.array_equal(Wxh[:, pos], Wxh0) and np.array_equal(Why[pos], Why0)
    assert np.array_equal(by[pos], by0) and np.array_equal(Whh, Whh0)
    assert np.array_equal(bh, bh0)
    assert model.sample(300, prime="And ", seed=1)  # samples from the larger vocabulary


# -- charrnn.fine_tune ------------------------------------------------------------------------

def test_fine_tune_is_init_from_then_fit(base):
    got = charrnn.fine_tune(base, NEW_TEXT, 40, extend_vocab=True, learning_rate=0.005,
                            seq_length=10)
    want = CharRNN.init_from(base, NEW_TEXT, extend_vocab=True, learning_rate=0.005,
                             seq_length=10)
    want.set_text(NEW_TEXT)
    want.fit(40)
    assert np.array_equal(got._flat, want._flat) and got.iteration == 40
    assert np.array_equal(got.history.loss, want.history.loss)
    assert base.iteration == 60 and base.vocab_size < got.vocab_size


def test_fine_tune_an_encoded_text_maps_its_indices_to_the_model(base):
    chars = sorted(set(NEW_TEXT))
    indices = np.array([chars.index(c) for c in NEW_TEXT], np.uint8)
    got = charrnn.fine_tune(base, (indices, chars), 30, extend_vocab=True)
    want = charrnn.fine_tune(base, NEW_TEXT, 30, extend_vocab=True)
    assert np.array_equal(got._flat, want._flat)
    with pytest.raises(IndexError, match="outside the text's vocabulary"):
        charrnn.fine_tune(base, (np.r_[indices, 200].astype(np.uint8), chars), 1,
                          extend_vocab=True)


def test_fine_tune_cosine_decays_over_this_run(base):
    model = charrnn.fine_tune(base, POEM, 30, lr_schedule="cosine")
    assert model.decay_iters == 30


def test_a_fine_tuned_model_resumes_exactly(base, tmp_path):
    straight = charrnn.fine_tune(base, NEW_TEXT, 50, extend_vocab=True)
    half = charrnn.fine_tune(base, NEW_TEXT, 25, extend_vocab=True)
    half.save(tmp_path / "half.npz")
    resumed = charrnn.load(tmp_path / "half.npz")
    resumed.set_text(NEW_TEXT)
    resumed.fit(25)
    assert np.array_equal(resumed._flat, straight._flat)
    assert np.array_equal(resumed.history.loss, straight.history.loss)


# -- charrnn train --init-from -----------------------------------------------------------------

@pytest.fixture
def ckpt(tmp_path):
    model = trained(optimizer="adam", learning_rate=0.01)
    model.save(tmp_path / "base.npz")
    (tmp_path / "new.txt").write_text(NEW_TEXT, encoding="utf-8")
    (tmp_path / "poem.txt").write_text(POEM, encoding="utf-8")
    return tmp_path, model


def test_cli_fine_tunes_as_the_api_does(ckpt):
    work, base = ckpt
    run("train", "new.txt", "--init-from", "base.npz", "--extend-vocab", "--iterations", "30",
        "--learning-rate", "0.003", "--val-frac", "0", "--checkpoint", "ft.npz", "--quiet",
        cwd=work)
    got, meta = charrnn.load_with_meta(work / "ft.npz")
    want = charrnn.fine_tune(base, NEW_TEXT, 30, extend_vocab=True, learning_rate=0.003)
    assert np.array_equal(got._flat, want._flat) and got.iteration == 30
    assert np.array_equal(got.history.loss, want.history.loss)
    assert got.optimizer == "adam" and got.learning_rate == 0.003
    assert meta["init_from"] == str(work / "base.npz")


def test_cli_keep_optimizer(ckpt):
    work, base = ckpt
    run("train", "poem.txt", "--init-from", "base.npz", "--keep-optimizer", "--iterations",
        "20", "--val-frac", "0", "--checkpoint", "ft.npz", "--quiet", cwd=work)
    want = charrnn.fine_tune(base, POEM, 20, keep_optimizer=True)
    assert np.array_equal(charrnn.load(work / "ft.npz")._m2, want._m2)


def test_cli_fine_tuned_checkpoint_resumes_as_any_other(ckpt):
    work, _ = ckpt
    common = ["--val-frac", "0", "--quiet", "--seq-length", "12"]
    run("train", "new.txt", "--init-from", "base.npz", "--extend-vocab", "--iterations",
        "40", "--checkpoint", "a.npz", *common, cwd=work)
    run("train", "new.txt", "--init-from", "base.npz", "--extend-vocab", "--iterations",
        "20", "--checkpoint", "b.npz", *common, cwd=work)
    run("train", "--resume", "b.npz", "--iterations", "40", "--quiet", cwd=work)
    a, b = charrnn.load(work / "a.npz"), charrnn.load(work / "b.npz")
    assert np.array_equal(a._flat, b._flat) and b.iteration == 40


@pytest.mark.parametrize("args, fragments", [
    (["new.txt", "--init-from", "base.npz"],
     ["new.txt has", "not in the vocabulary of base.npz", "--extend-vocab adds them"]),
    (["--init-from", "base.npz", "--hidden-size", "50"],
     ["base.npz has --hidden-size 12, not 50", "leave --hidden-size out"]),
    (["--init-from", "base.npz", "--cell", "lstm"], ["base.npz has --cell rnn, not lstm"]),
    (["--init-from", "base.npz", "--resume", "base.npz"], ["give one of them"]),
    (["--keep-optimizer"], ["--keep-optimizer applies to fine-tuning"]),
    (["--extend-vocab"], ["--extend-vocab applies to fine-tuning"]),
    (["--init-from", "base.npz", "--preset", "fast"], ["--preset", "--init-from"]),
    (["--init-from", "base.npz", "--bytes"], ["base.npz is a model of characters"]),
    (["--init-from", "nothere.npz"], ["no such checkpoint: nothere.npz"]),
    (["poem.txt", "--init-from", "base.npz", "--checkpoint", "base.npz"],
     ["cannot write checkpoint base.npz", "the --init-from checkpoint"]),
], ids=["unknown-chars", "hidden-size", "cell", "with-resume", "keep-alone", "extend-alone",
        "preset", "bytes", "missing", "overwrite-source"])
def test_cli_fine_tune_errors_are_one_line(ckpt, args, fragments):
    work, _ = ckpt
    before = (work / "base.npz").read_bytes()
    _, _, err = run("train", *args, "--iterations", "5", "--quiet", rc=2, cwd=work)
    assert_error(err, *fragments)
    assert (work / "base.npz").read_bytes() == before


def test_cli_unknown_bytes_are_shown_as_bytes(tmp_path):
    text = "abc abc abc " * 10
    model = charrnn.train(text, hidden_size=8, num_iterations=5)
    charrnn.checkpoint.save(model, tmp_path / "b.npz", meta={"bytes": True})
    (tmp_path / "new.txt").write_bytes("abc é\xff".encode("utf-8") * 10)
    _, _, err = run("train", "new.txt", "--init-from", "b.npz", "--quiet", rc=2, cwd=tmp_path)
    assert_error(err, "not in the vocabulary of b.npz", repr(b"\xa9\xbf\xc3"))
    run("train", "new.txt", "--init-from", "b.npz", "--extend-vocab", "--iterations", "5",
        "--seq-length", "5", "--checkpoint", "c.npz", "--quiet", cwd=tmp_path)
    model, meta = charrnn.load_with_meta(tmp_path / "c.npz")
    assert meta["bytes"] is True and "\xc3" in model.chars
    assert json.dumps(meta)
