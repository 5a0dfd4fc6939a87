"""Build of charrnn's compiled kernels. Metadata lives in pyproject.toml.

Builds of the same kernels (csrc/kernels.pxi, csrc/stack.pxi) go into every wheel:
  charrnn._kernels         portable: the compiler's baseline for the target (SSE2 on x86-64)
  charrnn._kernels_avx2    x86-64 only, with -mavx2 -mfma
  charrnn._kernels_avx512  x86-64 only, with AVX-512 F, DQ, VL (64-byte vectors) and FMA
charrnn/_dispatch.py picks at import time the widest one the CPU runs.

Minibatch training runs streams on several threads with OpenMP when the compiler has
it (probed below); without it the same code runs on one thread.

Switches (environment variables):
  CHARRNN_DEBUG=1       bounds and initialisation checks on, -O0 -g (for debugging, slow)
  CHARRNN_OPENMP=0      build without OpenMP even if the compiler has it
  CHARRNN_ASAN=1        AddressSanitizer build: -fsanitize=address -fno-omit-frame-pointer -g,
                        same optimisation as the release build, so the same vector code and
                        the same arithmetic are checked; run Python with
                        LD_PRELOAD=$(gcc -print-file-name=libasan.so) (see .ci/asan)
"""
import os
import platform
import shutil
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CHARRNN_DEBUG", "") not in ("", "0")
ASAN = os.environ.get("CHARRNN_ASAN", "") not in ("", "0")
X86_64 = platform.machine().lower() in ("x86_64", "amd64")

# Safety checks are set here, not in the .pyx headers: a header directive would
# silently override these. Off by default because the Python layer
# (charrnn/_validate.py) checks every index and shape before a kernel runs.
directives = {
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
}

# Portable and value-safe: no -march=native, no -ffast-math. -fopenmp-simd lets gcc
# vectorise the reductions in smallblas.h (and links no OpenMP runtime);
# -fno-trapping-math and -fno-math-errno let it vectorise the selects of the
# clip and the math functions, and sqrt, without changing any result.
common = ["-fopenmp-simd", "-fno-trapping-math", "-fno-math-errno", "-Wno-psabi"]
common += ["-O0", "-g"] if DEBUG else ["-O3"]
if ASAN:
    common += ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"]


def openmp_flag():
    """'-fopenmp' if the C compiler builds and links an OpenMP program, else None."""
    if os.environ.get("CHARRNN_OPENMP", "") == "0":
        return None
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.errors import CCompilerError, DistutilsExecError
    from setuptools._distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    tmp = tempfile.mkdtemp(prefix="charrnn-omp-")
    try:
        src = os.path.join(tmp, "omp.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void) {\n  int n = 0;\n"
                    "  #pragma omp parallel reduction(+:n)\n  n += 1;\n"
                    "  return n > 0 ? 0 : 1 + omp_get_max_threads();\n}\n")
        objects = compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
        compiler.link_executable(objects, os.path.join(tmp, "omp"), extra_postargs=["-fopenmp"])
        return "-fopenmp"
    except (CCompilerError, DistutilsExecError, OSError):
        print("charrnn: the compiler has no OpenMP; minibatch training will use one thread")
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


OPENMP = openmp_flag()


def kernels(name, extra=()):
    return Extension(
        f"charrnn.{name}",
        sources=[f"csrc/{name}.pyx"],
        include_dirs=["csrc"],
        depends=["csrc/kernels.pxi", "csrc/optim.pxi", "csrc/cell_rnn.pxi", "csrc/cell_lstm.pxi",
                 "csrc/cell_gru.pxi", "csrc/stack.pxi", "csrc/smallblas.h", "csrc/vecmath.h",
                 "csrc/cpu.h"],
        extra_compile_args=common + list(extra) + ([OPENMP] if OPENMP else []),
        extra_link_args=([OPENMP] if OPENMP else []) + (["-fsanitize=address"] if ASAN else []),
        define_macros=[("CHARRNN_OMP_SIMD", "1")],
    )


extensions = [kernels("_kernels")]
if X86_64:
    extensions.append(kernels("_kernels_avx2", ["-mavx2", "-mfma"]))
    extensions.append(kernels("_kernels_avx512", ["-mavx512f", "-mavx512dq", "-mavx512vl",
                                                  "-mavx2", "-mfma",
                                                  "-mprefer-vector-width=512"]))

setup(
    ext_modules=cythonize(extensions, compiler_directives=directives, include_path=["csrc"]),
)
