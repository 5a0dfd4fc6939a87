/* Small dense kernels for charrnn: row-major matrices, sizes that fit in cache.
 *
 * Written so that gcc vectorises them at -O2/-O3 without -ffast-math: reductions
 * carry an `omp simd reduction` (honoured with -fopenmp-simd, a no-op without it),
 * and the matrix-vector product walks four rows at once so that four independent
 * accumulators hide the latency of the fused multiply-adds.
 *
 * Every function has a double (`_d`) and a float (`_f`) version, made by one macro.
 */
#ifndef CHARRNN_SMALLBLAS_H
#define CHARRNN_SMALLBLAS_H

#include <stddef.h>

#if defined(_OPENMP) || defined(CHARRNN_OMP_SIMD)
#define CHARRNN_PRAGMA(x) _Pragma(#x)
#else
#define CHARRNN_PRAGMA(x)
#endif

#define CHARRNN_DEFINE_SMALLBLAS(T, S)                                            \
/* sum_k a[k] * b[k] */                                                          \
static inline T dot_##S(const T *restrict a, const T *restrict b, ptrdiff_t n)   \
{                                                                                \
    T s = 0;                                                                     \
    CHARRNN_PRAGMA(omp simd reduction(+:s))                                      \
    for (ptrdiff_t k = 0; k < n; k++) s += a[k] * b[k];                          \
    return s;                                                                    \
}                                                                                \
                                                                                 \
/* y += alpha * x */                                                             \
static inline void axpy_##S(T *restrict y, T alpha, const T *restrict x,         \
                            ptrdiff_t n)                                         \
{                                                                                \
    CHARRNN_PRAGMA(omp simd)                                                     \
    for (ptrdiff_t k = 0; k < n; k++) y[k] += alpha * x[k];                      \
}                                                                                \
                                                                                 \
/* y[i] += sum_j A[i, j] * x[j];  A is (m, n) row-major */                       \
static inline void gemv_n_##S(T *restrict y, const T *restrict A,                \
                              const T *restrict x, ptrdiff_t m, ptrdiff_t n)     \
{                                                                                \
    ptrdiff_t i = 0;                                                             \
    for (; i + 4 <= m; i += 4) {                                                 \
        const T *a0 = A + i * n, *a1 = a0 + n, *a2 = a1 + n, *a3 = a2 + n;       \
        T s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                        \
        CHARRNN_PRAGMA(omp simd reduction(+:s0, s1, s2, s3))                     \
        for (ptrdiff_t j = 0; j < n; j++) {                                      \
            T xj = x[j];                                                         \
            s0 += a0[j] * xj; s1 += a1[j] * xj;                                  \
            s2 += a2[j] * xj; s3 += a3[j] * xj;                                  \
        }                                                                        \
        y[i] += s0; y[i + 1] += s1; y[i + 2] += s2; y[i + 3] += s3;              \
    }                                                                            \
    for (; i < m; i++) y[i] += dot_##S(A + i * n, x, n);                         \
}                                                                                \
                                                                                 \
/* y[j] += sum_i A[i, j] * x[i]  (y += A^T x);  A is (m, n) row-major */         \
static inline void gemv_t_##S(T *restrict y, const T *restrict A,                \
                              const T *restrict x, ptrdiff_t m, ptrdiff_t n)     \
{                                                                                \
    ptrdiff_t i = 0;                                                             \
    for (; i + 4 <= m; i += 4) {                                                 \
        const T *a0 = A + i * n, *a1 = a0 + n, *a2 = a1 + n, *a3 = a2 + n;       \
        T x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];                \
        CHARRNN_PRAGMA(omp simd)                                                 \
        for (ptrdiff_t j = 0; j < n; j++)                                        \
            y[j] += (a0[j] * x0 + a1[j] * x1) + (a2[j] * x2 + a3[j] * x3);       \
    }                                                                            \
    for (; i < m; i++) axpy_##S(y, x[i], A + i * n, n);                          \
}                                                                                \
                                                                                 \
/* A[i, j] += x[i] * y[j]  (rank-one update);  A is (m, n) row-major */          \
static inline void ger_##S(T *restrict A, const T *restrict x,                   \
                           const T *restrict y, ptrdiff_t m, ptrdiff_t n)        \
{                                                                                \
    for (ptrdiff_t i = 0; i < m; i++) axpy_##S(A + i * n, x[i], y, n);           \
}

CHARRNN_DEFINE_SMALLBLAS(double, d)
CHARRNN_DEFINE_SMALLBLAS(float, f)

#endif
