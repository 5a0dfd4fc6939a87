"""``charrnn train`` with stacked cells, schedules, ``--time`` and ``--preset``."""
import numpy as np
import pytest
from test_cli import SMALL, assert_error, assert_same_training, run, work  # noqa: F401

import charrnn
from charrnn import cli, presets

CELL = ["--cell", "lstm", "--num-layers", "2", "--dropout", "0.2", "--batch-size", "3",
        "--optimizer", "adam", "--learning-rate", "0.01", "--lr-schedule", "cosine",
        "--warmup-iters", "5", "--clip-norm", "1.0"]


def test_train_sample_and_eval_a_stacked_model(work):
    run("train", "poem.txt", "--iterations", "40", *SMALL, *CELL, "--checkpoint", "s.npz",
        cwd=work)
    model = charrnn.load(work / "s.npz")
    assert (model.cell, model.num_layers, model.dropout) == ("lstm", 2, 0.2)
    assert model.lr_schedule == "cosine" and model.decay_iters == 40  # the run's target
    assert model.clip_norm == 1.0 and model.iteration == 40
    _, out, _ = run("sample", "s.npz", "-n", "30", "--seed", "1", cwd=work)
    assert len(out) >= 30
    _, out, _ = run("eval", "s.npz", "poem.txt", cwd=work)
    assert "nats/char" in out


def test_resume_of_a_stacked_model_is_bit_for_bit(work):
    args = ("train", "poem.txt", *SMALL, *CELL, "--quiet")
    run(*args, "--iterations", "60", "--checkpoint", "whole.npz", cwd=work)
    run(*args, "--iterations", "60", "--checkpoint", "part.npz", "--time", "1e-9", cwd=work)
    part = charrnn.load(work / "part.npz")
    assert 0 < part.iteration < 60
    run("train", "--resume", "part.npz", "--quiet", cwd=work)
    assert_same_training(charrnn.load(work / "part.npz"), charrnn.load(work / "whole.npz"),
                         stops=[part.iteration])  # the --time run validated at its end


def test_resume_refuses_another_cell(work):
    run("train", "poem.txt", "--iterations", "10", *SMALL, *CELL, "--checkpoint", "s.npz",
        "--quiet", cwd=work)
    _, _, err = run("train", "--resume", "s.npz", "--cell", "gru", cwd=work, rc=2)
    assert_error(err, "was trained with --cell lstm, not gru")


def test_time_stops_cleanly_with_the_final_save_and_validation(work):
    _, out, _ = run("train", "poem.txt", "--iterations", "1000000", *SMALL, "--time", "1",
                    "--checkpoint", "t.npz", cwd=work)
    assert "stopped by --time 1 s" in out and "validation" in out
    model = charrnn.load(work / "t.npz")
    assert 0 < model.iteration < 1000000


def test_presets_fill_in_what_the_command_line_leaves_out(monkeypatch):
    seen = {}

    def fake_train(args, stack):
        cli._apply_preset(args)
        seen.update(vars(args))
        return 0

    monkeypatch.setattr(cli, "_train", fake_train)
    assert cli.main(["train", "x.txt", "--preset", "fast", "--hidden-size", "64"]) == 0
    fast = presets.PRESETS["fast"][1]
    assert seen["hidden_size"] == 64  # given: kept
    for name, value in fast.items():
        if name != "hidden_size":
            assert seen[name] == value, name
    seen.clear()
    assert cli.main(["train", "x.txt", "--preset", "best", "--iterations", "7"]) == 0
    assert seen["iterations"] == 7 and seen["cell"] == presets.PRESETS["best"][1]["cell"]


def test_preset_is_refused_on_resume(work):
    run("train", "poem.txt", "--iterations", "5", *SMALL, "--checkpoint", "s.npz", "--quiet",
        cwd=work)
    _, _, err = run("train", "--resume", "s.npz", "--preset", "fast", cwd=work, rc=2)
    assert_error(err, "--preset", "leave it out when resuming")


def test_help_lists_what_each_preset_sets(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name, (purpose, options) in presets.PRESETS.items():
        assert f"'{name}': {purpose}" in out
        assert "--cell " + options["cell"] in out


@pytest.mark.parametrize("flag, value, message", [
    ("--dropout", "1", "--dropout: must be >= 0 and < 1, got 1"),
    ("--num-layers", "0", "--num-layers"),
    ("--lr-decay", "1.5", "--lr-decay"),
    ("--cell", "transformer", "--cell"),
])
def test_bad_cell_options_are_one_line_errors(work, flag, value, message):
    _, _, err = run("train", "poem.txt", flag, value, cwd=work, rc=2)
    assert message in err and "Traceback" not in err


def test_stacked_options_that_only_the_seeds_model_has_are_refused(work):
    _, _, err = run("train", "poem.txt", "--cell", "gru", "--activation", "sigmoid",
                    "--iterations", "3", cwd=work, rc=2)
    assert_error(err, "activation='sigmoid' is the seeds'")


def test_a_schedule_that_cannot_run_is_refused_before_training(work):
    _, _, err = run("train", "poem.txt", "--iterations", "5", "--lr-schedule", "cosine",
                    "--warmup-iters", "5", "--checkpoint", "s.npz", cwd=work, rc=2)
    assert_error(err, "decay_iters (5) must be greater than warmup_iters (5)")
    assert not (work / "s.npz").exists()


def test_cosine_without_decay_iters_decays_over_the_target(work):
    run("train", "poem.txt", "--iterations", "30", *SMALL, "--lr-schedule", "cosine",
        "--checkpoint", "c.npz", "--quiet", cwd=work)
    model = charrnn.load(work / "c.npz")
    assert model.decay_iters == 30
    np.testing.assert_equal(model.history.loss.size, 30)


def test_the_readme_preset_commands_run(work):
    """The README's ``--preset`` commands (``shell`` block: long runs), cut to 2 seconds
    by an explicit ``--time`` (options given on the command line win)."""
    import re
    import shlex
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    commands = [line.split("#")[0] for block in re.findall(r"```shell\n(.*?)```", readme, re.S)
                for line in block.splitlines() if "--preset" in line]
    assert {shlex.split(c)[4] for c in commands} == set(presets.PRESETS)
    (work / "tinyshakespeare.txt").write_text(charrnn.default_corpus()[:30000], encoding="utf-8")
    for command in commands:
        argv = shlex.split(command)[1:] + ["--time", "2", "--quiet"]
        run(*argv, cwd=work)
        name = argv[argv.index("--checkpoint") + 1]
        model = charrnn.load(work / name)
        preset = presets.PRESETS[argv[argv.index("--preset") + 1]][1]
        assert (model.cell, model.hidden_size) == (preset["cell"], preset["hidden_size"])
