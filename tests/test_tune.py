"""charrnn.tune: hyperparameter sweeps on Ray Tune.

The sweeps need ray (``pip install "charrnn-cython[tune]"``) and are skipped without it; what
must hold without ray (``import charrnn`` never imports it, ``charrnn tune`` says how
to install it, search spaces are checked) is tested always. Each sweep starts its own
local Ray instance with 2 CPUs and trains tiny models on a few thousand characters.
"""
import glob
import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import charrnn
from charrnn import data as _data
from charrnn import tune as ctune
from charrnn.cli import main

HERE = os.path.dirname(os.path.abspath(__file__))

def _ray_tune_installed():
    """Whether ``ray.tune`` can be imported. Not just ``find_spec("ray")``: a folder named
    ``ray`` in the working directory (Ray's own temporary folder, when the tests run
    from /tmp) is an empty namespace package of that name."""
    try:
        return importlib.util.find_spec("ray.tune") is not None
    except ImportError:
        return False


needs_ray = pytest.mark.skipif(not _ray_tune_installed(),
                               reason="ray is not installed (pip install 'charrnn-cython[tune]')")

TEXT = charrnn.default_corpus()[:6000]
VAL_FRAC = 0.1
TINY = {"hidden_size": 16, "seq_length": 16, "optimizer": "adam"}


def split(text=TEXT, val_frac=VAL_FRAC):
    """The training and validation indices a sweep uses (its last val_frac held out)."""
    chars = _data.vocabulary(text)
    indices = _data.encode(text, chars)
    cut = indices.size - int(round(indices.size * val_frac))
    return indices[:cut], indices[cut:]


def bits(model, indices):
    return model.evaluate(indices) / math.log(2)


def run_python(code, *args):
    """``python -c code args`` from the tests' folder (the installed charrnn, not a tree)."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, cwd=HERE, timeout=120)


# -- without ray ----------------------------------------------------------------------------

def test_importing_charrnn_never_imports_ray():
    out = run_python("import sys, charrnn, charrnn.cli, charrnn.tune\n"
                     "charrnn.cli.build_parser()\n"
                     "print(sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"imported: {out.stdout.strip()}"


def test_tune_without_ray_is_a_one_line_error(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(TEXT)
    hide_ray = (
        "import sys\n"
        "class NoRay:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'ray':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoRay())\n"
        "from charrnn.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    out = run_python(hide_ray, "tune", str(text), "--output", str(tmp_path / "out"))
    assert out.returncode == 2, out.stderr
    assert out.stderr == f"charrnn: error: {ctune.NEEDS_RAY}\n"
    assert "charrnn-cython[tune]" in out.stderr
    assert not (tmp_path / "out").exists()


def test_default_space_is_valid():
    assert ctune.check_space(None) == ctune.DEFAULT_SPACE
    assert set(ctune.DEFAULT_SPACE) <= set(ctune.OPTIONS)


@pytest.mark.parametrize("space, message", [
    ({"lr": 0.1}, "'lr', which is not an option of charrnn.CharRNN"),
    ({"cell": "transformer"}, "search space cell: cell must be one of"),
    ({"hidden_size": {"choice": [64, 0]}}, "search space hidden_size: must be an integer >= 1"),
    ({"learning_rate": {"loguniform": [0, 0.1]}}, "loguniform needs low > 0"),
    ({"learning_rate": {"uniform": [0.1, 0.01]}}, "two finite numbers with low < high"),
    ({"learning_rate": {"normal": [0, 1]}}, "unknown sampler 'normal'"),
    ({"learning_rate": {"choice": [0.1], "grid": [0.2]}}, "a sampler is one entry"),
    ({"dropout": {"choice": []}}, "non-empty list"),
    ({"seq_length": {"randint": [1.5, 4]}}, "randint takes two integers"),
    ("{not json", "not valid JSON"),
    ("no-such-space.json", "neither JSON (an object in braces) nor an existing .json file"),
    ("[1, 2]", "neither JSON"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None)
def test_bad_spaces_are_refused_with_what_was_expected(space, message):
    with pytest.raises(ValueError) as e:
        ctune.check_space(space)
    assert message in str(e.value)


def test_space_from_json_text_and_file(tmp_path):
    space = {"hidden_size": {"grid": [8, 16]}, "learning_rate": {"loguniform": [1e-3, 1e-1]},
             "cell": "gru", "clip": None}
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    assert ctune.check_space(json.dumps(space)) == space
    assert ctune.check_space(str(path)) == space
    with pytest.raises(ValueError, match="cannot read the search space file"):
        ctune.check_space(str(tmp_path))


def test_mutable_options_are_exactly_the_settable_ones():
    """PBT mutates MUTABLE on a trained model: each must be settable, no other option."""
    model = charrnn.CharRNN(["a", "b"], 2)
    for name in ctune.OPTIONS:
        value = getattr(model, name)
        value = value.name if name == "dtype" else value
        if name in ctune.MUTABLE:
            setattr(model, name, value)
        else:
            with pytest.raises(AttributeError):
                setattr(model, name, value)


def test_bad_arguments_are_refused_before_ray_starts(tmp_path):
    with pytest.raises(ValueError, match="val_frac must be in"):
        ctune.run(TEXT, TINY, val_frac=0, output=tmp_path)
    with pytest.raises(ValueError, match="batch_size \\* \\(seq_length \\+ 1\\)"):
        ctune.run(TEXT, dict(TINY, batch_size={"choice": [1, 1000]}), output=tmp_path)
    with pytest.raises(ValueError, match="scheduler must be one of"):
        ctune.run(TEXT, TINY, scheduler="hyperband", output=tmp_path)
    with pytest.raises(ValueError, match="PBT mutates options"):
        ctune.run(TEXT, dict(TINY, hidden_size={"choice": [8, 16]}), scheduler="pbt",
                  output=tmp_path)
    assert list(tmp_path.iterdir()) == []


# -- sweeps ---------------------------------------------------------------------------------

def records(experiment):
    """Every result Ray Tune wrote, per trial folder: result.json's lines."""
    out = {}
    for folder in sorted(glob.glob(os.path.join(experiment, "*", ""))):
        path = os.path.join(folder, "result.json")
        if os.path.exists(path):
            with open(path) as f:
                out[folder] = [json.loads(line) for line in f if line.strip()]
    return out


