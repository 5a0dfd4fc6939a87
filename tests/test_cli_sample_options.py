"""charrnn sample --top-p, --num-samples, --prime-file, and options from @file."""
import numpy as np
import pytest
from conftest import POEM
from test_cli import assert_error, run

import charrnn
from charrnn import checkpoint, cli


@pytest.fixture(scope="module")
def model():
    return charrnn.train(POEM, hidden_size=24, num_iterations=200, seed=4)


@pytest.fixture
def work(tmp_path, model):
    model.save(tmp_path / "m.npz")
    return tmp_path


def fresh(work):
    """The checkpoint as the CLI loads it (its own RandomState where it was saved)."""
    return charrnn.load(work / "m.npz")


# -- --top-p ------------------------------------------------------------------------------------

@pytest.mark.parametrize("controls, kwargs", [
    (["--top-p", "0.8", "--seed", "3"], dict(top_p=0.8, seed=3)),
    (["--top-p", "0.5", "--top-k", "4", "-t", "1.3", "--seed", "1", "--prime", "And "],
     dict(top_p=0.5, top_k=4, temperature=1.3, seed=1, prime="And ")),
    (["--top-p", "1"], dict(top_p=1.0)),
], ids=["top-p", "with-top-k-and-temperature", "one-is-all"])
def test_top_p_samples_what_the_api_samples(work, controls, kwargs):
    _, out, _ = run("sample", "m.npz", "-n", "300", *controls, cwd=work)
    assert out == kwargs.get("prime", "") + fresh(work).sample(300, **kwargs)


def test_top_p_one_is_the_plain_sample(work):
    assert run("sample", "m.npz", "--top-p", "1", "--seed", "2", cwd=work)[1] == \
        run("sample", "m.npz", "--seed", "2", cwd=work)[1]


@pytest.mark.parametrize("value", ["0", "-0.1", "1.01", "nan", "x"])
def test_bad_top_p_is_refused(work, value):
    _, _, err = run("sample", "m.npz", "--top-p", value, rc=2, cwd=work)
    assert "--top-p" in err and "Traceback" not in err


# -- --num-samples ------------------------------------------------------------------------------

def test_num_samples_are_independent_draws_from_one_stream(work):
    _, out, _ = run("sample", "m.npz", "-n", "80", "--num-samples", "3", "--seed", "5",
                    "--prime", "Two ", cwd=work)
    samples = fresh(work).samples(3, 80, prime="Two ", seed=5)
    assert out == cli.SAMPLE_SEPARATOR.join("Two " + s for s in samples)
    assert out.count("\n---\n") >= 2 and len(set(samples)) == 3
    rng = np.random.RandomState(5)  # one stream, drawn on from sample to sample
    assert samples == [fresh(work).sample(80, prime="Two ", seed=rng) for _ in range(3)]


def test_num_samples_without_seed_continue_the_checkpoints_stream(work):
    _, out, _ = run("sample", "m.npz", "-n", "50", "-N", "2", cwd=work)
    m = fresh(work)
    assert out == m.sample(50) + "\n---\n" + m.sample(50)


def test_one_sample_is_the_plain_output(work):
    assert run("sample", "m.npz", "-n", "90", "--num-samples", "1", "--seed", "7",
               cwd=work)[1] == run("sample", "m.npz", "-n", "90", "--seed", "7", cwd=work)[1]


def test_samples_api(model):
    assert model.samples(0, 10, seed=1) == []
    assert model.samples(2, 30, seed=1, top_p=0.9, temperature=0.8) == \
        [model.sample(30, seed=r, top_p=0.9, temperature=0.8)
         for r in [np.random.RandomState(1)] * 2]
    with pytest.raises(ValueError, match="num_samples must be >= 0"):
        model.samples(-1, 10)


def test_bad_num_samples_is_refused(work):
    _, _, err = run("sample", "m.npz", "--num-samples", "0", rc=2, cwd=work)
    assert "--num-samples" in err and ">= 1" in err


# -- --prime-file -------------------------------------------------------------------------------

def test_prime_file_equals_prime(work):
    (work / "p.txt").write_text("And sorry I", encoding="utf-8")
    want = run("sample", "m.npz", "-n", "100", "--seed", "2", "--prime", "And sorry I",
               cwd=work)[1]
    assert run("sample", "m.npz", "-n", "100", "--seed", "2", "--prime-file", "p.txt",
               cwd=work)[1] == want
    assert run("sample", "m.npz", "-n", "100", "--seed", "2", "--prime-file", "-", cwd=work,
               input="And sorry I".encode())[1] == want


def test_prime_file_is_read_with_the_checkpoints_text_options(tmp_path, model):
    """Encoding and clean-up (here latin-1, --lower, --drop-chars) as the training text's."""
    checkpoint.save(model, tmp_path / "m.npz",
                    meta={"encoding": "latin-1", "lower": True, "drop_chars": "#"})
    (tmp_path / "p.txt").write_bytes("AND #SORRY".encode("latin-1"))
    fields = cli._meta_fields(checkpoint.read(tmp_path / "m.npz")[2], "m.npz")
    assert cli.read_prime_file(str(tmp_path / "p.txt"), fields) == "and sorry"
    _, out, _ = run("sample", "m.npz", "-n", "40", "--seed", "1", "--prime-file", "p.txt",
                    cwd=tmp_path)
    assert out == "and sorry" + model.sample(40, prime="and sorry", seed=1)


