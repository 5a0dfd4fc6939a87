"""Faults lose nothing: divergence, SIGKILL during checkpointed training, disk full and
permission errors while saving all leave the last good checkpoint as it was."""
import errno
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import charrnn
from charrnn import checkpoint, cli
from conftest import POEM

TEXT = POEM * 4
DIVERGE = dict(learning_rate=1e308, optimizer="sgd", clip=None)


# The installed console script; `python -m charrnn` only as a fallback, and never from
# the source tree (-m puts the working folder first on sys.path, and the source
# charrnn/ there has no compiled kernels).
EXE = Path(sys.executable).parent / "charrnn"
CHARRNN = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "charrnn"]
NEUTRAL = tempfile.gettempdir()


def cli_run(*argv):
    """``charrnn ...`` in a fresh interpreter: (status, stdout, stderr)."""
    p = subprocess.run([*CHARRNN, *map(str, argv)], cwd=NEUTRAL,
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


# -- divergence ----------------------------------------------------------------------------------

def test_divergence_raises_and_leaves_the_checkpoint_untouched(tmp_path):
    path = tmp_path / "m.npz"
    model = charrnn.train(TEXT, hidden_size=16, num_iterations=50)
    model.save(path)
    before = path.read_bytes()
    model.learning_rate, model.optimizer, model.clip = 1e308, "sgd", None
    with pytest.raises(FloatingPointError, match="training diverged.*learning_rate"):
        model.fit(100)
    # a diverged model refuses to overwrite the good checkpoint with NaNs
    if not np.isfinite(model._flat).all():
        with pytest.raises(FloatingPointError, match="not saving .*diverged.*kept"):
            model.save(path)
    else:
        model.save(tmp_path / "other.npz")  # parameters kept as they were: still savable
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) in (["m.npz"], ["m.npz", "other.npz"])


def test_divergence_from_the_start():
    with pytest.raises(FloatingPointError, match="training diverged"):
        charrnn.train(TEXT, hidden_size=16, num_iterations=100, **DIVERGE)


def test_cli_divergence_is_one_error_line_and_keeps_the_checkpoint(tmp_path):
    text, path = tmp_path / "t.txt", tmp_path / "m.npz"
    text.write_text(TEXT, encoding="utf-8")
    # find where this run diverges, then stop one checkpoint before it
    probe = charrnn.CharRNN(charrnn.data.vocabulary(TEXT), 8, seq_length=10, **DIVERGE)
    probe.set_text(TEXT)
    with pytest.raises(FloatingPointError):
        probe.fit(1000, callback=lambda m: None, report_every=1)
    good = probe.iteration  # iterations that completed
    assert good >= 1, "diverges at once: pick a smaller learning rate for this test"
    common = ["--hidden-size", 8, "--seq-length", 10, "--learning-rate", 1e308, "--optimizer",
              "sgd", "--clip", "none", "--quiet", "--checkpoint", path]
    status, out, err = cli_run("train", text, "--iterations", good, *common)
    assert status == 0, err
    before = path.read_bytes()
    status, out, err = cli_run("train", "--resume", path, "--iterations", 1000, "--quiet")
    assert status == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("charrnn: error: training diverged"), err
    assert path.read_bytes() == before, "the last good checkpoint was changed"
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


# -- SIGKILL at random moments ------------------------------------------------------------------

KILLS = 24


