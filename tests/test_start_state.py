"""The state that scoring, evaluation and sampling start from, and zero-state resets.

The seeds' loop zeroes the hidden state only when the pointer wraps, so before its first
pass over a text a model has never started from zero: from a zero state it predicts
garbage. ``start="carried"`` (the default unless the model trains with ``reset_every``)
starts from the state training carried instead; ``reset_every`` teaches a model to start
from zero.
"""
import math
import re

import numpy as np
import pytest
from conftest import POEM
from test_cli import (SMALL, assert_error, assert_same_training, run, trained,  # noqa: F401
                      work)

import charrnn
from charrnn import reference

CELLS = ["rnn", "lstm", "gru"]
TEXT = POEM * 6


def letters(s):
    """Fraction of letters, spaces and newlines: 0.95 in the shipped corpus."""
    return sum(c.isalpha() or c in " \n" for c in s) / len(s)


def bits(model, text, **kw):
    return model.evaluate(text, **kw) / math.log(2)


# -- the first use: the default run on the shipped corpus ----------------------------------

@pytest.fixture(scope="module")
def corpus():
    text = charrnn.default_corpus()
    n_train = len(text) - int(round(len(text) * 0.1))
    return text[:n_train], text[n_train:]


@pytest.fixture(scope="module")
def default_run(corpus):
    """The seeds' defaults, 3000 iterations: the pointer has not wrapped yet."""
    model = charrnn.train(corpus[0], num_iterations=3000)
    assert model.epoch == 0
    return model


def test_default_run_evaluates_and_primes_sensibly(corpus, default_run):
    held = corpus[1][-5000:]
    assert default_run.default_start == "carried"
    assert bits(default_run, held) < 4.0
    assert bits(default_run, held, start="carried") == bits(default_run, held)
    primed = default_run.sample(500, prime="ROMEO:", seed=1)
    carried = default_run.sample(500, seed=1)
    assert letters(primed) > 0.85 and abs(letters(primed) - letters(carried)) < 0.05, primed
    per_char = -default_run.score("ROMEO:" + primed).mean() / math.log(2)
    assert per_char < 4.0, primed
    # why: from zeros, a state this model never trained from, it is worse than uniform
    assert bits(default_run, held, start="zero") > math.log2(default_run.vocab_size)
    assert letters(default_run.sample(500, prime="ROMEO:", seed=1, start="zero")) < 0.6


def test_reset_every_teaches_the_zero_start(corpus):
    model = charrnn.train(corpus[0], num_iterations=3000, reset_every=100)
    held = corpus[1][-5000:]
    assert model.default_start == "zero"
    assert bits(model, held) == bits(model, held, start="zero") < 4.0
    assert letters(model.sample(500, prime="ROMEO:", seed=1)) > 0.85


def test_default_run_through_the_cli(tmp_path, corpus):
    (tmp_path / "held.txt").write_text(corpus[1], encoding="utf-8")
    _, out, _ = run("train", "--iterations", "3000", "--val-frac", "0.1", "--checkpoint",
                    "m.npz", cwd=tmp_path)
    final = re.search(r"validation ([\d.]+) bits/char", out)
    assert final and float(final.group(1)) < 4.0, out
    _, out, _ = run("eval", "m.npz", "held.txt", cwd=tmp_path)
    got = re.search(r"([\d.]+) bits/char .* from the carried state", out)
    assert got and float(got.group(1)) < 4.0, out
    _, out, _ = run("sample", "m.npz", "--prime", "ROMEO:", "-n", "500", "--seed", "1",
                    cwd=tmp_path)
    assert out.startswith("ROMEO:") and letters(out[6:]) > 0.85, out
    _, out, _ = run("eval", "m.npz", "held.txt", "--start", "zero", cwd=tmp_path)
    assert "from a zero state" in out


# -- start= on score, evaluate, sample, generate ---------------------------------------

@pytest.fixture(scope="module")
def seeds_model():
    return charrnn.train(TEXT, hidden_size=12, num_iterations=70)


def _logprobs(model, h, text):
    Wxh, Whh, Why, bh, by = model.params
    out = []
    for a, b in zip(text[:-1], text[1:]):
        h = np.tanh(Wxh[:, [model.char_to_ix[a]]] + Whh @ h + bh)
        y = (Why @ h + by).ravel()
        out.append(y[model.char_to_ix[b]] - y.max() - np.log(np.exp(y - y.max()).sum()))
    return np.array(out), h


@pytest.mark.parametrize("start", ["carried", "zero"])
def test_score_and_evaluate_start_where_asked(seeds_model, start):
    m = seeds_model
    h0 = m.hprev.copy() if start == "carried" else np.zeros((12, 1))
    want, _ = _logprobs(m, h0, POEM[:80])
    np.testing.assert_allclose(m.score(POEM[:80], start=start), want, rtol=1e-12)
    assert math.isclose(m.evaluate(POEM[:80], start=start), -want.mean(), rel_tol=1e-12)
    # a prime is fed from that start too
    want = _logprobs(m, h0, "And " + POEM[:30])[0][4:]
    np.testing.assert_allclose(m.score(POEM[:30], prime="And ", start=start), want, rtol=1e-12)