def no_ray_left():
    import ray
    assert not ray.is_initialized(), "the sweep left its Ray instance running"


@needs_ray
def test_asha_sweep_reports_every_trial_and_keeps_the_best(tmp_path):
    space = dict(TINY, learning_rate={"loguniform": [3e-3, 3e-2]})
    sweep = ctune.run(TEXT, space, num_samples=4, iterations=40, report_every=10,
                      val_frac=VAL_FRAC, scheduler="asha", num_cpus=2, output=tmp_path,
                      name="asha")
    no_ray_left()
    assert sweep.path == str(tmp_path / "asha")

    # Ray Tune's own records: the experiment's state, and each trial's results
    assert glob.glob(os.path.join(sweep.path, "experiment_state-*.json"))
    found = records(sweep.path)
    assert len(found) == 4, f"{len(found)} trial folders with a result.json, not 4"
    for folder, results in found.items():
        assert results, f"{folder}: the trial reported nothing"
        for name in ("progress.csv", "params.json"):
            assert os.path.exists(os.path.join(folder, name)), f"{folder} has no {name}"
        assert all(math.isfinite(r["val_bits"]) and r["chars_per_s"] > 0 for r in results)
        assert [r["iteration"] for r in results] == list(range(10, 10 * len(results) + 1, 10))
    assert len(sweep.trials) == 4
    assert {t["status"] for t in sweep.trials} <= {"done", "stopped"}

    # the best checkpoint: loads, and its validation loss is the best reported
    best_reported = min(r["val_bits"] for results in found.values() for r in results)
    assert sweep.best_val_bits == best_reported
    assert sweep.trials[0]["val_bits"] == best_reported  # the table, best first
    model, meta = charrnn.load_with_meta(tmp_path / "best.npz")
    _, val = split()
    assert bits(model, val) == best_reported
    assert model.history.val_loss[-1] == best_reported
    assert meta["val_frac"] == VAL_FRAC and meta["target"] == {"iterations": 40}
    assert meta["tune"]["trial_id"] == sweep.best_trial
    assert model.learning_rate == sweep.best_config["learning_rate"]

    table = sweep.table().splitlines()
    assert table[0].split() == ["trial", "status", "iter", "best", "bits/char", "chars/s",
                                "learning_rate"]
    assert len(table) == 5


def checkpoints(experiment):
    """Every trial checkpoint of the experiment: (path, model)."""
    return [(path, charrnn.load(path)) for path in
            sorted(glob.glob(os.path.join(experiment, "*", "checkpoint_*", "model.npz")))]


