"""The builds in an installation: which ones exist for the target, how dispatch copes with
one that is missing, what the CPU checks say, and setup.py's choices for targets and
compilers that this machine cannot build for (macOS, Windows, arm64)."""
import platform
import runpy
import sys
import sysconfig
from pathlib import Path

import pytest

from charrnn import _dispatch

SETUP_PY = Path(__file__).resolve().parents[1] / "setup.py"
X86_64 = platform.machine().lower() in ("x86_64", "amd64")


def test_the_installation_holds_the_builds_of_its_target():
    built = _dispatch.built_variants()
    assert built[0] == "baseline"
    if not X86_64:
        assert built == ("baseline",), f"vector builds for x86-64 on {platform.machine()}"
    elif "universal2" not in sysconfig.get_platform():
        assert built == _dispatch.VARIANTS, f"an x86-64 installation holds only {built}"


def test_each_build_reports_its_vector_width_and_the_same_c_path():
    widths = {"baseline": (16,), "avx2": (32,), "avx512": (64,)}
    paths = set()
    for name in _dispatch.built_variants():
        if name != "baseline" and not dict(
                (n, has) for n, has, _ in _dispatch._VECTOR_BUILDS)[name]():
            continue   # a build this CPU cannot run is not even imported
        module = _dispatch.load(name)[0]
        assert module.vector_bytes() in widths[name], (name, module.vector_bytes())
        paths.add(module.portable_c())
    assert len(paths) == 1, "the builds of one installation took different C paths"


def test_dispatch_skips_a_vector_build_that_was_not_built(monkeypatch):
    for name in ("avx2", "avx512"):   # as in a wheel for a target other than x86-64
        monkeypatch.setitem(sys.modules, f"charrnn._kernels_{name}", None)
    monkeypatch.delenv("CHARRNN_KERNELS", raising=False)
    assert _dispatch.built_variants() == ("baseline",)
    assert _dispatch.load()[1] == "baseline"
    if _dispatch._baseline.cpu_has_avx2_fma():
        with pytest.raises(ImportError, match="has no avx2 build"):
            _dispatch.load("avx2")


def test_dispatch_does_not_hide_a_vector_build_that_fails_to_load(monkeypatch):
    if not _dispatch._baseline.cpu_has_avx2_fma():
        pytest.skip("this CPU runs no vector build")
    real = _dispatch.importlib.import_module

    def broken(name, *args):
        if name.startswith("charrnn._kernels_"):
            raise ImportError(f"{name}: undefined symbol GOMP_parallel")
        return real(name, *args)

    monkeypatch.setattr(_dispatch.importlib, "import_module", broken)
    monkeypatch.delenv("CHARRNN_KERNELS", raising=False)
    with pytest.raises(ImportError, match="undefined symbol"):
        _dispatch.load()


@pytest.mark.skipif(not (sys.platform.startswith("linux") and X86_64),
                    reason="compares with the CPU flags of Linux's /proc/cpuinfo (x86-64)")
def test_cpu_checks_agree_with_the_kernel():
    # Linux lists avx2/avx512* only when the OS saves their registers, as XGETBV says
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
        flags = next(line for line in f if line.startswith("flags")).split(":", 1)[1].split()
    avx2_fma = "avx2" in flags and "fma" in flags
    avx512 = avx2_fma and {"avx512f", "avx512dq", "avx512vl"} <= set(flags)
    assert bool(_dispatch._baseline.cpu_has_avx2_fma()) == avx2_fma
    assert bool(_dispatch._baseline.cpu_has_avx512()) == avx512


# -- setup.py's decisions, for every platform ---------------------------------------------