def test_default_start_follows_reset_every(seeds_model):
    m = charrnn.CharRNN("ab", 4)
    assert m.default_start == "carried"
    m.reset_every = 5
    assert m.default_start == "zero"
    with pytest.raises(AttributeError, match="follows reset_every"):
        m.default_start = "zero"
    for bad in ("Zero", "hprev", 0):
        with pytest.raises(ValueError, match=r"start must be one of \['carried', 'zero'\]"):
            seeds_model.evaluate(POEM[:20], start=bad)
    with pytest.raises(ValueError, match="start must be one of"):
        seeds_model.sample(5, start="warm")
    with pytest.raises(ValueError, match="start must be one of"):
        seeds_model.score(POEM[:5], start=1)


def test_a_model_never_trained_carries_zeros(seeds_model):
    copy = charrnn.CharRNN.from_state_dict(seeds_model.chars, seeds_model.state_dict())
    assert copy.evaluate(POEM) == copy.evaluate(POEM, start="zero")
    assert copy.evaluate(POEM) == seeds_model.evaluate(POEM, start="zero")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch_size", [1, 3])
def test_using_a_model_leaves_its_carried_state_alone(cell, batch_size):
    """Every start is a copy: scoring, evaluating and sampling never move training."""
    model = charrnn.train(TEXT, cell=cell, num_layers=2 if cell != "rnn" else 1,
                          hidden_size=8, num_iterations=20, batch_size=batch_size)
    before = model.hprev.copy()
    assert before.any()
    model.evaluate(POEM[:50])
    model.score(POEM[:50], prime="And ")
    model.sample(30, seed=1)
    model.sample(30, prime="The ", seed=1)
    model.sample(30, start_char="A", seed=1)
    "".join(model.generate(30, start_char="T", seed=1))
    np.testing.assert_array_equal(model.hprev, before)
    # the carried state is the first stream's
    first = (before[0] if cell == "rnn" else before[:, :, 0]) if batch_size > 1 else before
    m1 = charrnn.CharRNN.from_state_dict(model.chars, model.state_dict(), cell=cell)
    m1.hprev[...] = first.reshape(m1.hprev.shape)
    assert model.evaluate(POEM[:60]) == m1.evaluate(POEM[:60])


# -- start_char: the seeds' training-time sample ---------------------------------------

def test_start_char_continues_from_the_carried_state(seeds_model):
    m = seeds_model
    ix = m.char_to_ix["T"]
    want = reference.sample(m.hprev.copy(), ix, 120, m.params, np.random.RandomState(4))
    got = m.sample(120, start_char="T", seed=4)
    assert got == "".join(m.chars[i] for i in want)
    assert "".join(m.generate(120, start_char="T", seed=4, chunk=7)) == got
    zero = reference.sample(np.zeros((12, 1)), ix, 50, m.params, np.random.RandomState(4))
    assert m.sample(50, start_char="T", start="zero", seed=4) == \
        "".join(m.chars[i] for i in zero)


def test_without_prime_sampling_keeps_the_seeds_start():
    """No prime, no start_char: the carried state and an all-zero first input, even for a
    model whose default start is zero."""
    m = charrnn.train(TEXT, hidden_size=12, num_iterations=70, reset_every=9)
    want = reference.sample(m.hprev.copy(), None, 80, m.params, np.random.RandomState(2))
    assert m.sample(80, seed=2) == "".join(m.chars[i] for i in want)
    zero = reference.sample(np.zeros((12, 1)), None, 80, m.params, np.random.RandomState(2))
    assert m.sample(80, seed=2, start="zero") == "".join(m.chars[i] for i in zero)


