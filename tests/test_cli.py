"""The ``charrnn`` command line, driven end to end in subprocesses."""
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import charrnn
from charrnn import cli

from conftest import POEM

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).parent / "charrnn"
CHARRNN = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "charrnn"]
ENV = dict(os.environ, PYTHONUNBUFFERED="1")
SMALL = ["--hidden-size", "24", "--print-every", "100", "--val-frac", "0.1"]


def run(*args, cwd, rc=0, input=None):
    result = subprocess.run(CHARRNN + [str(a) for a in args], cwd=cwd, capture_output=True,
                            timeout=120, env=ENV, input=input)
    out, err = result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    if rc is not None:
        assert result.returncode == rc, f"exit status {result.returncode} != {rc}\n{err}"
    return result, out, err


def assert_error(err, *fragments):
    """One line, ``charrnn: error: ...``, holding every fragment."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("charrnn: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


@pytest.fixture
def work(tmp_path):
    (tmp_path / "poem.txt").write_text(POEM * 10, encoding="utf-8")
    return tmp_path


@pytest.fixture
def trained(work):
    """A small checkpoint made by ``charrnn train``."""
    run("train", "poem.txt", "--iterations", "300", *SMALL, "--checkpoint", "m.npz",
        "--quiet", cwd=work)
    return work, work / "m.npz"


def assert_same_training(a, b, stops=()):
    """``a``, resumed after runs that ended at the iterations ``stops``, is ``b``: the
    same bits, and the same history but for the validation each run records at its end."""
    for name in ("_flat", "_m1", "_m2", "_state"):
        x, y = getattr(a, name), getattr(b, name)
        assert np.array_equal(x, y), f"{name}: max difference {np.max(np.abs(x - y))}"
    for name in ("iteration", "pointer", "epoch", "smooth_loss", "schedule"):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("loss", "smooth_loss"):
        assert np.array_equal(getattr(a.history, name), getattr(b.history, name)), name
    at = a.history.val_iteration
    assert set(stops) <= set(at.tolist()), f"no validation at the end of a run {stops}: {at}"
    kept = ~np.isin(at, [s for s in stops if s not in b.history.val_iteration])
    assert np.array_equal(at[kept], b.history.val_iteration), "val_iteration"
    assert np.array_equal(a.history.val_loss[kept], b.history.val_loss), "val_loss"
    ra, rb = a.rng.get_state(), b.rng.get_state()
    assert np.array_equal(ra[1], rb[1]) and ra[2:] == rb[2:], "RandomState"


# -- help and the command line itself ------------------------------------------------------

def _has_bench():
    try:
        from charrnn import bench
    except ImportError:
        return False
    return hasattr(bench, "add_arguments") and hasattr(bench, "run")


COMMANDS = ["", "train", "sample", "eval", "plot"] + (["bench"] if _has_bench() else [])


@pytest.mark.parametrize("command", COMMANDS)
def test_help_on_every_command(command, tmp_path):
    _, out, _ = run(*command.split(), "--help", cwd=tmp_path)
    assert out.startswith("usage: charrnn") and "--help" in out


def test_python_dash_m_runs_the_cli(tmp_path):
    result = subprocess.run([sys.executable, "-m", "charrnn", "--version"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"charrnn {charrnn.__version__}"


# -- train --------------------------------------------------------------------------------

def test_train_prints_progress_lines_and_a_sample(work):
    _, out, err = run("train", "poem.txt", "--iterations", "300", *SMALL, "--sample-every",
                      "200", "--sample-length", "30", cwd=work)
    progress = [line for line in out.splitlines() if line.startswith("iter ")]
    assert [line.split()[1] for line in progress] == ["100/300", "200/300", "300/300"]
    for line in progress:
        assert re.search(r"epoch \d+\.\d\d \| loss [\d.]+ \| smooth loss [\d.]+ \| "
                         r"val [\d.]+ bits/char \| [\d,]+ chars/s \| \d+:\d\d:\d\d left$",
                         line), line
    assert "---- sample at iteration 200" in out
    assert out.rstrip().endswith("----") and "\r" not in out and err == ""


def test_train_on_a_terminal_updates_the_line_in_place(work):
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(CHARRNN + ["train", "poem.txt", "--iterations", "300", *SMALL],
                                cwd=work, stdout=follower, stderr=subprocess.PIPE, env=ENV)
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
        proc.stderr.close()
    finally:
        os.close(leader)
    out = b"".join(chunks).decode()
    assert out.count("\riter ") == 3 and "\x1b[K" in out
    assert "iter 100/300" in out and "iter 300/300" in out


def test_quiet_prints_nothing(work):
    _, out, err = run("train", "poem.txt", "--iterations", "200", *SMALL, "--quiet",
                      "--checkpoint", "q.npz", cwd=work)
    assert out == "" and err == ""
    assert charrnn.load(work / "q.npz").iteration == 200


def test_train_options_reach_the_model(work):
    run("train", "poem.txt", "--epochs", "2", "--hidden-size", "12", "--seq-length", "9",
        "--learning-rate", "0.01", "--optimizer", "rmsprop", "--activation", "sigmoid",
        "--clip", "none", "--bptt", "none", "--reset-each-epoch", "--dtype", "float32",
        "--decay-rate", "0.9", "--eps", "1e-6", "--seed", "7", "--val-frac", "0",
        "--checkpoint", "o.npz", "--quiet", cwd=work)
    m = charrnn.load(work / "o.npz")
    assert (m.hidden_size, m.seq_length, m.learning_rate, m.optimizer, m.activation, m.clip,
            m.bptt, m.reset_each_epoch, m.dtype.name, m.decay_rate, m.eps, m.seed) == (
        12, 9, 0.01, "rmsprop", "sigmoid", None, "none", True, "float32", 0.9, 1e-6, 7)
    text = POEM * 10
    assert m.schedule == "epochs" and m.iteration == 2 * ((len(text) - 1) // 9)
    expected = charrnn.train(text, 12, 9, 0.01, epochs=2, seed=7, optimizer="rmsprop",
                             activation="sigmoid", clip=None, bptt="none",
                             reset_each_epoch=True, dtype="float32", decay_rate=0.9, eps=1e-6)
    assert np.array_equal(m._flat, expected._flat), "the CLI trains what charrnn.train trains"


def test_checkpoint_every_saves_as_training_goes(work, monkeypatch):
    saves = []
    monkeypatch.setattr(cli._checkpoint, "save",
                        lambda model, path, meta=None: saves.append((path, model.iteration)))
    monkeypatch.chdir(work)
    assert cli.main(["train", "poem.txt", "--iterations", "250", *SMALL, "--quiet",
                     "--checkpoint", "c.npz", "--checkpoint-every", "100"]) == 0
    assert saves == [("c.npz", 100), ("c.npz", 200), ("c.npz", 250)]


def test_resume_from_a_checkpoint_is_bit_for_bit(work):
    common = ["poem.txt", *SMALL, "--eval-every", "50", "--sample-every", "100", "--quiet"]
    run("train", *common, "--iterations", "150", "--checkpoint", "a.npz", cwd=work)
    run("train", "--resume", "a.npz", "--iterations", "400", "--quiet", cwd=work)
    run("train", *common, "--iterations", "400", "--checkpoint", "b.npz", cwd=work)
    a, b = charrnn.load(work / "a.npz"), charrnn.load(work / "b.npz")
    assert a.iteration == 400 and len(a.history.val_loss) == 8
    assert_same_training(a, b)


def test_minibatch_resume_with_other_threads_is_bit_for_bit(work):
    common = ["poem.txt", *SMALL, "--batch-size", "3", "--dtype", "float32", "--quiet"]
    run("train", *common, "--iterations", "60", "--threads", "2", "--checkpoint", "a.npz",
        cwd=work)
    run("train", "--resume", "a.npz", "--iterations", "120", "--threads", "1", "--quiet",
        cwd=work)
    run("train", *common, "--iterations", "120", "--threads", "2", "--checkpoint", "b.npz",
        cwd=work)
    a, b = charrnn.load(work / "a.npz"), charrnn.load(work / "b.npz")
    assert (a.batch_size, a.dtype.name, a.iteration) == (3, "float32", 120)
    assert_same_training(a, b, stops=[60])  # the first run validated at its end


def test_resume_by_epochs_is_bit_for_bit(work):
    common = ["poem.txt", "--hidden-size", "16", "--optimizer", "adam", "--val-frac", "0",
              "--quiet"]
    run("train", *common, "--epochs", "1", "--checkpoint", "a.npz", cwd=work)
    run("train", "poem.txt", "--resume", "a.npz", "--epochs", "3", "--checkpoint", "a.npz",
        "--quiet", cwd=work)
    run("train", *common, "--epochs", "3", "--checkpoint", "b.npz", cwd=work)
    assert_same_training(charrnn.load(work / "a.npz"), charrnn.load(work / "b.npz"))


def test_ctrl_c_saves_and_resume_is_bit_for_bit(work):
    """SIGINT in the middle of training, then --resume: the bits of an uninterrupted run."""
    args = ["train", "poem.txt", "--iterations", "100000000", *SMALL, "--eval-every", "200",
            "--checkpoint", "i.npz", "--checkpoint-every", "100000"]
    proc = subprocess.Popen(CHARRNN + args, cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        for line in proc.stdout:
            if line.startswith("iter 300/"):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == cli.EXIT_INTERRUPTED, err
    assert "interrupted at iteration" in err and "--resume i.npz" in err
    stopped = charrnn.load(work / "i.npz").iteration
    assert 300 <= stopped < 100000000
    total = stopped + 250
    run("train", "--resume", "i.npz", "--iterations", total, "--checkpoint", "i.npz",
        "--quiet", cwd=work)
    run("train", "poem.txt", "--iterations", total, *SMALL, "--eval-every", "200",
        "--checkpoint", "u.npz", "--quiet", cwd=work)
    assert_same_training(charrnn.load(work / "i.npz"), charrnn.load(work / "u.npz"))


def test_keep_best_keeps_the_best_validation_checkpoint(work):
    run("train", "poem.txt", "--iterations", "400", *SMALL, "--eval-every", "50",
        "--learning-rate", "0.3", "--checkpoint", "k.npz", "--keep-best", "--quiet", cwd=work)
    latest, best = charrnn.load(work / "k.npz"), charrnn.load(work / "k.best.npz")
    val = latest.history.val_loss
    assert len(val) == 8 and best.history.val_loss[-1] == val.min()
    assert best.iteration == latest.history.val_iteration[np.argmin(val)]


def test_default_validation_split(work):
    big = "".join(POEM for _ in range(cli.MIN_TEXT_FOR_VAL // len(POEM) + 1))
    (work / "big.txt").write_text(big)
    _, out, _ = run("train", "big.txt", "--iterations", "10", "--hidden-size", "8", cwd=work)
    held = int(round(len(big) * cli.DEFAULT_VAL_FRAC))
    assert f"{held:,} held out for validation" in out
    _, out, _ = run("train", "poem.txt", "--iterations", "10", "--hidden-size", "8", cwd=work)
    assert "held out" not in out and " val " not in out


# -- sample -------------------------------------------------------------------------------

def test_sample_continues_the_checkpoint_random_state(trained):
    work, path = trained
    _, out, err = run("sample", path, "--length", "300", cwd=work)
    assert out == charrnn.load(path).sample(300) and err == ""


@pytest.mark.parametrize("controls, kwargs", [
    (["--seed", "5"], dict(seed=5)),
    (["--temperature", "0.5", "--seed", "1"], dict(temperature=0.5, seed=1)),
    (["--greedy"], dict(greedy=True)),
    (["--top-k", "3", "--seed", "2"], dict(top_k=3, seed=2)),
    (["--prime", "And ", "--seed", "4"], dict(prime="And ", seed=4)),
    (["--prime", "Two roads", "--temperature", "2", "--top-k", "5", "--seed", "9"],
     dict(prime="Two roads", temperature=2.0, top_k=5, seed=9)),
], ids=["seed", "temperature", "greedy", "top-k", "prime", "all"])
def test_sample_controls(trained, controls, kwargs):
    work, path = trained
    _, out, _ = run("sample", path, "-n", "200", *controls, cwd=work)
    expected = kwargs.get("prime", "") + charrnn.load(path).sample(200, **kwargs)
    assert out == expected
    assert len(out) == 200 + len(kwargs.get("prime", ""))


def test_sample_seed_repeats_and_temperature_matters(trained):
    work, path = trained
    one = run("sample", path, "--seed", "3", cwd=work)[1]
    assert run("sample", path, "--seed", "3", cwd=work)[1] == one
    assert run("sample", path, "--seed", "4", cwd=work)[1] != one
    assert run("sample", path, "--seed", "3", "--temperature", "0.3", cwd=work)[1] != one
    greedy = run("sample", path, "--greedy", "--prime", "A", cwd=work)[1]
    assert run("sample", path, "--top-k", "1", "--prime", "A", "--seed", "8", cwd=work)[1] \
        == greedy


def test_sample_errors(trained):
    work, path = trained
    missing = "".join(sorted(set("Zebra@#") - set(POEM)))
    _, _, err = run("sample", path, "--prime", "Zebra@#", rc=2, cwd=work)
    assert_error(err, "--prime", "not in the model's vocabulary", repr(missing))
    _, _, err = run("sample", path, "--temperature", "0", rc=2, cwd=work)
    assert "--temperature" in err and "> 0" in err
    _, _, err = run("sample", "nothere.npz", rc=2, cwd=work)
    assert_error(err, "no such checkpoint: nothere.npz")
    (work / "bad.npz").write_bytes(path.read_bytes()[:1000])
    _, _, err = run("sample", "bad.npz", rc=2, cwd=work)
    assert_error(err, "bad.npz", "truncated or corrupted")


# -- eval and plot --------------------------------------------------------------------------

def test_eval_reports_nats_and_bits(trained):
    work, path = trained
    (work / "other.txt").write_text(POEM[:300])
    _, out, _ = run("eval", path, "other.txt", cwd=work)
    nats = charrnn.load(path).evaluate(POEM[:300])
    assert f"{nats:.4f} nats/char" in out and f"{nats / np.log(2):.4f} bits/char" in out
    (work / "alien.txt").write_text("Qxq")
    _, _, err = run("eval", path, "alien.txt", rc=2, cwd=work)
    assert_error(err, "alien.txt", "not in the vocabulary")


def test_plot_writes_a_png(trained):
    pytest.importorskip("matplotlib")
    work, path = trained
    run("plot", path, "-o", "loss.png", cwd=work)
    assert (work / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how_to_get_it(trained):
    work, path = trained
    code = ("import sys; sys.modules['matplotlib'] = None; from charrnn.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", code, "plot", str(path)], cwd=work,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert_error(result.stderr, "matplotlib", "pip install 'charrnn-cython[plot]'")


# -- text input ---------------------------------------------------------------------------

def test_undecodable_file_names_the_byte_offset(work):
    data = (POEM * 3).encode() + b"\xff\xfe" + b"more text\n"
    (work / "bad.txt").write_bytes(data)
    _, _, err = run("train", "bad.txt", "--iterations", "5", rc=2, cwd=work)
    assert_error(err, "bad.txt", "utf-8", f"byte offset {len(POEM * 3)}", "--bytes")
    run("train", "bad.txt", "--iterations", "5", "--hidden-size", "8", "--encoding",
        "latin-1", "--quiet", cwd=work)
    _, _, err = run("train", "bad.txt", "--encoding", "klingon", rc=2, cwd=work)
    assert_error(err, "unknown encoding: klingon")


def test_bytes_mode_samples_bytes(work):
    data = "Grüße, 世界!\n".encode() * 40 + b"\xff\x00\x80 raw\n" * 10
    (work / "raw.bin").write_bytes(data)
    run("train", "raw.bin", "--bytes", "--iterations", "200", "--hidden-size", "16",
        "--checkpoint", "b.npz", "--quiet", cwd=work)
    model = charrnn.load(work / "b.npz")
    assert model.chars == [chr(b) for b in sorted(set(data))]
    result, _, _ = run("sample", "b.npz", "-n", "500", "--seed", "1", "--prime", "Gr",
                       cwd=work)
    assert result.stdout.startswith(b"Gr") and len(result.stdout) == 502
    assert set(result.stdout) <= set(data)
    _, out, _ = run("eval", "b.npz", "raw.bin", cwd=work)
    assert f"({len(data):,} characters)" in out


def test_preprocessing_options(work):
    text = "Hello World 123, [x] & y = 42!\n" * 30
    (work / "p.txt").write_text(text)
    run("train", "p.txt", "--lower", "--strip-digits", "--drop-chars", "[]&=",
        "--iterations", "20", "--hidden-size", "8", "--checkpoint", "p.npz", "--quiet",
        cwd=work)
    clean = "".join(c for c in text.lower() if not c.isdigit() and c not in "[]&=")
    assert charrnn.load(work / "p.npz").chars == sorted(set(clean))


# -- errors ---------------------------------------------------------------------------------

def test_train_errors_are_one_line(work):
    _, _, err = run("train", "missing.txt", rc=2, cwd=work)
    assert_error(err, "no such file: missing.txt")
    _, _, err = run("train", "poem.txt", "--keep-best", rc=2, cwd=work)
    assert_error(err, "--keep-best needs --checkpoint")
    _, _, err = run("train", "poem.txt", "--checkpoint", "nofolder/m.npz", rc=2, cwd=work)
    assert_error(err, "nofolder", "does not exist")
    _, _, err = run("train", "poem.txt", "--seq-length", "5000", rc=2, cwd=work)
    assert_error(err, "seq_length + 1")
    _, _, err = run("train", "poem.txt", "--beta1", "1.5", "--optimizer", "adam", rc=2,
                    cwd=work)
    assert_error(err, "beta1 must be < 1")
    _, _, err = run("train", "poem.txt", "--learning-rate", "1e308", "--clip", "none",
                    "--optimizer", "sgd", "--val-frac", "0", rc=2, cwd=work)
    assert_error(err, "diverged")


def test_resume_refuses_changes(trained):
    work, path = trained
    _, _, err = run("train", "poem.txt", "--resume", "m.npz", "--hidden-size", "50", rc=2,
                    cwd=work)
    assert_error(err, "--hidden-size 24", "leave --hidden-size out")
    (work / "poem2.txt").write_text(POEM * 9)
    _, _, err = run("train", "poem2.txt", "--resume", "m.npz", rc=2, cwd=work)
    assert_error(err, "differs from the one m.npz was trained on")
    _, _, err = run("train", "poem.txt", "--resume", "m.npz", "--epochs", "3", rc=2,
                    cwd=work)
    assert_error(err, "trained by iterations")
    _, _, err = run("train", "poem.txt", "--resume", "m.npz", "--lower", rc=2, cwd=work)
    assert_error(err, "--lower", "leave --lower out")
    _, _, err = run("train", "poem.txt", "--resume", "m.npz", "--clip", "none", rc=2,
                    cwd=work)
    assert_error(err, "--clip 5.0, not 0.0")
    run("train", "poem.txt", "--resume", "m.npz", "--clip", "5", "--hidden-size", "24",
        "--iterations", "310", "--quiet", cwd=work)
    assert charrnn.load(path).iteration == 310


# -- the README's terminal workflow ----------------------------------------------------------

def readme_console_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```console\n(.*?)```", text, re.S)
    return [line[2:] for block in blocks for line in block.splitlines()
            if line.startswith("$ charrnn ")]


def test_readme_terminal_workflow_runs(tmp_path):
    """Every ``$ charrnn ...`` line of the README's console blocks, in order, in one folder.

    They run in a shell (the README pipes and redirects) with this environment's
    ``charrnn`` first on the PATH.
    """
    commands = readme_console_commands()
    for verb in ("charrnn train", "--resume", "charrnn sample", "charrnn eval", "charrnn plot"):
        assert any(verb in c for c in commands), f"the README shows no {verb}"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        commands = [c for c in commands if not c.startswith("charrnn plot")]
    env = dict(ENV, PATH=os.pathsep.join([str(EXE.parent), os.environ.get("PATH", "")]))
    for command in commands:
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True,
                                text=True, timeout=120, env=env)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        assert "Traceback" not in result.stderr
