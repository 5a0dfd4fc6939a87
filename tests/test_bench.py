"""charrnn.bench: structure of its figures, table and JSON (never its speed)."""
import json
import sys

import numpy as np
import pytest

import charrnn
from charrnn import bench


def test_generated_text_is_deterministic_with_65_characters():
    text = bench.generated_text(20000, seed=3)
    assert len(text) == 20000
    assert text == bench.generated_text(20000, seed=3)
    assert text != bench.generated_text(20000, seed=4)
    assert len(set(text)) == 65
    words = text.split()
    assert 3 < np.mean([len(w) for w in words]) < 8  # text-like, not one long word


MINIBATCH = (8, 4, 10)  # H, B, T of the LSTM / GRU minibatch rows in these tiny runs


@pytest.fixture(scope="module")
def result():
    return bench.run_bench(hidden_sizes=(8, 12), rounds=2, target_seconds=0.002,
                           text_length=3000, minibatch=MINIBATCH)


def _check_figures(row, rounds, keys=("charrnn", "reference", "ratio")):
    for key in keys:
        s = row[key]
        assert len(s["rounds"]) == rounds, (row["config"], key)
        assert 0 < s["min"] <= s["median"] <= s["max"], (row["config"], key)
        assert all(np.isfinite(s["rounds"])), (row["config"], key)
    ratios = np.array(row["charrnn"]["rounds"]) / np.array(row["reference"]["rounds"])
    np.testing.assert_allclose(row["ratio"]["rounds"], ratios)
    assert row["charrnn_units"] >= 1 and row["reference_units"] >= 1


def test_run_bench_figures(result):
    assert set(result) == {"machine", "roofline", "load", "text", "settings", "rows"}
    assert result["text"] == {"source": result["text"]["source"], "characters": 3000,
                              "vocab_size": 65}
    assert result["machine"]["kernel"]["variant"]
    assert result["settings"]["cells"] == ["rnn", "lstm", "gru"]
    rows = [r for r in result["rows"] if r["cell"] == "rnn"]
    assert [(r["task"], r["hidden_size"]) for r in rows[:4]] == [
        ("train", 8), ("sample", 8), ("train", 12), ("sample", 12)]
    for row in rows[4:]:  # float32 / minibatch rows, where this build supports them
        assert row["task"] == "train" and row["hidden_size"] == 100
        assert row["config"].startswith("float32")
    for row in result["rows"]:
        _check_figures(row, rounds=2)


def test_lstm_and_gru_rows(result):
    threads = result["settings"]["threads"]
    assert threads == result["machine"]["kernel"].get("threads", 1)
    H, B, T = MINIBATCH
    minibatch = f"float32 B={B} T={T} {threads} thread" + ("s" if threads > 1 else "")
    for cell in ("lstm", "gru"):
        rows = [r for r in result["rows"] if r["cell"] == cell]
        assert [(r["task"], r["hidden_size"], r["config"]) for r in rows] == [
            ("train", 8, f"{cell} float64"), ("train", 12, f"{cell} float64"),
            ("train", H, f"{cell} {minibatch}")]
        for row in rows:
            # charrnn's compiled kernels beat the numpy reference even at tiny sizes
            assert row["ratio"]["median"] > 1, row
    # a minibatch row at a size with a batch-1 row shares that row's reference figure
    shared = bench.run_bench(hidden_sizes=(8,), rounds=1, target_seconds=0.002,
                             text_length=3000, cells=("gru",), minibatch=(8, 2, 5))
    batch1, minibatch_row = shared["rows"]
    assert minibatch_row["reference"] == batch1["reference"]
    assert minibatch_row["charrnn_units"] >= 1


def _tiny_lstm_run():
    return bench.run_bench(hidden_sizes=(6,), rounds=1, target_seconds=0.002,
                           text_length=2000, cells=("lstm",), minibatch=MINIBATCH)


def test_no_torch_column_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    result = _tiny_lstm_run()
    assert result["settings"]["torch"] is None
    assert len(result["rows"]) == 2
    for row in result["rows"]:
        assert not {"torch", "torch_ratio", "torch_units"} & set(row)
        _check_figures(row, rounds=1)
    table = bench.format_table(result)
    assert "PyTorch: not importable here, so no torch column" in table
    assert "vs torch" not in table


def test_torch_column_with_torch():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    result = _tiny_lstm_run()
    assert torch.get_num_threads() == threads  # the bench's thread count is not left behind
    assert result["settings"]["torch"] == torch.__version__
    batch1, minibatch = result["rows"]
    assert "torch" not in batch1
    _check_figures(minibatch, rounds=1, keys=("charrnn", "reference", "ratio", "torch",
                                              "torch_ratio"))
    np.testing.assert_allclose(minibatch["torch_ratio"]["rounds"],
                               np.array(minibatch["charrnn"]["rounds"])
                               / np.array(minibatch["torch"]["rounds"]))
    assert minibatch["torch_units"] >= 1
    table = bench.format_table(result)
    header = next(line for line in table.splitlines() if line.startswith("task"))
    assert header.split()[-2:] == ["vs", "torch"]
    assert f"PyTorch {torch.__version__}" in table
    last = table.splitlines()[-1]
    assert last.split()[:3] == ["train", "8", "lstm"] and last.rstrip().endswith("x)")
    assert table.splitlines()[-2].rstrip().endswith("-")  # the batch-1 row: no torch figure