def test_prime_file_in_bytes_mode(tmp_path):
    text = "naïve café, " * 20
    latin = text.encode("utf-8").decode("latin-1")
    model = charrnn.train(latin, hidden_size=8, num_iterations=30)
    checkpoint.save(model, tmp_path / "b.npz", meta={"bytes": True})
    (tmp_path / "p.txt").write_bytes("café".encode("utf-8"))
    result, _, _ = run("sample", "b.npz", "-n", "20", "--seed", "1", "--prime-file", "p.txt",
                       cwd=tmp_path)
    prime = "café".encode("utf-8").decode("latin-1")
    want = (prime + model.sample(20, prime=prime, seed=1)).encode("latin-1")
    assert result.stdout == want
    (tmp_path / "q.txt").write_bytes(b"caf\xff")
    _, _, err = run("sample", "b.npz", "--prime-file", "q.txt", rc=2, cwd=tmp_path)
    assert_error(err, "--prime-file has bytes that are not in the model's vocabulary",
                 repr(b"\xff"))


def test_prime_file_errors_are_one_line(work):
    (work / "zebra.txt").write_text("Zebra@#", encoding="utf-8")
    missing = "".join(sorted(set("Zebra@#") - set(POEM)))
    _, _, err = run("sample", "m.npz", "--prime-file", "zebra.txt", rc=2, cwd=work)
    assert_error(err, "--prime-file has characters", repr(missing))
    (work / "big.txt").write_bytes(b"a" * (cli.MAX_PRIME_BYTES + 1))
    _, _, err = run("sample", "m.npz", "--prime-file", "big.txt", rc=2, cwd=work)
    assert_error(err, "--prime-file big.txt is longer than 1,048,576 bytes")
    _, _, err = run("sample", "m.npz", "--prime-file", "-", rc=2, cwd=work,
                    input=b"a" * (cli.MAX_PRIME_BYTES + 5))
    assert_error(err, "--prime-file stdin is longer than")
    (work / "bad.txt").write_bytes(b"And \xff")
    _, _, err = run("sample", "m.npz", "--prime-file", "bad.txt", rc=2, cwd=work)
    assert_error(err, "bad.txt is not valid utf-8", "byte offset 4")
    _, _, err = run("sample", "m.npz", "--prime-file", "nothere.txt", rc=2, cwd=work)
    assert_error(err, "no such file: nothere.txt")
    _, _, err = run("sample", "m.npz", "--prime-file", ".", rc=2, cwd=work)
    assert_error(err, "is a directory")
    _, _, err = run("sample", "m.npz", "--prime-file", "/dev/zero", rc=2, cwd=work)
    assert_error(err, "character device")
    _, _, err = run("sample", "m.npz", "--prime-file", "zebra.txt", "--prime", "A", rc=2,
                    cwd=work)
    assert "not allowed with argument" in err


# -- options from @file -------------------------------------------------------------------------

def test_options_file_equals_the_command_line(work):
    (work / "opts.txt").write_text(
        "# sampling options\n"
        "--length 120\n"
        "\n"
        "--prime 'And be one'   # quoted: the space is kept\n"
        "--seed 3 --top-p 0.9\n", encoding="utf-8")
    want = run("sample", "m.npz", "--length", "120", "--prime", "And be one", "--seed", "3",
               "--top-p", "0.9", cwd=work)[1]
    assert run("sample", "m.npz", "@opts.txt", cwd=work)[1] == want
    (work / "all.txt").write_text("sample\nm.npz\n@opts.txt\n", encoding="utf-8")
    assert run("@all.txt", cwd=work)[1] == want  # nested, and the command itself


def test_options_file_api(work):
    (work / "o.txt").write_text("--top-k 3  # k\n\n--prime \"a b\"\n", encoding="utf-8")
    assert cli.args_file_line("--prime 'x y'  # comment") == ["--prime", "x y"]
    assert cli.args_file_line("   # only a comment") == []
    assert cli.expand_args_files(["sample", f"@{work / 'o.txt'}", "-n", "3"]) == \
        ["sample", "--top-k", "3", "--prime", "a b", "-n", "3"]
    args = cli.build_parser().parse_args(["sample", "m.npz", f"@{work / 'o.txt'}"])
    assert (args.top_k, args.prime) == (3, "a b")


def test_options_file_errors_are_one_line(work):
    _, _, err = run("sample", "m.npz", "@nothere.txt", rc=2, cwd=work)
    assert_error(err, "no such options file: nothere.txt")
    (work / "quote.txt").write_text("--length 5\n--prime 'open\n", encoding="utf-8")
    _, _, err = run("sample", "m.npz", "@quote.txt", rc=2, cwd=work)
    assert_error(err, "options file quote.txt, line 2", "No closing quotation")
    (work / "loop.txt").write_text("@loop.txt\n", encoding="utf-8")
    _, _, err = run("sample", "m.npz", "@loop.txt", rc=2, cwd=work)
    assert_error(err, "nest more than 8 deep")
    (work / "big.txt").write_bytes(b"#" * (cli.MAX_ARGS_FILE_BYTES + 1))
    _, _, err = run("@big.txt", rc=2, cwd=work)
    assert_error(err, "options file big.txt is longer than")
    (work / "latin.txt").write_bytes(b"--prime caf\xe9\n")
    _, _, err = run("sample", "m.npz", "@latin.txt", rc=2, cwd=work)
    assert_error(err, "options file latin.txt is not valid UTF-8 (byte offset 11)")
    _, _, err = run("sample", "m.npz", "@/dev/zero", rc=2, cwd=work)
    assert_error(err, "character device")


def test_train_options_from_a_file(work):
    (work / "poem.txt").write_text(POEM, encoding="utf-8")
    (work / "train.txt").write_text("train poem.txt\n--hidden-size 10  # small\n"
                                    "--iterations 20\n--quiet\n--checkpoint t.npz\n",
                                    encoding="utf-8")
    run("@train.txt", "--seed", "2", cwd=work)
    trained = charrnn.load(work / "t.npz")
    assert (trained.hidden_size, trained.iteration, trained.seed) == (10, 20, 2)