def test_sigkill_at_random_moments_always_leaves_a_checkpoint_that_resumes(tmp_path):
    """Kill `charrnn train --checkpoint-every 2` at random times, resuming each time.

    Every run after the first resumes (CLI --resume) from what the last kill left, so
    each kill is followed by a load and resume of its checkpoint. At the end the
    checkpoint must equal, bit for bit, an uninterrupted run to the same iteration.
    """
    text, path = tmp_path / "t.txt", tmp_path / "m.npz"
    text.write_text(TEXT, encoding="utf-8")
    opts = ["--hidden-size", 24, "--seq-length", 12, "--checkpoint-every", 2,
            "--print-every", 10**6, "--quiet"]
    total = 10**7  # never reached: every run is killed
    rng = np.random.RandomState(int.from_bytes(os.urandom(4), "little"))
    seen_iterations = []
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    for k in range(KILLS):
        if path.exists():
            argv = ["train", "--resume", path, "--iterations", total] + opts
        else:
            argv = ["train", text, "--checkpoint", path, "--iterations", total] + opts
        proc = subprocess.Popen([*CHARRNN, *map(str, argv)], cwd=NEUTRAL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        # the interpreter and numpy take ~0.15-0.3 s to start: kill anywhere from
        # before training starts to well into it (and so, often, inside a save)
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        if proc.returncode != -signal.SIGKILL:
            pytest.fail(f"run {k} ended by itself (status {proc.returncode}): {err.decode()}")
        if path.exists():
            model = charrnn.load(path)  # never half a file
            seen_iterations.append(model.iteration)
    assert len(seen_iterations) >= KILLS // 2, "too few kills happened after the first save"
    assert seen_iterations == sorted(seen_iterations), "a resumed run went backwards"
    # the last checkpoint resumes, and equals an uninterrupted run to its iteration
    status, _, err = cli_run("train", "--resume", path, "--iterations",
                             seen_iterations[-1] + 6, *opts)
    assert status == 0, err
    final = charrnn.load(path)
    ref = charrnn.CharRNN(charrnn.data.vocabulary(TEXT), 24, seq_length=12)
    ref.set_text(TEXT)
    ref.fit(final.iteration)
    assert np.array_equal(final._flat, ref._flat), "kills and resumes changed the parameters"
    assert np.array_equal(final._m1, ref._m1) and np.array_equal(final._state, ref._state)
    assert np.array_equal(final.history.loss, ref.history.loss)
    # a kill inside a save may leave its temporary file behind, never anything else
    left = sorted(os.listdir(tmp_path))
    assert all(f in ("t.txt", "m.npz") or (f.startswith(".m.npz.") and f.endswith(".tmp"))
               for f in left), left


# -- disk full and permission errors while saving -------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    model = charrnn.train(TEXT, hidden_size=8, num_iterations=30)
    path = tmp_path / "m.npz"
    model.save(path)
    model.fit(10)  # the next save would change the file
    return model, path, path.read_bytes()


def _disk_full_on_write(monkeypatch):
    real_savez = checkpoint.np.savez

    def savez(f, **arrays):
        f.write(b"PK\x03\x04 the first bytes")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.np, "savez", savez)
    return real_savez


def _disk_full_on_fsync(monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)


def _permission_on_create(monkeypatch):
    def mkstemp(*a, **k):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(checkpoint.tempfile, "mkstemp", mkstemp)


def _permission_on_replace(monkeypatch):
    def replace(src, dst):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(checkpoint.os, "replace", replace)


def _quota_on_replace(monkeypatch):
    def replace(src, dst):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(checkpoint.os, "replace", replace)


FAULTS = [
    ("disk-full-while-writing", _disk_full_on_write, OSError, errno.ENOSPC),
    ("disk-full-at-fsync", _disk_full_on_fsync, OSError, errno.ENOSPC),
    ("permission-creating-the-temporary", _permission_on_create, PermissionError, errno.EACCES),
    ("permission-renaming", _permission_on_replace, PermissionError, errno.EACCES),
    ("quota-renaming", _quota_on_replace, OSError, errno.EDQUOT),
]


@pytest.mark.parametrize("fid,inject,exc,code", FAULTS, ids=[f[0] for f in FAULTS])
def test_save_errors_are_clear_and_keep_the_previous_file(saved, monkeypatch, fid, inject, exc,
                                                          code):
    model, path, before = saved
    inject(monkeypatch)
    with pytest.raises(exc, match=r"cannot save checkpoint .*m\.npz: .*previous checkpoint "
                                  r"there is unchanged") as e:
        model.save(path)
    assert e.value.errno == code
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == ["m.npz"], "a temporary file was left behind"
    monkeypatch.undo()
    model.save(path)  # and once the fault is gone, saving works again
    assert charrnn.load(path).iteration == model.iteration


@pytest.mark.parametrize("fid,inject,exc,code", FAULTS[:2] + FAULTS[3:4],
                         ids=[f[0] for f in FAULTS[:2] + FAULTS[3:4]])
def test_cli_save_errors_are_one_line(tmp_path, capsys, monkeypatch, fid, inject, exc, code):
    text, path = tmp_path / "t.txt", tmp_path / "m.npz"
    text.write_text(TEXT, encoding="utf-8")
    argv = ["train", str(text), "--hidden-size", "8", "--quiet", "--checkpoint", str(path)]
    assert cli.main(argv + ["--iterations", "20"]) == 0
    before = path.read_bytes()
    inject(monkeypatch)
    status = cli.main(["train", "--resume", str(path), "--iterations", "40", "--quiet"])
    err = capsys.readouterr().err
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("charrnn: error: cannot save checkpoint"), err
    assert os.strerror(code) in lines[0]
    assert path.read_bytes() == before


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores directory permissions (covered by the monkeypatched cases)")
def test_read_only_directory(saved):
    model, path, before = saved
    os.chmod(path.parent, 0o555)
    try:
        with pytest.raises(PermissionError, match="cannot save checkpoint"):
            model.save(path)
    finally:
        os.chmod(path.parent, 0o755)
    assert path.read_bytes() == before