@pytest.fixture(scope="module")
def setup_py():
    """setup.py's functions (running it as a module builds nothing), as for a release
    build whatever switches this environment sets."""
    if not SETUP_PY.exists():
        pytest.skip("setup.py is not next to the tests (an installed copy of them)")
    with pytest.MonkeyPatch.context() as mp:
        for switch in ("CHARRNN_DEBUG", "CHARRNN_ASAN", "CHARRNN_OPENMP", "CHARRNN_PORTABLE_C"):
            mp.delenv(switch, raising=False)
        return runpy.run_path(str(SETUP_PY), run_name="charrnn_setup")


@pytest.mark.parametrize("plat,environ,platform_name,archs,vector", [
    ("linux-x86_64", {}, "linux", {"x86_64"}, True),
    ("linux-aarch64", {}, "linux", {"aarch64"}, False),
    ("linux-x86_64", {"_PYTHON_HOST_PLATFORM": "linux-aarch64"}, "linux", {"aarch64"}, False),
    ("win-amd64", {}, "win32", {"x86_64"}, True),
    ("win-arm64", {}, "win32", {"arm64"}, False),
    ("win32", {}, "win32", {"x86"}, False),
    ("macosx-10.9-x86_64", {}, "darwin", {"x86_64"}, True),
    ("macosx-11.0-arm64", {}, "darwin", {"arm64"}, False),
    ("macosx-10.9-universal2", {}, "darwin", {"x86_64", "arm64"}, False),
    # cibuildwheel's arm64 build on an Intel Mac: ARCHFLAGS decides, not the host
    ("macosx-10.9-x86_64", {"ARCHFLAGS": "-arch arm64"}, "darwin", {"arm64"}, False),
    ("macosx-10.9-x86_64", {"ARCHFLAGS": "-arch x86_64 -arch arm64"}, "darwin",
     {"x86_64", "arm64"}, False),
    ("macosx-10.9-x86_64", {"_PYTHON_HOST_PLATFORM": "macosx-11.0-arm64"}, "darwin",
     {"arm64"}, False),
], ids=lambda v: v if isinstance(v, str) else None)
def test_vector_builds_follow_the_target_not_the_host(setup_py, plat, environ, platform_name,
                                                      archs, vector):
    got = setup_py["target_archs"](plat, environ=environ, platform_name=platform_name)
    assert got == archs
    assert setup_py["builds_vector_variants"](got) is vector


def test_each_compiler_gets_its_own_flags(setup_py):
    msvc, _ = setup_py["compile_flags"]("msvc")
    assert "/O2" in msvc and not any(f.startswith("-") for f in msvc)
    for family in ("gcc", "clang"):
        cflags, ldflags = setup_py["compile_flags"](family)
        assert "-O3" in cflags and "-g0" in cflags, "release builds carry no debug info"
        assert "-fopenmp-simd" in cflags and not any(f.startswith("/") for f in cflags)
        assert ("-Wno-psabi" in cflags) is (family == "gcc")
        assert ("-s" in ldflags) is sys.platform.startswith("linux")
    cflags, _ = setup_py["compile_flags"]("clang", accepts=lambda flags: False)
    assert "-fopenmp-simd" not in cflags
    unix, msvc = setup_py["VECTOR_BUILDS"]["_kernels_avx2"]
    assert unix == ["-mavx2", "-mfma"] and msvc == ["/arch:AVX2"]


def test_openmp_is_probed_with_each_compilers_flag(setup_py, tmp_path):
    candidates = setup_py["openmp_candidates"]
    assert [c for c, _ in candidates("msvc")] == [["/openmp:llvm"], ["/openmp"]]
    assert candidates("gcc", environ={}, platform_name="linux") == [(["-fopenmp"],
                                                                     ["-fopenmp"])]
    mac = candidates("clang", environ={"LIBOMP_PREFIX": str(tmp_path)}, platform_name="darwin")
    assert mac[0] == (["-fopenmp"], ["-fopenmp"])     # LLVM's clang, or GCC
    assert (["-Xpreprocessor", "-fopenmp", f"-I{tmp_path}/include"],
            [f"-L{tmp_path}/lib", "-lomp"]) in mac    # Apple clang with libomp
