"""charrnn.bench: structure of its figures, table and JSON (never its speed)."""
import json

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


@pytest.fixture(scope="module")
def result():
    return bench.run_bench(hidden_sizes=(8, 12), rounds=2, target_seconds=0.002,
                           text_length=3000)


def test_run_bench_figures(result):
    assert set(result) == {"machine", "text", "settings", "rows"}
    assert result["text"] == {"source": result["text"]["source"], "characters": 3000,
                              "vocab_size": 65}
    assert result["machine"]["kernel"]["variant"]
    rows = result["rows"]
    assert [(r["task"], r["hidden_size"]) for r in rows[:4]] == [
        ("train", 8), ("sample", 8), ("train", 12), ("sample", 12)]
    for row in rows[4:]:  # float32 / minibatch rows, where this build supports them
        assert row["task"] == "train" and row["hidden_size"] == 100
        assert row["config"].startswith("float32")
    for row in rows:
        for key in ("charrnn", "reference", "ratio"):
            s = row[key]
            assert len(s["rounds"]) == 2, (row["config"], key)
            assert 0 < s["min"] <= s["median"] <= s["max"], (row["config"], key)
        ratios = np.array(row["charrnn"]["rounds"]) / np.array(row["reference"]["rounds"])
        np.testing.assert_allclose(row["ratio"]["rounds"], ratios)
        assert row["charrnn_units"] >= 1 and row["reference_units"] >= 1


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
        ("train", "float64"), ("sample", "float64")]
    assert "sample     6  float64" in printed.out


def test_bad_arguments(capsys):
    assert bench.main(["--hidden-sizes", "1,x", "--quiet"]) == 2
    assert bench.main(["/no/such/file.txt", "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="rounds"):
        bench.run_bench(rounds=0)


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
