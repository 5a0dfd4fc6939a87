"""Checkpoints: exact round trip and resume, atomic writes, and refusal of bad files."""
import os
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
        "hprev": model._hprev, "pointer": model.pointer, "iteration": model.iteration,
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
