"""Checkpoints: exact round trip and resume, atomic writes, and refusal of bad files."""
import errno
import os
import stat
import zipfile

import numpy as np
import pytest

import charrnn
from charrnn import checkpoint
from charrnn.checkpoint import CheckpointError

from conftest import POEM

TEXT = POEM * 4


def state(model):
    """Everything a checkpoint must keep, as comparable values."""
    rng = model.rng.get_state()
    h = model.history
    return {
        "chars": model.chars, "params": model._flat, "m1": model._m1, "m2": model._m2,
        "hprev": model._state, "pointer": model.pointer, "iteration": model.iteration,
        "epoch": model.epoch, "smooth_loss": model.smooth_loss, "schedule": model.schedule,
        "rng_keys": rng[1], "rng_rest": rng[2:], "loss": h.loss, "smooth": h.smooth_loss,
        "val_iteration": h.val_iteration, "val_loss": h.val_loss,
        "hyper": {k: getattr(model, k) for k in (
            "hidden_size", "seq_length", "learning_rate", "seed", "activation", "optimizer",
            "clip", "bptt", "reset_each_epoch", "dtype", "beta1", "beta2", "decay_rate",
            "eps")},
    }


def assert_same_state(a, b):
    sa, sb = state(a), state(b)
    for key in sa:
        x, y = sa[key], sb[key]
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, f"{key}: dtype {x.dtype} != {y.dtype}"
            assert np.array_equal(x, y), f"{key}: max difference {np.max(np.abs(x - y))}"
        else:
            assert x == y, f"{key}: {x!r} != {y!r}"


CONFIGS = {
    "adagrad": dict(),
    "adam-float32": dict(optimizer="adam", dtype="float32"),
    "rmsprop-sigmoid-noclip": dict(optimizer="rmsprop", activation="sigmoid", clip=None),
    "sgd-srn": dict(optimizer="sgd", bptt="none", learning_rate=0.05),
}


@pytest.mark.parametrize("options", CONFIGS.values(), ids=CONFIGS.keys())
def test_round_trip_keeps_every_field(tmp_path, options):
    model = charrnn.train(TEXT, hidden_size=16, num_iterations=150, seed=3, **options)
    model.history.add_val_loss(100, 2.5)
    model.sample(20)  # move the RandomState away from its seed
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = charrnn.load(path)
    assert_same_state(loaded, model)
    assert loaded.sample(100) == model.sample(100), "sampling after load"


@pytest.mark.parametrize("options", CONFIGS.values(), ids=CONFIGS.keys())
def test_resume_from_checkpoint_is_bit_for_bit(tmp_path, options):
    whole = charrnn.train(TEXT, hidden_size=16, num_iterations=300, seed=1, **options)
    half = charrnn.train(TEXT, hidden_size=16, num_iterations=170, seed=1, **options)
    half.save(tmp_path / "half.npz")
    resumed = charrnn.load(tmp_path / "half.npz")
    resumed.set_text(TEXT)
    resumed.fit(130)
    assert_same_state(resumed, whole)


def test_resume_mid_epoch_is_bit_for_bit(tmp_path):
    opts = dict(optimizer="sgd", clip=None, learning_rate=0.01, reset_each_epoch=True)
    whole = charrnn.train(TEXT, hidden_size=16, epochs=3, **opts)
    n = whole.iteration
    part = charrnn.CharRNN(charrnn.data.vocabulary(TEXT), 16, **opts)
    part.set_text(TEXT)
    part.fit(n // 2 + 3, schedule="epochs")  # stop in the middle of an epoch
    part.save(tmp_path / "p.npz")
    resumed = charrnn.load(tmp_path / "p.npz")
    assert resumed.schedule == "epochs"
    resumed.set_text(TEXT)
    resumed.fit(n - resumed.iteration, schedule="epochs")
    assert_same_state(resumed, whole)


def test_vocabulary_beyond_ascii_round_trips(tmp_path):
    text = "naïve café — 𝄞 music 🎵 ünïcödé\n" * 20
    model = charrnn.train(text, hidden_size=8, num_iterations=20)
    model.save(tmp_path / "u.npz")
    assert charrnn.load(tmp_path / "u.npz").chars == model.chars


def test_loaded_model_needs_text_to_train(tmp_path):
    charrnn.train(TEXT, hidden_size=8, num_iterations=10).save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="set_text"):
        charrnn.load(tmp_path / "m.npz").fit(10)


def test_fit_schedule_is_checked():
    model = charrnn.CharRNN(charrnn.data.vocabulary(TEXT), 8)
    model.set_text(TEXT)
    with pytest.raises(ValueError, match="schedule must be"):
        model.fit(10, schedule="minutes")
    with pytest.raises(ValueError, match="epochs needs"):
        model.fit(epochs=1, schedule="iterations")


