"""charrnn.datasets: the shipped corpus, seed 004's synthetic text, and
``charrnn train --synthetic``."""
import numpy as np
import pytest
from test_cli import assert_error, assert_same_training, run, work  # noqa: F401

import charrnn
from charrnn import checkpoint, cli, datasets


def seed004_recipe(size=10000, b_draws=3000, c_draws=3000):
    """Seed 004's cell, as it stands, on numpy's global RandomState."""
    symbols = np.array(["a"] * size)
    symbols[np.random.randint(0, size, b_draws)] = "b"
    symbols[np.random.randint(0, size, c_draws)] = "c"
    return "".join(symbols).replace("a", "ae").replace("b", "buu").replace("c", "ciii")


@pytest.mark.parametrize("seed", [0, 1, 4004])
def test_seed004_is_the_seeds_text(seed):
    np.random.seed(seed)
    want = seed004_recipe()
    assert datasets.seed004(seed=seed) == want
    assert datasets.seed004(seed=np.random.RandomState(seed)) == want
    np.random.seed(seed)
    assert datasets.seed004(seed=None) == want  # numpy's global RandomState, as the seed
    np.random.seed(seed)
    assert datasets.seed004(500, 40, 300, seed=seed) == seed004_recipe(500, 40, 300)


def test_seed004_knobs():
    assert datasets.seed004(7, 0, 0) == "ae" * 7
    assert datasets.seed004(3, 0, 50) == "ciii" * 3
    assert datasets.seed004(3, 50, 0) == "buu" * 3
    text = datasets.seed004(1000, seed=2)
    np.random.seed(2)
    assert text == seed004_recipe(1000, 300, 300)  # draws default to 30% of the size
    assert datasets.seed004(seed=3) == datasets.seed004(seed=3) != datasets.seed004(seed=4)
    assert sorted(set(text)) == ["a", "b", "c", "e", "i", "u"]


def test_seed004_proportions():
    """Words a, b, c with probabilities (1-q)^2, q(1-q) and q, q = 1 - exp(-0.3)."""
    size = 200_000
    text = datasets.seed004(size, seed=9)
    counts = np.array([text.count(w) for w in datasets.SEED004_WORDS])
    assert counts.sum() == size and len(text) == counts @ [2, 3, 4]
    q = 1 - (1 - 1 / size) ** (0.3 * size)
    want = np.array([(1 - q) ** 2, q * (1 - q), q])
    assert np.all(np.abs(counts / size - want) < 0.005), (counts / size, want)


def test_seed004_refuses_bad_knobs():
    for kwargs, message in [(dict(size=0), "size must be >= 1"),
                            (dict(size=True), "size must be an integer"),
                            (dict(size=datasets.MAX_SYMBOLS + 1), "size must be <="),
                            (dict(b_draws=-1), "b_draws must be >= 0"),
                            (dict(c_draws=2.5), "c_draws must be an integer"),
                            (dict(seed=-1), r"seed as an int seed must be in \[0, 2\*\*32\)"),
                            (dict(seed="x"), "seed must be None, an int seed")]:
        with pytest.raises(ValueError, match=message):
            datasets.seed004(**kwargs)


def test_the_shipped_corpus():
    text = datasets.shakespeare()
    assert text is not None and text.startswith("First Citizen:") and len(set(text)) == 61
    assert charrnn.default_corpus() == charrnn.data.default_corpus() == text
    with datasets.shakespeare_file() as path:
        assert path.read_text(encoding="utf-8") == text
    assert datasets.SYNTHETIC["seed004"] is datasets.seed004


# -- charrnn train --synthetic ---------------------------------------------------------------

TINY = ["--hidden-size", "12", "--print-every", "100", "--val-frac", "0.05"]


