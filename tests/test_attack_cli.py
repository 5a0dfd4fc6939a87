"""Issue 9, the command line's share: each attack on ``charrnn`` ends in one error line
(no traceback, non-zero status) or a correct result.

Item 2: outputs that are the training text or not regular files. Item 4: hostile
``meta`` in checkpoints. Item 5: requests too large for memory. Item 6: SIGTERM,
SIGHUP and failing prints save like Ctrl-C. Item 7: texts are streamed (same
result as the whole-text path, bounded memory) and endless files refused. Item 8:
``eval --encoding`` with a bytes model, ``bench`` arguments.

Everything runs the installed ``charrnn`` script in a subprocess, except where a test
must reach inside (monkeypatching a chunk size or an allocation).
"""
import errno
import hashlib
import io
import json
import math
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import charrnn
from charrnn import checkpoint, cli, data
from charrnn.bench import generated_text

from conftest import POEM, under_asan
from test_cli import work  # noqa: F401  (a fixture: a folder holding poem.txt)

EXE = Path(sys.executable).parent / "charrnn"
CHARRNN = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "charrnn"]
ENV = dict(os.environ, PYTHONUNBUFFERED="1")
TINY = ["--hidden-size", "8", "--iterations", "20", "--quiet"]


def run(*args, cwd, rc=0, env=None, timeout=60, **kwargs):
    """``charrnn ARGS``: (result, stdout, stderr); never a traceback, and status ``rc``."""
    result = subprocess.run(CHARRNN + [str(a) for a in args], cwd=cwd, capture_output=True,
                            timeout=timeout, env=env or ENV, **kwargs)
    out, err = result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    if rc is not None:
        assert result.returncode == rc, f"exit status {result.returncode} != {rc}\n{err}"
    return result, out, err


def one_line(err, *fragments, prefix="charrnn: error: "):
    """``err`` is one line starting with ``prefix`` and holding every fragment."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture
def trained(work):
    run("train", "poem.txt", *TINY, "--val-frac", "0.1", "--checkpoint", "m.npz", cwd=work)
    return work


def mknod_null(path):
    """A character device like /dev/null at ``path``, or skip where we may not make one."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError, OSError) as e:
        pytest.skip(f"cannot make a device node here ({e}); needs root or CAP_MKNOD")


# -- item 2: what the CLI writes ------------------------------------------------------------

@pytest.mark.parametrize("how", ["same-path", "symlink", "hard-link", "relative"])
def test_checkpoint_that_is_the_training_text_is_refused(work, how):
    target = {"same-path": "poem.txt", "symlink": "link.txt", "hard-link": "hard.txt",
              "relative": "./sub/../poem.txt"}[how]
    (work / "sub").mkdir()
    os.symlink("poem.txt", work / "link.txt")
    os.link(work / "poem.txt", work / "hard.txt")
    before = (work / "poem.txt").read_bytes()
    _, _, err = run("train", "poem.txt", *TINY, "--checkpoint", target, rc=2, cwd=work)
    one_line(err, f"cannot write checkpoint {target}", "it is the training text")
    assert (work / "poem.txt").read_bytes() == before


def test_keep_best_and_resume_outputs_are_checked_too(trained):
    work = trained
    # the best checkpoint's path is the text
    (work / "c.best.npz").write_text(POEM * 10)
    _, _, err = run("train", "c.best.npz", *TINY, "--val-frac", "0.1", "--checkpoint",
                    "c.npz", "--keep-best", rc=2, cwd=work)
    one_line(err, "cannot write checkpoint c.best.npz", "the training text")
    # resuming takes the text from the checkpoint's meta: still not to be overwritten
    _, _, err = run("train", "--resume", "m.npz", "--checkpoint", "poem.txt", "--iterations",
                    "30", rc=2, cwd=work)
    one_line(err, "cannot write checkpoint poem.txt", "the training text")
    assert (work / "poem.txt").read_text() == POEM * 10


