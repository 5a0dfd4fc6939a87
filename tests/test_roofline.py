"""charrnn bench's roofline: the compiled probes, the row model, the load watch, and the
table that prints them (structure and arithmetic only, never a speed)."""
import importlib

import numpy as np
import pytest

from charrnn import _dispatch, bench


def _builds():
    """The kernel builds this CPU runs, with the vector width each must report."""
    builds = [("_kernels", None)]
    if _dispatch._baseline.cpu_has_avx2_fma():
        builds.append(("_kernels_avx2", 32))
    if _dispatch._baseline.cpu_has_avx512():
        builds.append(("_kernels_avx512", 64))
    out = []
    for name, width in builds:
        try:
            out.append(pytest.param(importlib.import_module(f"charrnn.{name}"), width, id=name))
        except ImportError:  # an installation without that build
            continue
    return out


@pytest.mark.parametrize("kernels, width", _builds())
def test_probes_compute_what_they_say(kernels, width):
    layout = kernels._roofline_layout()
    assert set(layout) == {"vector_bytes", "fma_chains", "read_sums"}
    assert layout["vector_bytes"] in (16, 32, 64)
    if width is not None:
        assert layout["vector_bytes"] == width
    for single, size in ((False, 8), (True, 4)):
        # c = 0.75 c + 0.25 keeps every lane at exactly 1
        lanes = layout["fma_chains"] * layout["vector_bytes"] // size
        assert kernels._roofline_fma(single, 0) == lanes
        assert kernels._roofline_fma(single, 1000) == lanes
    step = layout["read_sums"] * layout["vector_bytes"] // 8
    buf = np.arange(4 * step, dtype=np.float64)
    assert kernels._roofline_read(buf, 3) == 3 * buf.sum()
    assert kernels._roofline_read(buf, 0) == 0
    assert kernels._roofline_read(np.zeros(0), 5) == 0


def test_roofline_fields():
    roof = bench.roofline(seconds=0.0005, repeats=2)
    assert roof["variant"] == _dispatch.variant
    assert roof["vector_bytes"] == _dispatch.kernels._roofline_layout()["vector_bytes"]
    assert set(roof["fma_gflops"]) == {"float64", "float32"}
    assert all(np.isfinite(x) and x > 0 for x in roof["fma_gflops"].values())
    assert set(roof["bandwidth_gbs"]) == set(roof["probe_bytes"]) == {"L1", "L2", "L3"}
    assert all(np.isfinite(x) and x > 0 for x in roof["bandwidth_gbs"].values())
    # not a speed test: a compiler that folded a probe's loop away would report figures
    # thousands of times beyond any core (the FMA probe once did, at 10^9 GFLOP/s)
    assert max(roof["fma_gflops"].values()) < 10_000
    assert max(roof["bandwidth_gbs"].values()) < 10_000
    probes = roof["probe_bytes"]
    assert probes["L1"] < probes["L2"] < probes["L3"]
    assert probes["L1"] <= roof["caches"]["L1"] and probes["L2"] <= roof["caches"]["L2"]
    assert all(n % 4096 == 0 for n in probes.values())


def test_cache_sizes(tmp_path):
    sizes = bench.cache_sizes()
    assert set(sizes) == {"L1", "L2", "L3", "source"}
    assert all(isinstance(sizes[k], int) and sizes[k] > 0 for k in ("L1", "L2", "L3"))
    assert bench.cache_sizes(tmp_path / "none") == dict(bench.ASSUMED_CACHES, source="assumed")

    def index(n, level, kind, size):
        d = tmp_path / f"index{n}"
        d.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (d / name).write_text(f"{value}\n")
    index(0, 1, "Data", "48K")
    index(1, 1, "Instruction", "32K")
    index(2, 2, "Unified", "1024K")
    index(3, 3, "Unified", "32M")
    (tmp_path / "uevent").write_text("")
    assert bench.cache_sizes(tmp_path) == {"L1": 48 << 10, "L2": 1 << 20, "L3": 32 << 20,
                                           "source": "sysfs"}
    (tmp_path / "index3" / "size").write_text("lots\n")  # unreadable: assumed instead
    assert bench.cache_sizes(tmp_path) == {"L1": 48 << 10, "L2": 1 << 20,
                                           "L3": bench.ASSUMED_CACHES["L3"],
                                           "source": "assumed"}


