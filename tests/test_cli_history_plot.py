"""Validation in ``charrnn train``, ``charrnn history`` (and ``History.to_csv``), ``plot``."""
import csv
import io

import numpy as np
import pytest
from test_cli import SMALL, assert_error, run, trained, work  # noqa: F401

import charrnn
from charrnn import cli


# -- validation: recorded at the end of every run, never stale --------------------------

def _progress(out):
    return [line for line in out.splitlines() if line.startswith("iter ")]


def test_validation_is_recorded_at_the_end_of_every_run(work):
    _, out, _ = run("train", "poem.txt", "--iterations", "250", *SMALL, "--eval-every",
                    "200", "--checkpoint", "v.npz", cwd=work)
    h = charrnn.load(work / "v.npz").history
    assert h.val_iteration.tolist() == [200, 250]
    # the summary's number is the history's last one
    assert f"validation {h.val_loss[-1]:.4f} bits/char" in out
    lines = _progress(out)
    assert [line.split()[1] for line in lines] == ["100/250", "200/250", "250/250"]
    # a line shows validation only when it was measured at that iteration
    assert " val " not in lines[0]
    assert f"val {h.val_loss[0]:.4f} bits/char" in lines[1]
    assert f"val {h.val_loss[1]:.4f} bits/char" in lines[2]
    # a run with nothing left to train records nothing twice
    run("train", "--resume", "v.npz", "--quiet", cwd=work)
    assert charrnn.load(work / "v.npz").history.val_iteration.tolist() == [200, 250]


def test_a_run_stopped_by_time_validates_where_it_stopped(work):
    _, out, _ = run("train", "poem.txt", "--iterations", "10000000", *SMALL, "--time", "0.3",
                    "--checkpoint", "t.npz", cwd=work)
    model = charrnn.load(work / "t.npz")
    h = model.history
    assert h.val_iteration[-1] == model.iteration
    assert f"validation {h.val_loss[-1]:.4f} bits/char" in out
    last = _progress(out)[-1]
    assert last.startswith(f"iter {model.iteration}/") and " val " in last


def test_keep_best_sees_the_final_validation(work):
    run("train", "poem.txt", "--iterations", "130", *SMALL, "--eval-every", "1000",
        "--checkpoint", "k.npz", "--keep-best", "--quiet", cwd=work)
    best = charrnn.load(work / "k.best.npz")
    assert best.iteration == 130 and best.history.val_iteration.tolist() == [130]


# -- charrnn history and History.to_csv ------------------------------------------------

def _rows(text):
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["iteration", "loss", "smooth_loss", "val_loss"]
    return rows[1:]


def test_history_prints_the_whole_history_as_csv(trained):
    work, path = trained
    _, out, err = run("history", path, cwd=work)
    h = charrnn.load(path).history
    rows = _rows(out)
    assert len(rows) == len(h) == 300 and err == ""
    assert [int(r[0]) for r in rows] == list(range(1, 301))
    assert np.array_equal([float(r[1]) for r in rows], h.loss)  # exact: repr
    assert np.array_equal([float(r[2]) for r in rows], h.smooth_loss)
    val = {int(r[0]): float(r[3]) for r in rows if r[3]}
    assert val == dict(zip(h.val_iteration.tolist(), h.val_loss.tolist()))
    assert sorted(val) == [100, 200, 300]
    _, _, err = run("history", path, "--output", "h.csv", cwd=work)
    assert (work / "h.csv").read_text() == out and "wrote h.csv" in err


@pytest.mark.parametrize("target, fragments", [
    ("m.npz", ["cannot write CSV file m.npz", "it is the checkpoint"]),
    ("sub", ["cannot write CSV file sub", "directory"]),
    ("nowhere/h.csv", ["cannot write CSV file nowhere/h.csv", "does not exist"]),
])
def test_history_output_is_checked(trained, target, fragments):
    work, path = trained
    (work / "sub").mkdir()
    before = path.read_bytes()
    _, _, err = run("history", "m.npz", "-o", target, rc=2, cwd=work)
    assert_error(err, *fragments)
    assert path.read_bytes() == before


def test_history_of_a_missing_checkpoint_is_one_line(work):
    _, _, err = run("history", "none.npz", rc=2, cwd=work)
    assert_error(err, "none.npz")