@pytest.mark.parametrize("kind", ["directory", "fifo", "socket", "device"])
def test_checkpoint_that_is_not_a_regular_file_is_refused(work, kind):
    path = work / "special"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
    else:
        mknod_null(path)
    mode = os.stat(path).st_mode
    _, _, err = run("train", "poem.txt", *TINY, "--checkpoint", "special", rc=2, cwd=work,
                    timeout=20)
    one_line(err, "cannot write checkpoint special: it is a", "not a regular file")
    assert os.stat(path).st_mode == mode, "the special file was replaced"
    if kind == "socket":
        server.close()


def test_plot_output_is_checked_before_anything_is_drawn(trained):
    work = trained
    before = (work / "m.npz").read_bytes()
    _, _, err = run("plot", "m.npz", "-o", "m.npz", rc=2, cwd=work)
    one_line(err, "cannot write image m.npz: it is the checkpoint")
    os.mkfifo(work / "fifo.png")
    _, _, err = run("plot", "m.npz", "-o", "fifo.png", rc=2, cwd=work, timeout=20)
    one_line(err, "cannot write image fifo.png: it is a FIFO")
    assert (work / "m.npz").read_bytes() == before


def test_bench_json_output_is_checked(work):
    _, _, err = run("bench", "poem.txt", "--json", "poem.txt", "--hidden-sizes", "4",
                    "--rounds", "1", "--seconds", "0.01", "--no-extras", "--quiet", rc=2,
                    cwd=work)
    one_line(err, "cannot write JSON poem.txt: it is the text")
    assert (work / "poem.txt").read_text() == POEM * 10


# -- item 4: hostile meta in a checkpoint ---------------------------------------------------

BAD_META = [
    ("eval_every", 0), ("eval_every", "5"), ("eval_every", True), ("eval_every", 2.5),
    ("drop_chars", 1), ("drop_chars", ["a"]), ("target", [1]), ("target", {"iterations": -1}),
    ("target", {"iterations": "9"}), ("target", {"forever": 1}), ("target", {}),
    ("target", {"iterations": 2**70}), ("val_frac", "0.1"), ("val_frac", 1.5),
    ("val_frac", float("nan")), ("val_frac", True), ("source", 3), ("source", ""),
    ("source", ["poem.txt"]), ("encoding", 5), ("encoding", "klingon"), ("encoding", "zlib"),
    ("bytes", "yes"), ("lower", 1), ("strip_digits", None), ("text_sha256", 5),
    ("text_sha256", "abc"),
]


@pytest.fixture
def meta_work(work):
    model = charrnn.train(POEM * 10, hidden_size=8, num_iterations=10)
    return work, model


@pytest.mark.parametrize("field,value", BAD_META,
                         ids=[f"{f}={json.dumps(v)}" for f, v in BAD_META])
def test_resume_with_a_bad_meta_field_names_it(meta_work, field, value):
    work, model = meta_work
    meta = dict(cli.TEXT_OPTIONS, val_frac=0.0, eval_every=100, target={"iterations": 20},
                source=str(work / "poem.txt"))
    # an integer source must not be opened as a file descriptor: give it an open one
    fd = os.open(work / "poem.txt", os.O_RDONLY)
    meta[field] = fd if (field, value) == ("source", 3) else value
    checkpoint.save(model, work / "bad.npz", meta=meta)
    try:
        result, _, err = run("train", "--resume", "bad.npz", "--iterations", "30", rc=2,
                             cwd=work, pass_fds=(fd,))
    finally:
        os.close(fd)
    line = one_line(err)
    if field == "encoding" and isinstance(value, str):
        assert value in line  # a string naming no text encoding: said as such
    else:
        assert f"meta {field} = " in line, line
    assert charrnn.load(work / "bad.npz").iteration == 10, "the checkpoint was changed"