def test_aligned_buffer():
    buf = bench._aligned_doubles(8192)
    assert buf.nbytes == 8192 and buf.ctypes.data % 64 == 0 and (buf == 1).all()


def test_row_model_counts():
    # the seeds' rnn, H=10, V=5: W = 100, D = 50, P = 50 + 100 + 50 + 10 + 5 = 215
    train = bench.row_model("train", 10, 5)
    rec, off = train["phases"]
    assert (rec["flops"], rec["bytes"], rec["working_set"]) == (400, 1600, 1600)
    assert off["flops"] == 2 * 100 + 6 * 50
    assert off["bytes"] == pytest.approx(8 * (100 + 150 + 5 * 215) / 25)
    assert off["working_set"] == 5 * 8 * 215
    assert train["flops"] == 900 and train["bytes"] == pytest.approx(1600 + 424)
    assert train["threads"] == 1 and train["dtype"] == "float64"

    sample = bench.row_model("sample", 10, 5, dtype="float32")
    assert [(p["flops"], p["bytes"]) for p in sample["phases"]] == [(300, 600)]

    # lstm, float32, 8 streams on 2 threads, Adam, T = 4: W = 4 * 100
    lstm = bench.row_model("train", 10, 5, "lstm", "float32", 8, 2, 4, "adam")
    P = 4 * 10 * (5 + 10 + 2) + 50 + 5
    rec, off = lstm["phases"]
    assert rec["flops"] == 1600 and rec["bytes"] == 2 * 4 * 400 * 2 / 8
    assert off["bytes"] == pytest.approx(4 * ((400 + 150) * 2 + 7 * P) / 32)
    assert lstm["threads"] == 2
    assert bench.row_model("train", 10, 5, batch_size=1, threads=4)["threads"] == 1
    with pytest.raises(ValueError, match="task must be 'train' or 'sample', got 'x'"):
        bench.row_model("x", 10, 5)
    with pytest.raises(ValueError, match="cell must be one of rnn, lstm, gru, got 'tree'"):
        bench.row_model("train", 10, 5, "tree")
    with pytest.raises(ValueError, match="optimizer must be one of adagrad, sgd, rmsprop, adam, "
                                         "got 'lbfgs'"):
        bench.row_model("train", 10, 5, optimizer="lbfgs")


ROOF = {"fma_gflops": {"float64": 10.0, "float32": 20.0},
        "bandwidth_gbs": {"L1": 20.0, "L2": 50.0, "L3": 10.0},
        "caches": {"L1": 4000, "L2": 400_000, "L3": 10**7, "source": "sysfs"}}


def test_row_bound_adds_the_phases():
    model = bench.row_model("train", 10, 5)  # recurrence: 1600 bytes in L1 (<= 3000)
    rec = max(400 / 10e9, 1600 / 20e9)       # L1 bandwidth: 80 ns, more than 40 ns of FMA
    off = max(500 / 10e9, 424 / 50e9)        # off-recurrence set 8600 bytes, in L2: FMA
    bound = bench.row_bound(model, ROOF)
    assert bound["bound"] == pytest.approx(1 / (rec + off))
    assert bound["limit"] == "L1" and bound["peak_gflops"] == 10.0
    two = bench.row_model("train", 10, 5, dtype="float32", batch_size=8, threads=2)
    assert bench.row_bound(two, ROOF)["peak_gflops"] == 40.0
    big = bench.row_model("sample", 300, 5)  # 8 * (90000 + 1500) bytes: beyond L2
    assert bench.row_bound(big, ROOF) == {
        "bound": pytest.approx(10e9 / (8 * 91500)), "limit": "L3", "peak_gflops": 10.0}


def test_load_watch(monkeypatch):
    load = bench.LoadWatch().start().stop()
    assert set(load) == {"seconds", "cpus", "loadavg_before", "loadavg_after", "own_cpus",
                         "other_cpus", "steal_cpus", "busy", "reasons"}
    assert load["seconds"] > 0 and load["cpus"] >= 1 and load["own_cpus"] >= 0
    assert load["busy"] == bool(load["reasons"])

    readings = iter([(100.0, 5.0), (100.0 + 10**6, 5.0)])  # others busy all the time
    monkeypatch.setattr(bench.LoadWatch, "_machine_seconds", staticmethod(lambda: next(readings)))
    monkeypatch.setattr(bench.LoadWatch, "_loadavg", staticmethod(lambda: 0.0))
    busy = bench.LoadWatch().start().stop()
    assert busy["busy"] and busy["other_cpus"] > 1
    assert busy["reasons"][0].startswith("other processes used ")
    with pytest.raises(RuntimeError, match="before start"):
        bench.LoadWatch().stop()