def test_to_csv_places_every_validation(tmp_path):
    h = charrnn.History()
    loss, smooth = h._reserve(3)
    loss[:], smooth[:] = [3.0, 2.5, 0.1], [3.0, 2.9995, 2.99]
    h._size = 3
    for it, v in ((2, 1.5), (0, 4.0), (2, 1.25), (7, 0.5)):
        h.add_val_loss(it, v)
    f = io.StringIO()
    h.to_csv(f)
    assert f.getvalue().splitlines() == [
        "iteration,loss,smooth_loss,val_loss",
        "0,,,4.0",               # before any training: a row of its own
        "1,3.0,3.0,",
        "2,2.5,2.9995,1.5",
        "2,,,1.25",              # a second one after the same iteration
        "3,0.1,2.99,",
        "7,,,0.5",
    ]
    h.to_csv(tmp_path / "h.csv")
    assert (tmp_path / "h.csv").read_text() == f.getvalue()
    with pytest.raises(ValueError, match="file must be a path or a text file"):
        h.to_csv(3)


def test_to_csv_of_an_empty_history_is_its_header():
    f = io.StringIO()
    charrnn.History().to_csv(f)
    assert f.getvalue() == "iteration,loss,smooth_loss,val_loss\n"


# -- plot ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["--units", "nats-per-seq"],
    ["--log-y"],
    ["--ylim", "1", "6"],
    ["--ylim", "-1", "6", "--no-raw"],
    ["--raw", "--log-y", "--units", "nats-per-seq", "--ylim", "10", "200"],
], ids=["nats", "log", "ylim", "negative-ylim", "all"])
def test_plot_options_write_a_png(trained, argv):
    pytest.importorskip("matplotlib")
    work, path = trained
    run("plot", path, "-o", "p.png", *argv, cwd=work)
    assert (work / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, fragments", [
    (["--ylim", "5", "2"], ["--ylim 5 2", "lower limit must be below the upper"]),
    (["--ylim", "0", "2", "--log-y"], ["--ylim 0 2 with --log-y", "above 0"]),
])
def test_plot_bad_ylim_is_one_line(trained, argv, fragments):
    work, path = trained
    _, _, err = run("plot", path, *argv, rc=2, cwd=work)
    assert_error(err, *fragments)
    assert not (work / "loss.png").exists()


def test_plot_units_convert_losses():
    model = charrnn.CharRNN("ab", 4, seq_length=10)
    per_seq, per_bit, label = cli._plot_units(model, "bits")
    assert per_seq == pytest.approx(1 / (10 * np.log(2))) and per_bit == 1
    assert label == "bits per character"
    per_seq, per_bit, label = cli._plot_units(model, "nats-per-seq")
    assert per_seq == 1 and per_bit == pytest.approx(10 * np.log(2))
    assert "nats per sequence of 10 characters" in label


def test_plot_range_leaves_out_the_first_spike():
    n = 5000
    smooth = np.linspace(4.0, 2.0, n)
    smooth[:20] = 50.0  # the first updates of an Adagrad run
    no_val = (np.array([], np.int64), np.array([]))
    lo, hi = cli._plot_range(smooth, no_val, False)
    assert 1.8 < lo < 2.0 and 4.0 < hi < 4.2
    lo, hi = cli._plot_range(smooth, (np.array([10, 4000]), np.array([9.0, 1.0])), False)
    assert 0.8 < lo < 1.0 and 4.0 < hi < 4.3  # a validation point in the spike is left out
    lo, hi = cli._plot_range(smooth, no_val, True)
    assert 1.8 < lo < 2.0 and 4.0 < hi < 4.4
    assert cli._plot_range(np.zeros(10), no_val, True) is None  # nothing to log-scale


def test_raw_loss_is_left_out_where_it_is_a_band():
    rng = np.random.RandomState(0)
    n = 20000
    smooth = np.linspace(6.0, 5.0, n)
    ylim = cli._plot_range(smooth, (np.array([], np.int64), np.array([])), False)
    wide = smooth + rng.uniform(-3, 3, n)      # seq_length 1: each loss is one character's
    narrow = smooth + rng.uniform(-0.1, 0.1, n)
    assert cli._raw_is_a_band(wide, smooth, ylim, False, pixels=800)
    assert not cli._raw_is_a_band(narrow, smooth, ylim, False, pixels=800)
    assert not cli._raw_is_a_band(wide[:500], smooth[:500], ylim, False, pixels=800)


def test_help_of_history_and_plot_names_the_new_options(tmp_path):
    _, out, _ = run("history", "--help", cwd=tmp_path)
    assert out.startswith("usage: charrnn history") and "--output" in out
    _, out, _ = run("plot", "--help", cwd=tmp_path)
    for option in ("--units", "--ylim", "--log-y", "--raw", "--no-raw"):
        assert option in out