def test_val_loss_history():
    h = charrnn.History()
    h.add_val_loss(100, 2.0)
    h.add_val_loss(200, 1.5)
    assert h.val_iteration.tolist() == [100, 200] and h.val_loss.tolist() == [2.0, 1.5]
    with pytest.raises(ValueError, match="bits_per_char"):
        h.add_val_loss(300, float("nan"))


# -- atomic writes ---------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    model = charrnn.train(TEXT, hidden_size=8, num_iterations=30)
    path = tmp_path / "m.npz"
    model.save(path)
    return model, path


def test_save_writes_exactly_the_path_and_leaves_no_temporary(saved, tmp_path):
    _, path = saved
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]
    model = charrnn.train(TEXT, hidden_size=8, num_iterations=5)
    model.save(tmp_path / "no_extension")
    assert (tmp_path / "no_extension").exists()
    assert not (tmp_path / "no_extension.npz").exists()


def test_crash_while_writing_keeps_the_old_checkpoint(saved, tmp_path, monkeypatch):
    model, path = saved
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.np, "savez", crash)
    model.fit(10)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"], "the temporary file was left behind"


# -- bad files -------------------------------------------------------------------------------

def rewrite(path, **changes):
    """Copy the checkpoint's entries, change some, and write it back."""
    with np.load(path, allow_pickle=False) as z:
        entries = {k: z[k] for k in z.files}
    entries.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **entries)


class Boom:
    """Unpickling this would create a file: the test checks it never happens."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_object_is_refused_and_never_unpickled(saved, tmp_path):
    _, path = saved
    marker = tmp_path / "pwned"
    rewrite(path, params=np.array([Boom(marker)], dtype=object))
    with pytest.raises(CheckpointError, match="pickled Python object.*never unpickles"):
        charrnn.load(path)
    assert not marker.exists()


def test_truncated_file_is_refused(saved):
    _, path = saved
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 10):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated or corrupted"):
            charrnn.load(path)


def test_corrupted_bytes_are_caught(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("params.npy")
    k = info.header_offset + 30 + len(info.filename) + 200  # inside the array's data
    data[k] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        charrnn.load(path)


def test_future_format_version_is_refused(saved):
    _, path = saved
    rewrite(path, format_version=np.array(checkpoint.FORMAT_VERSION + 1, np.int64))
    with pytest.raises(CheckpointError, match="newer than this charrnn reads"):
        charrnn.load(path)


def test_files_that_are_not_checkpoints(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a charrnn checkpoint"):
        charrnn.load(text)
    empty = tmp_path / "e.npz"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        charrnn.load(empty)
    other = tmp_path / "o.npz"
    np.savez(other, x=np.arange(3))
    with pytest.raises(CheckpointError, match="not a charrnn checkpoint"):
        charrnn.load(other)
    with pytest.raises(FileNotFoundError):
        charrnn.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("change, match", [
    (dict(params=np.zeros(7)), "entry 'params' has 7 values, but hidden size 8"),
    (dict(m1=np.zeros(3, np.float32)), "entry 'm1'"),
    (dict(hprev=np.full(8, np.nan)), "NaN"),
    (dict(config=np.array("{not json")), "not valid JSON"),
    (dict(chars=np.array([], np.uint32)), "vocabulary"),
    (dict(rng_pos=np.array(9999)), "rng_pos"),
    (dict(history_loss=np.zeros(3)), "different lengths"),
], ids=["params-shape", "m1-dtype", "hprev-nan", "config", "chars", "rng", "history"])
def test_inconsistent_contents_are_refused(saved, change, match):
    _, path = saved
    rewrite(path, **change)
    with pytest.raises(CheckpointError, match=match):
        charrnn.load(path)


def test_missing_entry_is_refused(saved):
    _, path = saved
    with np.load(path, allow_pickle=False) as z:
        entries = {k: z[k] for k in z.files if k != "m2"}
    with open(path, "wb") as f:
        np.savez(f, **entries)
    with pytest.raises(CheckpointError, match="no 'm2' entry"):
        charrnn.load(path)


def test_bad_hyperparameter_in_config_is_refused(saved):
    _, path = saved
    with np.load(path, allow_pickle=False) as z:
        config = str(z["config"][()])
    rewrite(path, config=np.array(config.replace('"tanh"', '"relu"')))
    with pytest.raises(CheckpointError, match="activation"):
        charrnn.load(path)


# -- what saving may replace ---------------------------------------------------------------

def leftovers(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".tmp"))


def make_device(path):
    """A character device like /dev/null, in a test folder; skips without the rights."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as e:
        pytest.skip(f"cannot make a device node here ({e.strerror}); needs root or CAP_MKNOD")


SPECIAL = {
    "fifo": (os.mkfifo, stat.S_ISFIFO, "a FIFO", errno.EINVAL),
    "directory": (os.mkdir, stat.S_ISDIR, "a directory", errno.EISDIR),
    "char-device": (make_device, stat.S_ISCHR, "a character device", errno.EINVAL),
}