@pytest.fixture(scope="module")
def result():
    return bench.run_bench(hidden_sizes=(8,), rounds=2, target_seconds=0.002,
                           text_length=3000, cells=("rnn", "gru"), minibatch=(8, 4, 10),
                           probe_seconds=0.0005)


def test_every_row_has_its_limit(result):
    assert result["roofline"]["fma_gflops"]["float64"] > 0
    assert result["load"]["spread"] >= 1
    for row in result["rows"]:
        r = row["roofline"]
        assert r["flops_per_char"] > 0 and r["bytes_per_char"] > 0 and r["threads"] >= 1
        assert r["bound"] > 0 and r["limit"] in ("FMA", "L1", "L2", "L3")
        assert len(r["of_bound"]["rounds"]) == 2
        np.testing.assert_allclose(r["of_bound"]["rounds"],
                                   np.array(row["charrnn"]["rounds"]) / r["bound"])
        assert r["gflops"] > 0 and r["of_peak"] > 0
    minibatch = result["rows"][-1]
    assert minibatch["config"].startswith("gru float32 B=4")
    assert minibatch["roofline"]["threads"] == min(4, result["settings"]["threads"])


def test_table_prints_the_roofline(result):
    table = bench.format_table(result)
    lines = table.splitlines()
    roof = result["roofline"]
    assert lines[0].startswith("CPU: ")
    assert any(line.startswith(f"roofline, one core ({roof['variant']} build, "
                               f"{roof['vector_bytes']}-byte vectors): FMA peak ")
               for line in lines)
    assert any(line.startswith("load: other processes ") for line in lines)
    header = next(line for line in lines if line.startswith("task"))
    assert "of limit" in header
    body = lines[lines.index(header) + 2:]
    assert len(body) == len(result["rows"])
    for line, row in zip(body, result["rows"]):
        r = row["roofline"]
        assert f"{r['of_bound']['median']:.0%} {r['limit']}" in line

    busy = dict(result, load=dict(result["load"], busy=True, reasons=["test reason"]))
    assert "WARNING: the machine was busy during the run (test reason)" in \
        bench.format_table(busy)
    idle = dict(result, load=dict(result["load"], busy=False, reasons=[]))
    assert "WARNING" not in bench.format_table(idle)


def test_bad_probe_seconds():
    for seconds in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="probe_seconds must be a finite number > 0"):
            bench.run_bench(hidden_sizes=(4,), probe_seconds=seconds)


def test_cpu_name_has_family_and_model(monkeypatch):
    import io
    cpuinfo = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n"
               "model name\t: AMD EPYC\nstepping\t: 1\n\nprocessor\t: 1\ncpu family\t: 99\n")
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/cpuinfo":
            return io.StringIO(cpuinfo)
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(bench, "open", fake_open, raising=False)
    assert bench.machine_info()["cpu"] == "AMD EPYC (family 26 model 2 stepping 1)"


def test_cli_prints_the_roofline(capsys):
    code = bench.main(["--hidden-sizes", "6", "--rounds", "1", "--seconds", "0.001",
                       "--cells", "rnn", "--no-extras", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("CPU: ") and "logical CPUs available" in out.splitlines()[0]
    assert "roofline, one core (" in out and "GFLOP/s float64" in out and " GB/s (" in out
    assert "load: other processes " in out
    assert "of limit" in out


def test_better_roofline_takes_the_higher_figures():
    a = dict(ROOF, variant="avx2")
    b = dict(ROOF, fma_gflops={"float64": 12.0, "float32": 5.0},
             bandwidth_gbs={"L1": 1.0, "L2": 60.0, "L3": 10.0})
    best = bench._better_roofline(a, b)
    assert best["fma_gflops"] == {"float64": 12.0, "float32": 20.0}
    assert best["bandwidth_gbs"] == {"L1": 20.0, "L2": 60.0, "L3": 10.0}
    assert best["variant"] == "avx2" and best["caches"] is ROOF["caches"]
    assert a["fma_gflops"] is ROOF["fma_gflops"]  # the inputs stay as they were