@needs_ray
def test_pbt_exploited_trial_continues_exactly_as_a_direct_resume(tmp_path):
    """Every trial run that began from a checkpoint (another trial's after a PBT exploit,
    its own after a pause) reports what loading that checkpoint, applying the trial's
    config and training the same iterations gives directly, bit for bit."""
    space = dict(TINY, learning_rate={"grid": [2e-3, 3e-2]})
    sweep = ctune.run(TEXT, space, num_samples=1, iterations=40, report_every=10,
                      val_frac=VAL_FRAC, scheduler="pbt", perturbation_interval=1,
                      num_cpus=2, output=tmp_path, name="pbt")
    no_ray_left()
    # every report, with its checkpoint (Ray's logs of a paused trial may miss some)
    reported = [(checkpoint.path, at) for result in sweep.results
                for checkpoint, at in result.best_checkpoints]
    exploited = [(path, at) for path, at in reported
                 if at["restored_from"] not in ("", at["trial_id"])]
    assert exploited, "PBT exploited no trial: nothing was checked"
    train, val = split()
    saved = checkpoints(sweep.path)
    resumed = [(path, at) for path, at in reported if at["restored_from"]]
    for path, at in resumed:
        sources = [p for p, m in saved if m.iteration == at["restored_iteration"]
                   and ctune.params_sha256(m) == at["restored_sha256"]
                   and f"{at['restored_from']}_" in p]
        assert sources, f"no checkpoint of trial {at['restored_from']} at iteration " \
                        f"{at['restored_iteration']} with the reported parameters"
        direct = charrnn.load(sources[0])
        for name, value in at["config"].items():
            if name in ctune.MUTABLE:
                setattr(direct, name, value)
            else:
                assert getattr(direct, name) == value, name
        direct.set_data(train)
        direct.fit(at["iteration"] - at["restored_iteration"])
        label = f"trial {at['trial_id']} at iteration {at['iteration']} from " \
                f"{at['restored_from']} at {at['restored_iteration']}"
        assert ctune.params_sha256(direct) == at["params_sha256"], label
        assert bits(direct, val) == at["val_bits"], label
        trial = charrnn.load(os.path.join(path, ctune.CHECKPOINT_FILE))
        for a, b in zip(trial.params, direct.params):
            assert np.array_equal(a, b), label
        assert np.array_equal(trial.hprev, direct.hprev), label
        assert (trial.iteration, trial.pointer, trial.smooth_loss) == \
            (direct.iteration, direct.pointer, direct.smooth_loss), label


@needs_ray
def test_cli_sweep_prints_a_table_and_its_best_checkpoint_resumes(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text(TEXT)
    out = tmp_path / "out"
    space = json.dumps(dict(TINY, learning_rate={"grid": [3e-3, 3e-2]}))
    status = main(["tune", str(text), "--space", space, "--num-samples", "1",
                   "--iterations", "20", "--report-every", "10", "--val-frac", str(VAL_FRAC),
                   "--scheduler", "fifo", "--num-cpus", "2", "--output", str(out),
                   "--name", "cli"])
    no_ray_left()
    printed = capsys.readouterr().out
    assert status == 0
    table = printed[printed.index("trial  "):].splitlines()
    assert table[0].split()[-1] == "learning_rate"
    assert [line.split()[1] for line in table[1:3]] == ["done", "done"]
    assert table[3].startswith("best: trial ") and table[3].endswith(f"saved {out}/best.npz")
    assert (out / "cli").is_dir()
    # the best checkpoint carries the text's options: charrnn train resumes it
    assert main(["train", "--resume", str(out / "best.npz"), "--iterations", "30",
                 "--quiet"]) == 0
    assert charrnn.load(out / "best.npz").iteration == 30


@needs_ray
def test_cli_errors_are_one_line(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text(TEXT)
    assert main(["tune", str(text), "--space", '{"hidden_size": 0}']) == 2
    assert capsys.readouterr().err == \
        "charrnn: error: search space hidden_size: must be an integer >= 1, got 0\n"
    assert main(["tune", str(text), "--output", str(text)]) == 2
    assert capsys.readouterr().err == f"charrnn: error: --output {text} is not a folder\n"


@needs_ray
def test_an_unreachable_cluster_is_refused_at_once(tmp_path):
    with pytest.raises(ConnectionError, match="cannot reach a Ray cluster at 127.0.0.1:1"):
        ctune.run(TEXT, TINY, address="127.0.0.1:1", output=tmp_path)
    no_ray_left()


@needs_ray
def test_a_sweep_whose_trials_all_diverge_says_so(tmp_path):
    # float32 overflows: the loss (first) or the parameters (second) become infinite
    space = {"hidden_size": 8, "seq_length": 8, "optimizer": "sgd", "clip": None,
             "dtype": "float32", "learning_rate": {"grid": [1e37, 1e38]}}
    with pytest.raises(RuntimeError, match="2 of 2 trials diverged"):
        ctune.run(TEXT, space, num_samples=1, iterations=20, report_every=10,
                  val_frac=VAL_FRAC, scheduler="fifo", num_cpus=2, output=tmp_path,
                  name="nan")
    no_ray_left()