def test_train_on_seed004_and_resume(work):
    run("train", "--synthetic", "seed004", "--synthetic-size", "3000", "--synthetic-seed", "4",
        "--iterations", "300", *TINY, "--checkpoint", "a.npz", "--quiet", cwd=work)
    model, meta = charrnn.load_with_meta(work / "a.npz")
    assert model.chars == ["a", "b", "c", "e", "i", "u"]
    assert meta["synthetic"] == {"name": "seed004", "size": 3000, "seed": 4}
    assert meta["source"] is None
    # the resumed run is the uninterrupted one; the checkpoint gives the text back
    run("train", "--resume", "a.npz", "--iterations", "500", "--quiet", cwd=work)
    run("train", "--synthetic", "seed004", "--synthetic-size", "3000", "--synthetic-seed", "4",
        "--iterations", "500", *TINY, "--checkpoint", "b.npz", "--quiet", cwd=work)
    assert_same_training(charrnn.load(work / "a.npz"), charrnn.load(work / "b.npz"))
    # repeating the checkpoint's options is allowed, changing them is not
    run("train", "--resume", "a.npz", "--synthetic", "seed004", "--synthetic-seed", "4",
        "--iterations", "510", "--quiet", cwd=work)
    _, _, err = run("train", "--resume", "a.npz", "--synthetic-seed", "5", rc=2, cwd=work)
    assert_error(err, "trained with --synthetic-seed 4, not 5", "leave --synthetic-seed out")
    _, _, err = run("train", "poem.txt", "--resume", "a.npz", rc=2, cwd=work)
    assert_error(err, "differs from the one a.npz was trained on")


def test_synthetic_learns_the_words(work):
    """Only the first letter of each word is uncertain: about 0.53 bits/char at best."""
    _, out, _ = run("train", "--synthetic", "seed004", "--iterations", "1500",
                    "--hidden-size", "16", "--val-frac", "0.1", "--print-every", "1500",
                    "--sample-length", "300", cwd=work)
    val = float(out.split("validation ")[1].split(" bits/char")[0])
    assert 0.45 < val < 0.6, out
    sample = out.rstrip().split("----")[-2].strip()
    cut = sample[sample.index("a") if "a" in sample else 0:]  # start at a word boundary
    words = cut.replace("ae", " ").replace("buu", " ").replace("ciii", " ").split()
    assert len(words) <= 3, sample  # a word or two may be cut by the sample's ends


def test_synthetic_errors_are_one_line(work):
    _, _, err = run("train", "poem.txt", "--synthetic", "seed004", rc=2, cwd=work)
    assert_error(err, "FILE and --synthetic exclude each other")
    _, _, err = run("train", "--synthetic-size", "100", rc=2, cwd=work)
    assert_error(err, "--synthetic-size needs --synthetic NAME")
    _, _, err = run("train", "--synthetic", "seed004", "--synthetic-size", "5", rc=2, cwd=work)
    assert_error(err, "training needs at least seq_length + 1")
    _, _, err = run("train", "--synthetic", "seed005", rc=2, cwd=work)
    assert "invalid choice: 'seed005'" in err
    _, _, err = run("train", "--synthetic", "seed004", "--synthetic-size", "1e9", rc=2,
                    cwd=work)
    assert "expected an integer" in err


@pytest.mark.parametrize("value", [{"name": "seed005", "size": 10, "seed": 0},
                                   {"name": "seed004", "size": 0, "seed": 0},
                                   {"name": "seed004", "size": 10, "seed": 2**32},
                                   {"name": "seed004", "size": 10},
                                   "seed004", [1, 2]])
def test_a_bad_synthetic_meta_is_named(work, value):
    model = charrnn.train(datasets.seed004(100), hidden_size=4, num_iterations=2)
    meta = dict(cli.TEXT_OPTIONS, val_frac=0.0, eval_every=100, target={"iterations": 2},
                synthetic=value)
    checkpoint.save(model, work / "bad.npz", meta=meta)
    _, _, err = run("train", "--resume", "bad.npz", rc=2, cwd=work)
    assert_error(err, "bad.npz: invalid checkpoint meta synthetic = ")