@pytest.mark.parametrize("command", ["sample", "eval"])
def test_sample_and_eval_check_the_meta_they_read(meta_work, command):
    work, model = meta_work
    checkpoint.save(model, work / "bad.npz", meta={"bytes": "yes"})
    extra = ["poem.txt"] if command == "eval" else []
    _, _, err = run(command, "bad.npz", *extra, rc=2, cwd=work)
    one_line(err, "bad.npz", "meta bytes = 'yes'", "true or false")


def test_meta_from_python_saves_still_works(meta_work):
    """Checkpoints saved by model.save have no meta: the defaults apply."""
    work, model = meta_work
    model.save(work / "plain.npz")
    run("sample", "plain.npz", "-n", "10", cwd=work)
    run("eval", "plain.npz", "poem.txt", cwd=work)
    run("train", "poem.txt", "--resume", "plain.npz", "--iterations", "30", "--quiet",
        cwd=work)
    assert charrnn.load(work / "plain.npz").iteration == 30


# -- item 5: requests too large for memory ----------------------------------------------------

def test_a_model_too_large_for_memory_is_refused_up_front(work):
    _, _, err = run("train", "poem.txt", "--hidden-size", "100000", rc=2, cwd=work)
    one_line(err, "hidden size 100000", "needs about", "GiB of memory", "available")


def _limit_address_space():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS as on Linux")
@pytest.mark.skipif(sys.platform.startswith("linux") and under_asan(),
                    reason="AddressSanitizer's shadow memory cannot fit under RLIMIT_AS")
def test_the_memory_check_respects_rlimit_as(work):
    # 8000 hidden units: 0.5 GB for each (H, H) float64 matrix, several of them; the
    # machine may have the memory, a 1 GiB address space has not
    _, _, err = run("train", "poem.txt", "--hidden-size", "8000", "--iterations", "1", rc=2,
                    cwd=work, preexec_fn=_limit_address_space)
    one_line(err, "hidden size 8000", "needs about")


def test_memory_error_is_one_line(work, monkeypatch, capsys):
    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 80.0 GiB for an array with shape (10**10,)")

    monkeypatch.setattr(cli, "CharRNN", no_memory)
    assert cli.main(["train", str(work / "poem.txt"), "--iterations", "1"]) == 2
    one_line(capsys.readouterr().err, "out of memory (Unable to allocate 80.0 GiB")


