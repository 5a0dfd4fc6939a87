"""charrnn.preprocess and seed 002's clean-up: the function, the named preset and
``charrnn train --clean seed002``, against the seed's own lines."""
import hashlib

import pytest
from test_cli import assert_error, run, work  # noqa: F401

import charrnn
from charrnn import data

# Every character seed 002 removes, and some it keeps, upper case and digits (ASCII and
# others: str.isdigit is true for superscripts too).
TEXT = ("\ufeffThe Speech [1] of 2019: jobs & trade = 100% (really) - @home; my_tag $5 "
        "café ÉTÉ x² ٣ ½\nAnd so on, 'quoted', \"twice\"? Yes!\n") * 40


def seed002_cleanup(text):
    """Seed 002's data_preprocess, after reading the file: its three lines."""
    text = text.lower()
    text = "".join([i for i in text if not i.isdigit()])
    return text.translate({ord(i): None for i in "][&=%)-@\ufeff;_é$("})


def test_the_text_holds_every_character_seed002_drops():
    assert set(data.SEED002_DROP_CHARS) <= set(TEXT)
    assert "\ufeff" in data.SEED002_DROP_CHARS and "é" in data.SEED002_DROP_CHARS
    assert len(data.SEED002_DROP_CHARS) == len(set(data.SEED002_DROP_CHARS)) == 14


def test_preprocess_with_the_preset_is_the_seeds_cleanup():
    want = seed002_cleanup(TEXT)
    assert charrnn.preprocess(TEXT, **data.CLEANUPS["seed002"]) == want
    assert charrnn.preprocess(TEXT, lower=True, strip_digits=True,
                              drop_chars=data.SEED002_DROP_CHARS) == want
    assert charrnn.preprocess is data.preprocess
    # the README's old string misses two characters
    old = charrnn.preprocess(TEXT, lower=True, strip_digits=True, drop_chars="][&=%)-@;_$(")
    assert set(old) - set(want) == {"\ufeff", "é"}


def test_preprocess_options_one_at_a_time():
    assert charrnn.preprocess("AbC 12 x²") == "AbC 12 x²"
    assert charrnn.preprocess("AbC 12 x²", lower=True) == "abc 12 x²"
    assert charrnn.preprocess("AbC 12 x²", strip_digits=True) == "AbC  x"
    assert charrnn.preprocess("AbC 12 x²", drop_chars="C 1") == "Ab2x²"
    assert charrnn.preprocess(b"AbC 12", lower=True, strip_digits=True) == b"abc "


@pytest.mark.parametrize("how", [["--clean", "seed002"],
                                 ["--lower", "--strip-digits", "--drop-chars",
                                  data.SEED002_DROP_CHARS],
                                 ["--clean", "seed002", "--lower"]])
def test_cli_cleanup_is_the_seeds(work, how):
    """The model's vocabulary and the checkpoint's digest are those of the seed's text."""
    (work / "speech.txt").write_text(TEXT, encoding="utf-8")
    run("train", "speech.txt", *how, "--iterations", "20", "--hidden-size", "8",
        "--checkpoint", "s.npz", "--quiet", cwd=work)
    model, meta = charrnn.load_with_meta(work / "s.npz")
    want = seed002_cleanup(TEXT)
    assert model.chars == sorted(set(want))
    assert meta["text_sha256"] == hashlib.sha256(want.encode("utf-8")).hexdigest()
    assert (meta["lower"], meta["strip_digits"], meta["drop_chars"]) == \
        (True, True, data.SEED002_DROP_CHARS)
    # resuming with --clean repeats the checkpoint's options: allowed
    run("train", "--resume", "s.npz", "--clean", "seed002", "--iterations", "30", "--quiet",
        cwd=work)


def test_cli_clean_conflicts_are_one_line(work):
    _, _, err = run("train", "poem.txt", "--clean", "seed002", "--drop-chars", "[]", rc=2,
                    cwd=work)
    assert_error(err, "--clean seed002 sets --drop-chars", "leave out --drop-chars '[]'")
    _, _, err = run("train", "poem.txt", "--clean", "seed002", "--bytes", rc=2, cwd=work)
    assert_error(err, "--clean seed002", "not --bytes")
    _, _, err = run("train", "poem.txt", "--clean", "seed003", rc=2, cwd=work)
    assert "invalid choice: 'seed003'" in err
    run("train", "poem.txt", "--iterations", "5", "--hidden-size", "4", "--checkpoint",
        "p.npz", "--quiet", cwd=work)
    _, _, err = run("train", "--resume", "p.npz", "--clean", "seed002", rc=2, cwd=work)
    assert_error(err, "p.npz was trained with --lower False, not True")
