"""Build of charrnn's compiled kernels. Metadata lives in pyproject.toml.

Switches (environment variables):
  CHARRNN_DEBUG=1   bounds and initialisation checks on, -O0 -g (for debugging, slow)
"""
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CHARRNN_DEBUG", "") not in ("", "0")

# Safety checks are set here, not in the .pyx headers: a header directive would
# silently override these. Off by default because the Python layer
# (charrnn/_validate.py) checks every index and shape before a kernel runs.
directives = {
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
}

# Portable by default: no -march=native. -fopenmp-simd lets gcc vectorise the
# reductions in smallblas.h without -ffast-math (and links no OpenMP runtime).
if DEBUG:
    compile_args = ["-O0", "-g", "-fopenmp-simd"]
else:
    compile_args = ["-O3", "-fopenmp-simd"]

extensions = [
    Extension(
        "charrnn._kernels",
        sources=["csrc/_kernels.pyx"],
        include_dirs=["csrc"],
        extra_compile_args=compile_args,
        define_macros=[("CHARRNN_OMP_SIMD", "1")],
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        include_path=["csrc"],
    ),
)