def test_a_bug_keeps_its_traceback(work, monkeypatch):
    """Only expected errors become one line; a TypeError inside charrnn is a bug."""
    def broken(*args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(cli, "CharRNN", broken)
    with pytest.raises(TypeError, match="a bug"):
        cli.main(["train", str(work / "poem.txt"), "--iterations", "1", "--quiet"])


@pytest.mark.parametrize("argv, message", [
    (["train", "poem.txt", "--sample-length", str(10**12)], "--sample-length: must be"),
    (["plot", "m.npz", "--dpi", "100000"], "--dpi: must be >= 1 and <= 1200"),
    (["bench", "--seconds", "inf"], "--seconds: must be a number > 0 and <= 60"),
    (["bench", "--seconds", "nan"], "--seconds: must be a number > 0"),
    (["bench", "--seconds", "0"], "--seconds: must be a number > 0"),
    (["bench", "--seconds=-1"], "--seconds: must be a number > 0"),
    (["bench", "--rounds", "0"], "--rounds: must be >= 1"),
    (["train", "poem.txt", "--iterations", str(2**70)], "--iterations: must be"),
], ids=["sample-length", "dpi", "seconds-inf", "seconds-nan", "seconds-0", "seconds-negative",
        "rounds-0", "iterations-2**70"])
def test_arguments_beyond_their_bounds_are_usage_errors(work, argv, message):
    _, _, err = run(*argv, rc=2, cwd=work)
    assert err.splitlines()[-1].startswith("charrnn") and message in err, err


def test_bench_refuses_hidden_sizes_beyond_memory(work):
    _, _, err = run("bench", "--hidden-sizes", "32,100000", "--quiet", rc=2, cwd=work)
    one_line(err, "hidden size 100000", "needs about")


# -- item 6: SIGTERM, SIGHUP and failing prints save like Ctrl-C ------------------------------

def assert_same_training(a, b):
    for name in ("_flat", "_m1", "_m2", "_state"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in ("iteration", "pointer", "epoch", "smooth_loss", "schedule"):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("loss", "smooth_loss", "val_iteration", "val_loss"):
        assert np.array_equal(getattr(a.history, name), getattr(b.history, name)), name
    ra, rb = a.rng.get_state(), b.rng.get_state()
    assert np.array_equal(ra[1], rb[1]) and ra[2:] == rb[2:], "RandomState"


SMALL = ["--hidden-size", "16", "--print-every", "100", "--val-frac", "0.1", "--eval-every",
         "200"]


def resumes_bit_for_bit(work, path, extra=250):
    """Resume ``path`` for ``extra`` iterations: the bits of an uninterrupted run."""
    stopped = charrnn.load(work / path).iteration
    total = stopped + extra
    run("train", "--resume", path, "--iterations", total, "--quiet", cwd=work)
    run("train", "poem.txt", "--iterations", total, *SMALL, "--checkpoint", "u.npz",
        "--quiet", cwd=work)
    assert_same_training(charrnn.load(work / path), charrnn.load(work / "u.npz"))
    return stopped


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_save_and_resume_bit_for_bit(work, signame):
    signum = getattr(signal, signame, None)
    if signum is None:
        pytest.skip(f"no {signame} here")
    args = ["train", "poem.txt", "--iterations", "100000000", *SMALL, "--checkpoint", "s.npz",
            "--checkpoint-every", "100000"]
    proc = subprocess.Popen(CHARRNN + args, cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        for line in proc.stdout:
            if line.startswith("iter 300/"):
                break
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    one_line(err, f"interrupted by {signame} at iteration", "saved s.npz",
             "--resume s.npz", prefix="charrnn: interrupted")
    assert 300 <= resumes_bit_for_bit(work, "s.npz") < 100000000


def test_a_closed_stdout_ends_the_run_with_its_checkpoint(work):
    args = ["train", "poem.txt", "--iterations", "100000000", *SMALL, "--checkpoint", "p.npz",
            "--checkpoint-every", "100000"]
    proc = subprocess.Popen(CHARRNN + args, cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    try:
        proc.stdout.readline()  # the header: training has started
        proc.stdout.close()     # the reader goes away (charrnn train ... | head -1)
        err = proc.communicate(timeout=60)[1].decode()
    finally:
        proc.kill()
    assert proc.returncode == 2, err
    line = one_line(err, "cannot print on stdout", "training stopped at iteration",
                    "saved p.npz", "--resume p.npz")
    stopped = resumes_bit_for_bit(work, "p.npz")
    assert f"stopped at iteration {stopped};" in line


class FailingStdout(io.StringIO):
    """A stdout whose terminal goes away when the first sample is printed."""

    def write(self, text):
        if "---- sample" in text:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return super().write(text)


def test_a_failing_sample_print_saves_first(work, monkeypatch, capsys):
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "stdout", FailingStdout())
    status = cli.main(["train", "poem.txt", "--iterations", "1000", *SMALL, "--sample-every",
                       "300", "--checkpoint", "f.npz"])
    assert status == 2
    one_line(capsys.readouterr().err, "cannot print on stdout: Input/output error",
             "training stopped at iteration 300", "saved f.npz")
    assert charrnn.load(work / "f.npz").iteration == 300


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_stdout_is_one_line(work):
    with open("/dev/full", "w") as full:
        result = subprocess.run(CHARRNN + ["train", "poem.txt", *TINY[:-1]], cwd=work,
                                stdout=full, stderr=subprocess.PIPE, env=ENV, timeout=60)
    err = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in err, err
    one_line(err, "cannot print on stdout: No space left on device")


def test_a_non_ascii_sample_on_an_ascii_terminal_is_escaped_and_saved(work):
    """PYTHONIOENCODING=ascii used to end the run at the first Greek sample, unsaved."""
    (work / "greek.txt").write_text("Ωμέγα σίγμα ΣΊΓΜΑ λόγος. " * 100, encoding="utf-8")
    env = dict(ENV, PYTHONIOENCODING="ascii")
    _, out, _ = run("train", "greek.txt", "--iterations", "300", "--hidden-size", "8",
                    "--print-every", "100", "--sample-every", "100", "--checkpoint", "g.npz",
                    cwd=work, env=env)
    assert "---- sample at iteration 100" in out and "\\u03" in out
    assert charrnn.load(work / "g.npz").iteration == 300


# -- item 7: streamed texts -----------------------------------------------------------------------

def whole_text(path, options):
    """The text as the CLI read it before streaming: all of it, then cleaned."""
    raw = Path(path).read_bytes()
    if options.get("bytes"):
        raw = raw.lower() if options.get("lower") else raw
        if options.get("strip_digits"):
            raw = raw.translate(None, b"0123456789")
        raw = raw.translate(None, os.fsencode(options.get("drop_chars", "")))
        return raw.decode("latin-1")
    text = raw.decode(options.get("encoding", "utf-8"))
    text = text.lower() if options.get("lower") else text
    if options.get("strip_digits"):
        text = "".join(c for c in text if not c.isdigit())
    return "".join(c for c in text if c not in options.get("drop_chars", ""))


STREAM_CASES = {
    "plain": ([], {}),
    "lower+digits+drop": (["--lower", "--strip-digits", "--drop-chars", "σς,"],
                          dict(lower=True, strip_digits=True, drop_chars="σς,")),
    "latin-1": (["--encoding", "latin-1", "--lower"], dict(encoding="latin-1", lower=True)),
    "bytes": (["--bytes", "--lower", "--drop-chars", "x"],
              dict(bytes=True, lower=True, drop_chars="x")),
}


@pytest.mark.parametrize("case", list(STREAM_CASES))
def test_streamed_training_equals_the_whole_text_path(work, monkeypatch, capsys, case):
    """The CLI reads in pieces of 7 bytes here: model, validation and digest as before."""
    flags, options = STREAM_CASES[case]
    text = ("ΟΔΥΣΣΕΥΣ ΚΑΙ Ο ΛΟΓΟΣ, 12 ٣ steps; " + POEM) * 6
    (work / "t.txt").write_bytes(text.encode("latin-1", "replace") if case == "latin-1"
                                 else text.encode("utf-8"))
    monkeypatch.setattr(data, "CHUNK_BYTES", 7)
    monkeypatch.chdir(work)
    assert cli.main(["train", "t.txt", "--hidden-size", "12", "--iterations", "60",
                     "--val-frac", "0.15", "--eval-every", "20", "--checkpoint", "c.npz",
                     "--quiet", *flags]) == 0, capsys.readouterr().err
    model, meta = charrnn.load_with_meta("c.npz")
    whole = whole_text("t.txt", options)
    n_val = int(round(len(whole) * 0.15))
    train, val = whole[:len(whole) - n_val], whole[len(whole) - n_val:]
    assert meta["text_sha256"] == hashlib.sha256(whole.encode("utf-8", "surrogatepass")
                                                 ).hexdigest()
    expected = charrnn.CharRNN(data.vocabulary(whole), hidden_size=12)
    expected.set_text(train)
    expected.fit(60)
    assert model.chars == expected.chars
    assert np.array_equal(model._flat, expected._flat)
    assert model.history.val_loss[-1] == expected.evaluate(val) / math.log(2)
    # eval streams the same way, bit for bit model.evaluate of the whole text
    assert cli.main(["eval", "c.npz", "t.txt"]) == 0
    out = capsys.readouterr().out
    assert f"{expected.evaluate(whole):.4f} nats/char" in out
    assert model.evaluate(data.encode(whole, model.chars)) \
        == expected.evaluate(whole)


def peak_rss(args, cwd):
    """Peak resident memory of ``charrnn ARGS`` in bytes (Linux reports kB)."""
    proc = subprocess.Popen(CHARRNN + [str(a) for a in args], cwd=cwd, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert os.waitstatus_to_exitcode(status) == 0 and "Traceback" not in err, err
    return usage.ru_maxrss * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in kB on Linux")
@pytest.mark.skipif(sys.platform.startswith("linux") and under_asan(),
                    reason="AddressSanitizer keeps freed memory resident: RSS means nothing")
def test_peak_memory_of_a_20_mb_text_is_a_few_bytes_per_character(tmp_path):
    """Before: about 16 bytes per character (a 50 MB text peaked at 786 MB)."""
    piece = generated_text(1_000_000, seed=1)  # 65 characters: one byte per index
    n = 20_000_000
    with open(tmp_path / "big.txt", "w", encoding="utf-8") as f:
        for _ in range(n // len(piece)):
            f.write(piece)
    (tmp_path / "small.txt").write_text(piece[:30_000], encoding="utf-8")
    common = ["--hidden-size", "8", "--iterations", "10", "--quiet"]
    base = peak_rss(["train", "small.txt", *common, "--checkpoint", "s.npz"], tmp_path)
    big = peak_rss(["train", "big.txt", *common, "--checkpoint", "b.npz"], tmp_path)
    per_char = (big - base) / n
    # indices are 1 byte per character; the rest is chunks of 1 MiB
    assert per_char < 2.5, f"train: {per_char:.2f} bytes per character ({big / 2**20:.0f} MB)"
    # the bound, scaled to 50 MB of text: at most 350 MB in all
    assert base + 50_000_000 * per_char < 350 * 2**20
    # eval streams too (on 5 MB: evaluation runs the model over every character)
    with open(tmp_path / "five.txt", "w", encoding="utf-8") as f:
        for _ in range(5):
            f.write(piece)
    five = peak_rss(["eval", "s.npz", "five.txt"], tmp_path)
    assert (five - base) / 5_000_000 < 2.5, f"eval: {five / 2**20:.0f} MB"


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "directory", "device"])
def test_endless_and_special_texts_are_refused_at_once(work, kind):
    path = {"dev-zero": "/dev/zero", "fifo": work / "fifo", "directory": work / "dir",
            "device": work / "null"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        mknod_null(path)
    for argv in (["train", path, "--iterations", "1"], ["eval", "m.npz", path]):
        if argv[0] == "eval":
            charrnn.train(POEM * 10, hidden_size=4, num_iterations=1).save(work / "m.npz")
        _, _, err = run(*argv, rc=2, cwd=work, timeout=20)
        if kind == "directory":
            one_line(err, "is a directory")
        else:
            one_line(err, "not a regular file", "a device or pipe may never end")


# -- item 8: small ones --------------------------------------------------------------------------

def test_eval_refuses_encoding_for_a_bytes_model(work):
    run("train", "poem.txt", "--bytes", *TINY, "--checkpoint", "b.npz", cwd=work)
    _, _, err = run("eval", "b.npz", "poem.txt", "--encoding", "latin-1", rc=2, cwd=work)
    one_line(err, "b.npz is a --bytes model", "--encoding latin-1 does not apply")
    run("eval", "b.npz", "poem.txt", cwd=work)


def test_bench_says_directory_and_missing_file(work):
    (work / "dir").mkdir()
    _, _, err = run("bench", "dir", "--quiet", rc=2, cwd=work)
    one_line(err, "dir is a directory")
    _, _, err = run("bench", "missing.txt", "--quiet", rc=2, cwd=work)
    one_line(err, "no such file: missing.txt")