@pytest.mark.parametrize("kwargs, message", [
    (dict(start_char="#"), "start_char '#' is not in the vocabulary"),
    (dict(start_char="An"), "start_char must be one character"),
    (dict(start_char=""), "start_char must be one character"),
    (dict(start_char=65), "start_char must be one character"),
    (dict(start_char="A", prime="The"), "give prime or start_char, not both"),
])
def test_bad_start_char_is_refused(seeds_model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        seeds_model.sample(5, **kwargs)
    with pytest.raises(ValueError, match=message):
        seeds_model.generate(5, **kwargs)


# -- reset_every ----------------------------------------------------------------------

def test_reset_every_zeroes_the_state_before_each_multiple():
    a = charrnn.train(TEXT, hidden_size=10, num_iterations=24, reset_every=8)
    b = charrnn.train(TEXT, hidden_size=10, num_iterations=8)
    for _ in range(2):
        b.hprev[...] = 0
        b.fit(8)
    for name in ("_flat", "_m1", "_state"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.history.loss, b.history.loss)
    plain = charrnn.train(TEXT, hidden_size=10, num_iterations=24)
    assert not np.array_equal(plain._flat, a._flat)


@pytest.mark.parametrize("options", [
    dict(),
    dict(cell="lstm", num_layers=2, batch_size=2, dropout=0.1, optimizer="adam",
         learning_rate=1e-2),
], ids=["seeds", "lstm"])
def test_reset_every_is_exact_across_fits_and_checkpoints(tmp_path, options):
    whole = charrnn.train(TEXT, hidden_size=10, num_iterations=50, reset_every=7, **options)
    part = charrnn.train(TEXT, hidden_size=10, num_iterations=11, reset_every=7, **options)
    seen = []
    part.fit(10, callback=lambda m: seen.append(m.iteration), report_every=4)
    assert seen == [15, 19, 21]  # the callback's points, not the resets'
    part.save(tmp_path / "p.npz")
    resumed = charrnn.load(tmp_path / "p.npz")
    assert resumed.reset_every == 7
    resumed.set_text(TEXT)
    resumed.fit(29)
    assert_same_training(resumed, whole)


def test_reset_every_is_checked_and_settable():
    m = charrnn.CharRNN("ab", 4)
    assert m.reset_every == 0
    for bad in (-1, 2.5, "3", True, 2**63):
        with pytest.raises(ValueError, match="reset_every"):
            m.reset_every = bad
        with pytest.raises(ValueError, match="reset_every"):
            charrnn.CharRNN("ab", 4, reset_every=bad)
    m.reset_every = 10
    assert m.reset_every == 10


def test_checkpoints_without_reset_every_load_with_zero(tmp_path):
    import io
    import json
    import zipfile
    model = charrnn.train(TEXT, hidden_size=6, num_iterations=3, reset_every=2)
    model.save(tmp_path / "new.npz")
    with zipfile.ZipFile(tmp_path / "new.npz") as z, \
            zipfile.ZipFile(tmp_path / "old.npz", "w") as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "config.npy":
                config = json.loads(str(np.load(tmp_path / "new.npz")["config"]))
                assert config.pop("reset_every") == 2
                f = io.BytesIO()
                np.save(f, np.array(json.dumps(config)))
                data = f.getvalue()
            out.writestr(info.filename, data)
    assert charrnn.load(tmp_path / "old.npz").reset_every == 0


# -- the command line ------------------------------------------------------------------

def test_cli_reset_every_trains_resumes_and_evaluates_from_zero(work):
    common = ["poem.txt", *SMALL, "--reset-every", "7", "--eval-every", "50", "--quiet"]
    run("train", *common, "--iterations", "150", "--checkpoint", "a.npz", cwd=work)
    assert charrnn.load(work / "a.npz").reset_every == 7
    run("train", "--resume", "a.npz", "--iterations", "400", "--quiet", cwd=work)
    run("train", *common, "--iterations", "400", "--checkpoint", "b.npz", cwd=work)
    a, b = charrnn.load(work / "a.npz"), charrnn.load(work / "b.npz")
    assert_same_training(a, b)
    assert a.default_start == "zero"
    _, _, err = run("train", "--resume", "a.npz", "--reset-every", "3", rc=2, cwd=work)
    assert_error(err, "was trained with --reset-every 7, not 3")
    (work / "other.txt").write_text(POEM[:300])
    _, out, _ = run("eval", "a.npz", "other.txt", cwd=work)
    nats = a.evaluate(POEM[:300], start="zero")
    assert f"{nats:.4f} nats/char" in out and "from a zero state" in out
    _, out, _ = run("eval", "a.npz", "other.txt", "--start", "carried", cwd=work)
    nats = a.evaluate(POEM[:300], start="carried")
    assert f"{nats:.4f} nats/char" in out and "from the carried state" in out


@pytest.mark.parametrize("argv, kwargs", [
    (["--start-char", "T"], dict(start_char="T")),
    (["--start-char", "A", "--start", "zero"], dict(start_char="A", start="zero")),
    (["--prime", "And ", "--start", "zero"], dict(prime="And ", start="zero")),
    (["--prime", "And ", "--start", "carried"], dict(prime="And ", start="carried")),
    (["--start", "zero"], dict(start="zero")),
], ids=["start-char", "start-char-zero", "prime-zero", "prime-carried", "zero"])
def test_cli_sample_start_options_match_the_api(trained, argv, kwargs):
    work, path = trained
    _, out, _ = run("sample", path, "-n", "100", "--seed", "3", *argv, cwd=work)
    lead = kwargs.get("prime") or kwargs.get("start_char") or ""
    assert out == lead + charrnn.load(path).sample(100, seed=3, **kwargs)


@pytest.mark.parametrize("argv, fragments", [
    (["--start-char", "T", "--prime", "And"], ["--start-char and --prime exclude each other"]),
    (["--start-char", "Th"], ["--start-char must be one character", "'Th'"]),
    (["--start-char", "#"], ["--start-char '#' is not in the model's vocabulary"]),
])
def test_cli_bad_start_char_is_one_line(trained, argv, fragments):
    work, path = trained
    _, _, err = run("sample", path, *argv, rc=2, cwd=work)
    assert_error(err, *fragments)


def test_cli_bad_start_is_a_usage_error(trained):
    work, path = trained
    _, _, err = run("sample", path, "--start", "warm", rc=2, cwd=work)
    assert "invalid choice: 'warm'" in err
    _, _, err = run("eval", path, "poem.txt", "--start", "hot", rc=2, cwd=work)
    assert "invalid choice: 'hot'" in err
