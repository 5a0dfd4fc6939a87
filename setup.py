"""Build of charrnn's compiled kernels. Metadata lives in pyproject.toml.

Builds of the same kernels (csrc/kernels.pxi, csrc/stack.pxi) go into every wheel:
  charrnn._kernels         portable: the compiler's baseline for the target (SSE2 on x86-64)
  charrnn._kernels_avx2    x86-64 targets only, with AVX2 and FMA
  charrnn._kernels_avx512  x86-64 targets only, with AVX-512 F, DQ, VL (64-byte vectors)
charrnn/_dispatch.py picks at import time the widest one the CPU runs. Whether a target
is x86-64 comes from what the build is *for* (ARCHFLAGS on macOS, _PYTHON_HOST_PLATFORM,
the MSVC target), not from the machine that runs it: an arm64 or universal2 build on an
Intel Mac gets the portable build only.

The flags follow the compiler: GCC and clang (Linux, macOS, MinGW) or MSVC (Windows).
Minibatch training runs streams on several threads with OpenMP when the compiler has it
(probed below: -fopenmp; on macOS Apple clang with Homebrew's libomp through
-Xpreprocessor -fopenmp -lomp; /openmp:llvm or /openmp with MSVC); without it the same
code runs on one thread. Release builds carry no debug information (-g0, and -s on Linux).

Switches (environment variables):
  CHARRNN_DEBUG=1       bounds and initialisation checks on, -O0 -g (for debugging, slow)
  CHARRNN_OPENMP=0      build without OpenMP even if the compiler has it
  CHARRNN_PORTABLE_C=1  the small matrix products on plain C loops instead of GCC vector
                        extensions (csrc/portable.h): the path MSVC always takes, so
                        that GCC and clang builds can test it
  CHARRNN_SYMBOLS=1     the release build with symbols and line tables (-g, not
                        stripped), for profiling with perf
  CHARRNN_ASAN=1        AddressSanitizer build (GCC, clang): -fsanitize=address
                        -fno-omit-frame-pointer -g, same optimisation as the release
                        build, so the same vector code and the same arithmetic are
                        checked; run Python with LD_PRELOAD=$(gcc -print-file-name=libasan.so)
                        (see .ci/asan)
  LIBOMP_PREFIX=DIR     macOS: where libomp is (DIR/include/omp.h, DIR/lib/libomp.dylib),
                        if not in Homebrew's places
"""
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile


def switch(name):
    """Whether the environment variable ``name`` is set to something other than 0."""
    return os.environ.get(name, "") not in ("", "0")


DEBUG = switch("CHARRNN_DEBUG")
SYMBOLS = switch("CHARRNN_SYMBOLS")
ASAN = switch("CHARRNN_ASAN")
PORTABLE_C = switch("CHARRNN_PORTABLE_C")
NO_OPENMP = os.environ.get("CHARRNN_OPENMP", "") == "0"

X86_64_NAMES = ("x86_64", "amd64", "x64")
KERNEL_SOURCES = ["csrc/kernels.pxi", "csrc/optim.pxi", "csrc/cell_rnn.pxi",
                  "csrc/cell_lstm.pxi", "csrc/cell_gru.pxi", "csrc/stack.pxi",
                  "csrc/build_facts.pxi", "csrc/roofline.pxi", "csrc/smallblas.h",
                  "csrc/vecmath.h", "csrc/cellmath.h", "csrc/portable.h", "csrc/cpu.h", "csrc/split.h"]
#: the builds for x86-64 targets only, and their flags for GCC/clang and for MSVC
VECTOR_BUILDS = {
    "_kernels_avx2": (["-mavx2", "-mfma"], ["/arch:AVX2"]),
    "_kernels_avx512": (["-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma",
                         "-mprefer-vector-width=512"], ["/arch:AVX512"]),
}