def test_torch_trainer_steps_and_walks_the_text():
    torch = pytest.importorskip("torch")
    codes = np.arange(40) % 7
    trainer = bench._TorchTrainer(torch, codes, "gru", 5, 7, 2, 4, "float64", 1)
    assert trainer.data.shape == (20, 2) and trainer.data[0].tolist() == [0, codes[20]]
    assert trainer.p == 8  # two warm-up steps
    before = [p.detach().clone() for p in trainer.params]
    assert trainer(3) > 0
    assert trainer.p == 4  # 20 characters a stream: wrapped after p + T + 1 >= 20
    assert all(p.dtype == torch.float64 for p in trainer.params)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.params))


def test_format_table(result):
    table = bench.format_table(result)
    assert "CPU: " in table and "kernels " in table and "threads " in table
    body = table.splitlines()[table.splitlines().index(next(
        line for line in table.splitlines() if line.startswith("task"))) + 2:]
    assert len(body) == len(result["rows"])
    assert body[0].split()[:3] == ["train", "8", "float64"]


def test_cli_entry_writes_json(tmp_path, capsys):
    path = tmp_path / "text.txt"
    path.write_text(bench.generated_text(2000, seed=1) + "é", encoding="utf-8")
    out = tmp_path / "bench.json"
    code = bench.main([str(path), "--hidden-sizes", "6", "--rounds", "1", "--seconds",
                       "0.001", "--no-extras", "--quiet", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    figures = json.loads(out.read_text())
    assert figures["text"]["vocab_size"] == 66
    assert [(r["task"], r["config"]) for r in figures["rows"]] == [
        ("train", "float64"), ("sample", "float64"),  # the default cells: rnn, lstm, gru
        ("train", "lstm float64"), ("train", "gru float64")]
    assert "sample     6  float64" in printed.out


def test_cli_json_has_the_cell_rows(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = bench.main(["--hidden-sizes", "6", "--rounds", "1", "--seconds", "0.001",
                       "--cells", "gru,lstm", "--minibatch", "8,3,6", "--quiet",
                       "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    figures = json.loads(out.read_text())
    threads = figures["settings"]["threads"]
    assert [(r["cell"], r["hidden_size"], r["config"].split()[:2]) for r in figures["rows"]] \
        == [("gru", 6, ["gru", "float64"]), ("gru", 8, ["gru", "float32"]),
            ("lstm", 6, ["lstm", "float64"]), ("lstm", 8, ["lstm", "float32"])]
    assert figures["rows"][1]["config"].endswith(f"B=3 T=6 {threads} thread"
                                                 + ("s" if threads > 1 else ""))
    with_torch = figures["settings"]["torch"] is not None
    assert [("torch" in r) for r in figures["rows"]] == [False, with_torch] * 2
    assert ("vs torch" in printed) == with_torch
    assert "lstm float64" in printed and "gru float32 B=3 T=6" in printed


def test_bad_arguments(capsys):
    assert bench.main(["--hidden-sizes", "1,x", "--quiet"]) == 2
    assert bench.main(["/no/such/file.txt", "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert bench.main(["--cells", "lstm,tree", "--quiet"]) == 2
    assert "--cells must be distinct names among rnn,lstm,gru, got 'lstm,tree'" in \
        capsys.readouterr().err
    assert bench.main(["--minibatch", "256,32", "--quiet"]) == 2
    assert "--minibatch must be three integers H,B,T, got '256,32'" in capsys.readouterr().err
    assert bench.main(["--minibatch", "256,0,50", "--quiet"]) == 2
    assert "--minibatch must be comma-separated positive integers" in capsys.readouterr().err
    with pytest.raises(ValueError, match="rounds"):
        bench.run_bench(rounds=0)
    with pytest.raises(ValueError, match="cells must be distinct names among rnn, lstm, gru, "
                                         "got lstm, lstm"):
        bench.run_bench(cells=("lstm", "lstm"))
    with pytest.raises(ValueError, match="the minibatch rows .B=32, T=50. need at least 1664"):
        bench.run_bench(hidden_sizes=(4,), text_length=1000, cells=("gru",))


def test_kernel_info_is_reported_when_available(monkeypatch):
    monkeypatch.setattr(charrnn, "kernel_info",
                        lambda: {"variant": "avx2", "openmp": True, "threads": 2},
                        raising=False)
    info = bench.machine_info()
    assert info["kernel"] == {"variant": "avx2", "openmp": True, "threads": 2}


def test_bad_files_and_durations(tmp_path, capsys):
    assert bench.main([str(tmp_path), "--quiet"]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert bench.main(["/dev/zero", "--quiet"]) == 2  # endless: refused before reading
    assert "not a regular file" in capsys.readouterr().err
    for seconds in ("0", "-1", "inf", "nan", "61"):
        with pytest.raises(SystemExit):
            bench.main(["--seconds=" + seconds, "--quiet"])
        assert "--seconds: must be a number > 0 and <= 60" in capsys.readouterr().err
    for seconds in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="target_seconds must be a finite number > 0"):
            bench.run_bench(hidden_sizes=(4,), target_seconds=seconds)
