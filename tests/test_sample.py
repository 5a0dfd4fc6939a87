"""Sampling: the compiled sampler draws what the seeds' np.random.choice loop draws."""
import numpy as np
import pytest
from conftest import POEM

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


def test_model_sample_with_prime_warms_the_hidden_state(trained):
    prime = POEM[:40]
    ix = [trained.char_to_ix[c] for c in prime]
    Wxh, Whh, Why, bh, by = trained.params
    h = np.zeros((trained.hidden_size, 1))
    for x in ix[:-1]:
        h = np.tanh(Wxh[:, [x]] + Whh @ h + bh)
    want = reference.sample(h, ix[-1], 150, trained.params, np.random.RandomState(9))
    got = trained.sample(150, prime=prime, seed=9)
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