def target_archs(plat_name=None, environ=None, platform_name=None):
    """The CPU architectures the extensions are compiled for, e.g. ``{"x86_64"}``.

    In order: macOS's ``ARCHFLAGS`` (``-arch arm64 -arch x86_64``: both), then the
    platform tag of the build (``_PYTHON_HOST_PLATFORM`` for a cross build, else
    ``plat_name``, which build_ext takes from the MSVC target on Windows, else
    ``sysconfig.get_platform()``): ``linux-aarch64``, ``macosx-11.0-universal2``,
    ``win-amd64``.
    """
    environ = os.environ if environ is None else environ
    platform_name = sys.platform if platform_name is None else platform_name
    if platform_name == "darwin":
        archs = re.findall(r"-arch\s+(\S+)", environ.get("ARCHFLAGS", ""))
        if archs:
            return set(archs)
    cross = environ.get("_PYTHON_HOST_PLATFORM")
    plat = cross or plat_name or sysconfig.get_platform()
    if plat == "win32":
        return {"x86"}
    machine = plat.rsplit("-", 1)[-1].lower()
    if machine == "universal2":
        return {"x86_64", "arm64"}
    return {"x86_64" if machine in X86_64_NAMES else machine}


def builds_vector_variants(archs):
    """Whether the AVX2 and AVX-512 builds apply: every target is x86-64 (no -mavx2
    ever goes into an arm64 compile, e.g. one half of a universal2 build)."""
    return bool(archs) and all(a in X86_64_NAMES for a in archs)