@pytest.mark.parametrize("through_link", [False, True], ids=["direct", "symlink"])
@pytest.mark.parametrize("kind", SPECIAL, ids=SPECIAL)
def test_save_refuses_what_is_not_a_regular_file(tmp_path, kind, through_link, monkeypatch):
    make, is_kind, words, code = SPECIAL[kind]
    target = tmp_path / "target"
    make(target)
    path = target
    if through_link:
        path = tmp_path / "link.npz"
        os.symlink(target, path)
    made = []
    real_mkstemp = checkpoint.tempfile.mkstemp
    monkeypatch.setattr(checkpoint.tempfile, "mkstemp",
                        lambda **kw: made.append(kw) or real_mkstemp(**kw))
    model = charrnn.train(TEXT, hidden_size=8, num_iterations=5)
    with pytest.raises(OSError, match=f"cannot save checkpoint .*{words}.*only to regular "
                                      f"files; nothing was written") as e:
        model.save(path)
    assert e.value.errno == code
    assert is_kind(os.stat(target).st_mode), f"the {kind} was replaced"
    assert not through_link or os.path.islink(path)
    assert made == [], "a temporary file was created before the refusal"


def test_save_refuses_a_socket(monkeypatch):
    import socket
    import tempfile
    with tempfile.TemporaryDirectory(dir="/tmp") as d:  # short: socket paths are limited
        path = os.path.join(d, "s")
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(path)
            model = charrnn.train(TEXT, hidden_size=8, num_iterations=5)
            with pytest.raises(OSError, match="is a socket"):
                model.save(path)
            assert stat.S_ISSOCK(os.stat(path).st_mode)


def test_save_writes_through_a_symlink(tmp_path):
    real, links = tmp_path / "real", tmp_path / "links"
    real.mkdir()
    links.mkdir()
    target = real / "model.npz"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    link = links / "m.npz"
    os.symlink(target, link)
    model = charrnn.train(TEXT, hidden_size=8, num_iterations=5)
    model.save(link)
    assert os.path.islink(link) and os.readlink(link) == str(target)
    assert_same_state(charrnn.load(target), model)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640, "the permission bits changed"
    assert sorted(os.listdir(real)) == ["model.npz"] and sorted(os.listdir(links)) == ["m.npz"]


def test_save_through_a_chain_of_relative_symlinks(tmp_path):
    (tmp_path / "d").mkdir()
    os.symlink("d/final.npz", tmp_path / "one")
    os.symlink("one", tmp_path / "two")
    model = charrnn.train(TEXT, hidden_size=8, num_iterations=5)
    model.save(tmp_path / "two")
    assert os.path.islink(tmp_path / "two") and os.path.islink(tmp_path / "one")
    assert charrnn.load(tmp_path / "d" / "final.npz").chars == model.chars


def test_save_through_a_dangling_symlink(tmp_path):
    model = charrnn.train(TEXT, hidden_size=8, num_iterations=5)
    link = tmp_path / "link.npz"
    os.symlink(tmp_path / "new.npz", link)  # the folder exists: the target is created
    model.save(link)
    assert os.path.islink(link) and charrnn.load(tmp_path / "new.npz").chars == model.chars
    nowhere = tmp_path / "nowhere.npz"
    os.symlink(tmp_path / "missing" / "m.npz", nowhere)
    with pytest.raises(FileNotFoundError, match="symbolic link to .*missing/m.npz, whose "
                                                "folder does not exist"):
        model.save(nowhere)
    assert os.path.islink(nowhere) and not (tmp_path / "missing").exists()


def test_save_to_a_loop_of_symlinks(tmp_path):
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    model = charrnn.train(TEXT, hidden_size=8, num_iterations=5)
    with pytest.raises(OSError, match="loop of symbolic links") as e:
        model.save(tmp_path / "a")
    assert e.value.errno == errno.ELOOP
    assert os.path.islink(tmp_path / "a") and os.path.islink(tmp_path / "b")


def test_target_replaced_by_a_fifo_while_writing(saved, tmp_path, monkeypatch):
    """Checked again just before the rename: a FIFO put there meanwhile survives."""
    model, path = saved
    real_savez = checkpoint.np.savez

    def swap(f, **arrays):
        real_savez(f, **arrays)
        os.unlink(path)
        os.mkfifo(path)

    monkeypatch.setattr(checkpoint.np, "savez", swap)
    with pytest.raises(OSError, match="is a FIFO"):
        model.save(path)
    assert stat.S_ISFIFO(os.stat(path).st_mode)
    assert leftovers(tmp_path) == [], "the temporary file was left behind"


def test_new_checkpoint_gets_the_umask_mode(tmp_path):
    model = charrnn.train(TEXT, hidden_size=8, num_iterations=5)
    old = os.umask(0o027)
    try:
        model.save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode) == 0o640