def compiler_family(compiler):
    """"msvc", "clang" or "gcc" (any other Unix compiler is treated as GCC)."""
    if compiler.compiler_type == "msvc":
        return "msvc"
    try:
        out = subprocess.run([compiler.compiler_so[0], "--version"], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return "gcc"
    return "clang" if "clang" in out.lower() else "gcc"


def compile_flags(family, accepts=lambda flags: True):
    """(compile, link) flags common to every build, for the compiler family.

    Portable and value-safe: no -march=native, no -ffast-math. -fopenmp-simd lets the
    compiler vectorise the reductions of vecmath.h (and links no OpenMP runtime);
    -fno-trapping-math and -fno-math-errno let it vectorise the selects of the clip and
    the math functions, and sqrt, without changing any result. ``accepts(flags)`` says
    whether the compiler takes some flags (Apple clang may lack -fopenmp-simd).
    """
    if family == "msvc":
        if ASAN:
            raise RuntimeError("CHARRNN_ASAN=1 needs GCC or clang, not MSVC")
        return (["/Od", "/Zi"], ["/DEBUG"]) if DEBUG else (["/O2"], [])
    cflags = ["-fno-trapping-math", "-fno-math-errno"]
    if accepts(["-fopenmp-simd"]):
        cflags.append("-fopenmp-simd")
    if family == "gcc":
        cflags.append("-Wno-psabi")   # GCC's note on passing vectors by value
    ldflags = []
    if ASAN:
        cflags += ["-O3", "-fsanitize=address", "-fno-omit-frame-pointer", "-g"]
        ldflags += ["-fsanitize=address"]
    elif DEBUG:
        cflags += ["-O0", "-g"]
    elif SYMBOLS:
        cflags += ["-O3", "-g"]
    else:
        # no debug information (Python's own CFLAGS often carry -g): a quarter the size
        cflags += ["-O3", "-g0"]
        if sys.platform.startswith("linux"):
            ldflags.append("-s")
    return cflags, ldflags


def openmp_candidates(family, environ=None, platform_name=None):
    """The (compile, link) flags that may give OpenMP, in the order to try them."""
    environ = os.environ if environ is None else environ
    platform_name = sys.platform if platform_name is None else platform_name
    if family == "msvc":
        # /openmp:llvm: OpenMP 3.1 (unsigned loop counters, simd); /openmp: 2.0
        return [(["/openmp:llvm"], []), (["/openmp"], [])]
    candidates = [(["-fopenmp"], ["-fopenmp"])]
    if platform_name == "darwin":
        # Apple clang has the OpenMP front end but no -fopenmp driver flag and no runtime
        prefixes = [environ.get("LIBOMP_PREFIX", ""), "/opt/homebrew/opt/libomp",
                    "/usr/local/opt/libomp"]
        for prefix in dict.fromkeys(p for p in prefixes if p and os.path.isdir(p)):
            candidates.append((["-Xpreprocessor", "-fopenmp", f"-I{prefix}/include"],
                               [f"-L{prefix}/lib", "-lomp"]))
    return candidates


OMP_PROGRAM = """#include <omp.h>
int main(void) {
  int n = 0;
  #pragma omp parallel reduction(+:n)
  n += 1;
  return n > 0 ? 0 : 1 + omp_get_max_threads();
}
"""


def try_build(compiler, source, cflags, ldflags, link=True):
    """Whether ``compiler`` compiles (and links) the C program ``source`` with the flags."""
    from setuptools._distutils.errors import CompileError, LinkError

    tmp = tempfile.mkdtemp(prefix="charrnn-probe-")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(source)
        objects = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
        if link:
            compiler.link_executable(objects, os.path.join(tmp, "probe"),
                                     extra_postargs=ldflags)
        return True
    except (CompileError, LinkError, OSError):
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def find_openmp(compiler, family):
    """The (compile, link) flags of the first OpenMP candidate that builds, else None."""
    if NO_OPENMP:
        return None
    for cflags, ldflags in openmp_candidates(family):
        if try_build(compiler, OMP_PROGRAM, cflags, ldflags):
            return cflags, ldflags
    print("charrnn: the compiler has no OpenMP; minibatch training will use one thread")
    return None


def configure(compiler, extensions, plat_name=None):
    """Set the flags of the kernel ``extensions`` for ``compiler``; returns those to build
    (the vector builds only for x86-64 targets)."""
    family = compiler_family(compiler)
    cflags, ldflags = compile_flags(
        family, lambda flags: try_build(compiler, "int main(void) { return 0; }\n",
                                        flags + ["-Werror"], [], link=False))
    openmp = find_openmp(compiler, family)
    archs = target_archs(plat_name)
    vector = builds_vector_variants(archs)
    print(f"charrnn: {family} compiler, target {'+'.join(sorted(archs))}, "
          f"OpenMP {'on' if openmp else 'off'}, "
          f"{'portable C' if PORTABLE_C or family == 'msvc' else 'GCC vector extensions'}, "
          f"builds {'all three' if vector else 'portable only'}")
    chosen = []
    for ext in extensions:
        short = ext.name.rsplit(".", 1)[-1]
        if short in VECTOR_BUILDS:
            if not vector:
                continue
            unix, msvc = VECTOR_BUILDS[short]
            extra = msvc if family == "msvc" else unix
        else:
            extra = []
        ext.extra_compile_args = cflags + extra + (openmp[0] if openmp else [])
        ext.extra_link_args = ldflags + (openmp[1] if openmp else [])
        if family != "msvc":
            ext.define_macros.append(("CHARRNN_OMP_SIMD", "1"))
        if PORTABLE_C:
            ext.define_macros.append(("CHARRNN_PORTABLE_C", "1"))
        chosen.append(ext)
    return chosen


def main():
    from Cython.Build import cythonize
    from setuptools import Extension, setup
    from setuptools.command.build_ext import build_ext

    class build_ext_for_compiler(build_ext):
        """build_ext with flags chosen once the compiler (and its target) is known."""

        def build_extensions(self):
            self.extensions = configure(self.compiler, self.extensions, self.plat_name)
            super().build_extensions()

    # Safety checks are set here, not in the .pyx headers: a header directive would
    # silently override these. Off by default because the Python layer
    # (charrnn/_validate.py) checks every index and shape before a kernel runs.
    directives = {"boundscheck": DEBUG, "wraparound": DEBUG, "initializedcheck": DEBUG}
    extensions = [Extension(f"charrnn.{name}", sources=[f"csrc/{name}.pyx"],
                            include_dirs=["csrc"], depends=KERNEL_SOURCES)
                  for name in ["_kernels", *VECTOR_BUILDS]]
    setup(
        ext_modules=cythonize(extensions, compiler_directives=directives,
                              include_path=["csrc"]),
        cmdclass={"build_ext": build_ext_for_compiler},
    )


if __name__ == "__main__":   # also under pip: setuptools runs this file as __main__
    main()
