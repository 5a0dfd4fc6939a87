/* Small dense kernels for charrnn: row-major matrices, sizes that fit in cache.
 *
 * Written so that compilers vectorise them at -O3 (or /O2) without -ffast-math: the
 * loops are over short vectors, with enough independent accumulators to hide the
 * latency of the fused multiply-adds. Matrix-vector products are all in the "row"
 * form y += x @ B (B's rows scaled and added), so transposed copies of Whh and Why
 * serve the forward pass.
 *
 * Every function has a double (`_d`) and a float (`_f`) version, made by one macro.
 */
#ifndef CHARRNN_SMALLBLAS_H
#define CHARRNN_SMALLBLAS_H

#include <stddef.h>
#include <string.h>

#include "portable.h"   /* CHARRNN_PORTABLE_C, CHARRNN_RESTRICT, CHARRNN_PRAGMA */


/* Vectors as wide as the target's registers: 64 bytes with AVX-512, 32 with AVX,
 * else 16 (also the half vectors, for what is left after the full ones, e.g.
 * 100 = 96 + 4 floats). The kernels below use only these operations on them:
 *
 *     vload, vstore    W lanes from / to memory (any alignment)
 *     vzero            all lanes 0
 *     vmadd(c, a, b)   c + a * b, a a scalar
 *     vmadd_vv(c, x, y)  c + x * y
 *     vadd(x, y)       x + y
 *     vsum(x)          the sum of the lanes, in order
 *
 * and the same with an h for the half vectors. With GCC vector extensions these are
 * the operators themselves; on the portable path (CHARRNN_PORTABLE_C) a vector is a
 * struct of W lanes and each operation a loop over them, which compilers vectorise
 * too. Either way every lane is the same expression, so both paths compute the same
 * sums in the same order: bit for bit the same results where no multiply and add are
 * fused (SSE2; with FMA, clang fuses both paths alike, GCC not always). */
#if defined(__AVX512F__)
#define CHARRNN_VBYTES 64
#define CHARRNN_VREGS 32      /* vector registers: zmm0-31 */
#elif defined(__AVX__)
#define CHARRNN_VBYTES 32
#define CHARRNN_VREGS 16
#else
#define CHARRNN_VBYTES 16
#define CHARRNN_VREGS 16
#endif

#if CHARRNN_PORTABLE_C
typedef struct { double v[CHARRNN_VBYTES / 8]; } charrnn_vd;
typedef struct { float v[CHARRNN_VBYTES / 4]; } charrnn_vf;
typedef struct { double v[2]; } charrnn_hd;
typedef struct { float v[4]; } charrnn_hf;

#define CHARRNN_DEFINE_VOPS(T, S, P, VT, W)                                      \
static inline VT P##zero_##S(void)                                               \
{                                                                                \
    VT r;                                                                        \
    for (int i = 0; i < W; i++) r.v[i] = 0;                                      \
    return r;                                                                    \
}                                                                                \
static inline VT P##madd_##S(VT c, T a, VT b)                                    \
{                                                                                \
    for (int i = 0; i < W; i++) c.v[i] += a * b.v[i];                            \
    return c;                                                                    \
}                                                                                \
static inline VT P##madd_vv_##S(VT c, VT x, VT y)                                \
{                                                                                \
    for (int i = 0; i < W; i++) c.v[i] += x.v[i] * y.v[i];                       \
    return c;                                                                    \
}                                                                                \
static inline VT P##add_##S(VT x, VT y)                                          \
{                                                                                \
    for (int i = 0; i < W; i++) x.v[i] += y.v[i];                                \
    return x;                                                                    \
}                                                                                \
static inline T P##sum_##S(VT x)                                                 \
{                                                                                \
    T s = 0;                                                                     \
    for (int i = 0; i < W; i++) s += x.v[i];                                     \
    return s;                                                                    \
}
#else
typedef double charrnn_vd __attribute__((vector_size(CHARRNN_VBYTES)));
typedef float charrnn_vf __attribute__((vector_size(CHARRNN_VBYTES)));
typedef double charrnn_hd __attribute__((vector_size(16)));
typedef float charrnn_hf __attribute__((vector_size(16)));

#define CHARRNN_DEFINE_VOPS(T, S, P, VT, W)                                      \
static inline VT P##zero_##S(void) { VT r = {0}; return r; }                     \
static inline VT P##madd_##S(VT c, T a, VT b) { return c + a * b; }              \
static inline VT P##madd_vv_##S(VT c, VT x, VT y) { return c + x * y; }          \
static inline VT P##add_##S(VT x, VT y) { return x + y; }                        \
static inline T P##sum_##S(VT x)                                                 \
{                                                                                \
    T s = 0;                                                                     \
    for (int i = 0; i < W; i++) s += x[i];                                       \
    return s;                                                                    \
}
#endif

#define CHARRNN_DEFINE_VMEM(T, S, P, VT)                                         \
static inline VT P##load_##S(const T *p) { VT v; memcpy(&v, p, sizeof v); return v; } \
static inline void P##store_##S(T *p, VT v) { memcpy(p, &v, sizeof v); }

CHARRNN_DEFINE_VOPS(double, d, v, charrnn_vd, (CHARRNN_VBYTES / 8))
CHARRNN_DEFINE_VOPS(float, f, v, charrnn_vf, (CHARRNN_VBYTES / 4))
CHARRNN_DEFINE_VOPS(double, d, h, charrnn_hd, 2)
CHARRNN_DEFINE_VOPS(float, f, h, charrnn_hf, 4)
CHARRNN_DEFINE_VMEM(double, d, v, charrnn_vd)
CHARRNN_DEFINE_VMEM(float, f, v, charrnn_vf)
CHARRNN_DEFINE_VMEM(double, d, h, charrnn_hd)
CHARRNN_DEFINE_VMEM(float, f, h, charrnn_hf)


/* Row accumulation, the workhorse of the kernels:
 *
 *     y[j] += sum_k a[k * as] * B[k * ldb + j]        for j < n, k < K
 *
 * i.e. y += a @ B for a row vector a (stride as) and a (K, n) row-major B (row
 * stride ldb): y += A.T @ x (a = x, B = A), one row of a gradient summed over time
 * (a = a column of dhraw or dy, B = the hidden states), one row of ys (B = Why.T).
 * rowacc2 does two rows y0, y1 with the same B, so that each load of B feeds two
 * multiply-adds. Accumulators stay in registers for the whole sum over k. */
/* rowacc's blocks of NB vectors of y (j onwards, while NB vectors fit): NB independent
 * chains of multiply-adds, each element's sum in the order of k */
#define CHARRNN_ROWACC_BLOCKS(T, S, VT, W, NB)                                   \
    for (; j + NB * W <= n; j += NB * W) {                                       \
        VT c[NB];                                                                \
        for (int u = 0; u < NB; u++) c[u] = vload_##S(y + j + u * W);            \
        for (k = 0; k < K; k++) {                                                \
            const T ak = a[k * as], *b = B + k * ldb + j;                        \
            for (int u = 0; u < NB; u++)                                         \
                c[u] = vmadd_##S(c[u], ak, vload_##S(b + u * W));                \
        }                                                                        \
        for (int u = 0; u < NB; u++) vstore_##S(y + j + u * W, c[u]);            \
    }

#define CHARRNN_DEFINE_ROWACC(T, S, VT, W, HT, HW)                               \
static inline void rowacc_##S(T *CHARRNN_RESTRICT y, const T *CHARRNN_RESTRICT a, \
                              ptrdiff_t as, const T *CHARRNN_RESTRICT B,         \
                              ptrdiff_t ldb, ptrdiff_t K, ptrdiff_t n)           \
{                                                                                \
    ptrdiff_t j = 0, k;                                                          \
    /* 16 vectors of y at a time where there are 32 vector registers: a row of B \
       of up to 16 vectors is then read in one sequential stream, which L2 serves \
       at twice the rate of two half-rows; then 8 vectors at a time */           \
    if (CHARRNN_VREGS >= 32)                                                     \
        CHARRNN_ROWACC_BLOCKS(T, S, VT, W, 16)                                   \
    CHARRNN_ROWACC_BLOCKS(T, S, VT, W, 8)                                        \
    /* then 4 vectors, the sum over k split two ways: again 8 chains */          \
    for (; j + 4 * W <= n; j += 4 * W) {                                         \
        VT c[8];                                                                 \
        for (int u = 0; u < 4; u++) {                                            \
            c[u] = vload_##S(y + j + u * W); c[u + 4] = vzero_##S();             \
        }                                                                        \
        for (k = 0; k + 2 <= K; k += 2) {                                        \
            const T a0 = a[k * as], a1 = a[(k + 1) * as];                        \
            const T *b = B + k * ldb + j;                                        \
            for (int u = 0; u < 4; u++) {                                        \
                c[u] = vmadd_##S(c[u], a0, vload_##S(b + u * W));                \
                c[u + 4] = vmadd_##S(c[u + 4], a1, vload_##S(b + ldb + u * W));  \
            }                                                                    \
        }                                                                        \
        for (; k < K; k++)                                                       \
            for (int u = 0; u < 4; u++)                                          \
                c[u] = vmadd_##S(c[u], a[k * as], vload_##S(B + k * ldb + j + u * W)); \
        for (int u = 0; u < 4; u++) vstore_##S(y + j + u * W, vadd_##S(c[u], c[u + 4])); \
    }                                                                            \
    /* the rest vector by vector, with the sum over k split four ways */         \
    for (; j + W <= n; j += W) {                                                 \
        VT c0 = vload_##S(y + j), c1 = vzero_##S(), c2 = vzero_##S(), c3 = vzero_##S(); \
        for (k = 0; k + 4 <= K; k += 4) {                                        \
            const T *b = B + k * ldb + j;                                        \
            c0 = vmadd_##S(c0, a[k * as], vload_##S(b));                         \
            c1 = vmadd_##S(c1, a[(k + 1) * as], vload_##S(b + ldb));             \
            c2 = vmadd_##S(c2, a[(k + 2) * as], vload_##S(b + 2 * ldb));         \
            c3 = vmadd_##S(c3, a[(k + 3) * as], vload_##S(b + 3 * ldb));         \
        }                                                                        \
        for (; k < K; k++) c0 = vmadd_##S(c0, a[k * as], vload_##S(B + k * ldb + j)); \
        vstore_##S(y + j, vadd_##S(vadd_##S(c0, c1), vadd_##S(c2, c3)));         \
    }                                                                            \
    for (; j + HW <= n; j += HW) {                                               \
        HT c0 = hload_##S(y + j), c1 = hzero_##S(), c2 = hzero_##S(), c3 = hzero_##S(); \
        for (k = 0; k + 4 <= K; k += 4) {                                        \
            const T *b = B + k * ldb + j;                                        \
            c0 = hmadd_##S(c0, a[k * as], hload_##S(b));                         \
            c1 = hmadd_##S(c1, a[(k + 1) * as], hload_##S(b + ldb));             \
            c2 = hmadd_##S(c2, a[(k + 2) * as], hload_##S(b + 2 * ldb));         \
            c3 = hmadd_##S(c3, a[(k + 3) * as], hload_##S(b + 3 * ldb));         \
        }                                                                        \
        for (; k < K; k++) c0 = hmadd_##S(c0, a[k * as], hload_##S(B + k * ldb + j)); \
        hstore_##S(y + j, hadd_##S(hadd_##S(c0, c1), hadd_##S(c2, c3)));         \
    }                                                                            \
    for (; j < n; j++) {                                                         \
        T c0 = y[j], c1 = 0, c2 = 0, c3 = 0;                                     \
        for (k = 0; k + 4 <= K; k += 4) {                                        \
            const T *b = B + k * ldb + j;                                        \
            c0 += a[k * as] * b[0];                c1 += a[(k + 1) * as] * b[ldb]; \
            c2 += a[(k + 2) * as] * b[2 * ldb];    c3 += a[(k + 3) * as] * b[3 * ldb]; \
        }                                                                        \
        for (; k < K; k++) c0 += a[k * as] * B[k * ldb + j];                     \
        y[j] = (c0 + c1) + (c2 + c3);                                            \
    }                                                                            \
}

#define CHARRNN_DEFINE_ROWACC2(T, S, VT, W, HT, HW)                              \
static inline void rowacc2_##S(T *CHARRNN_RESTRICT y0, T *CHARRNN_RESTRICT y1,   \
                               const T *CHARRNN_RESTRICT a0, const T *CHARRNN_RESTRICT a1, \
                               ptrdiff_t as, const T *CHARRNN_RESTRICT B, ptrdiff_t ldb, \
                               ptrdiff_t K, ptrdiff_t n)                         \
{                                                                                \
    ptrdiff_t j = 0, k;                                                          \
    for (; j + 4 * W <= n; j += 4 * W) {                                         \
        VT c00 = vload_##S(y0 + j), c01 = vload_##S(y0 + j + W);                 \
        VT c02 = vload_##S(y0 + j + 2 * W), c03 = vload_##S(y0 + j + 3 * W);     \
        VT c10 = vload_##S(y1 + j), c11 = vload_##S(y1 + j + W);                 \
        VT c12 = vload_##S(y1 + j + 2 * W), c13 = vload_##S(y1 + j + 3 * W);     \
        for (k = 0; k < K; k++) {                                                \
            const T p = a0[k * as], q = a1[k * as], *b = B + k * ldb + j;        \
            VT b0 = vload_##S(b), b1 = vload_##S(b + W);                         \
            VT b2 = vload_##S(b + 2 * W), b3 = vload_##S(b + 3 * W);             \
            c00 = vmadd_##S(c00, p, b0); c01 = vmadd_##S(c01, p, b1);            \
            c02 = vmadd_##S(c02, p, b2); c03 = vmadd_##S(c03, p, b3);            \
            c10 = vmadd_##S(c10, q, b0); c11 = vmadd_##S(c11, q, b1);            \
            c12 = vmadd_##S(c12, q, b2); c13 = vmadd_##S(c13, q, b3);            \
        }                                                                        \
        vstore_##S(y0 + j, c00); vstore_##S(y0 + j + W, c01);                    \
        vstore_##S(y0 + j + 2 * W, c02); vstore_##S(y0 + j + 3 * W, c03);        \
        vstore_##S(y1 + j, c10); vstore_##S(y1 + j + W, c11);                    \
        vstore_##S(y1 + j + 2 * W, c12); vstore_##S(y1 + j + 3 * W, c13);        \
    }                                                                            \
    for (; j + W <= n; j += W) {                                                 \
        VT c0 = vload_##S(y0 + j), c1 = vload_##S(y1 + j);                       \
        VT e0 = vzero_##S(), e1 = vzero_##S();                                   \
        for (k = 0; k + 2 <= K; k += 2) {                                        \
            VT b = vload_##S(B + k * ldb + j), d = vload_##S(B + (k + 1) * ldb + j); \
            c0 = vmadd_##S(c0, a0[k * as], b); c1 = vmadd_##S(c1, a1[k * as], b); \
            e0 = vmadd_##S(e0, a0[(k + 1) * as], d);                             \
            e1 = vmadd_##S(e1, a1[(k + 1) * as], d);                             \
        }                                                                        \
        for (; k < K; k++) {                                                     \
            VT b = vload_##S(B + k * ldb + j);                                   \
            c0 = vmadd_##S(c0, a0[k * as], b); c1 = vmadd_##S(c1, a1[k * as], b); \
        }                                                                        \
        vstore_##S(y0 + j, vadd_##S(c0, e0)); vstore_##S(y1 + j, vadd_##S(c1, e1)); \
    }                                                                            \
    for (; j + HW <= n; j += HW) {                                               \
        HT c0 = hload_##S(y0 + j), c1 = hload_##S(y1 + j);                       \
        HT e0 = hzero_##S(), e1 = hzero_##S();                                   \
        for (k = 0; k + 2 <= K; k += 2) {                                        \
            HT b = hload_##S(B + k * ldb + j), d = hload_##S(B + (k + 1) * ldb + j); \
            c0 = hmadd_##S(c0, a0[k * as], b); c1 = hmadd_##S(c1, a1[k * as], b); \
            e0 = hmadd_##S(e0, a0[(k + 1) * as], d);                             \
            e1 = hmadd_##S(e1, a1[(k + 1) * as], d);                             \
        }                                                                        \
        for (; k < K; k++) {                                                     \
            HT b = hload_##S(B + k * ldb + j);                                   \
            c0 = hmadd_##S(c0, a0[k * as], b); c1 = hmadd_##S(c1, a1[k * as], b); \
        }                                                                        \
        hstore_##S(y0 + j, hadd_##S(c0, e0)); hstore_##S(y1 + j, hadd_##S(c1, e1)); \
    }                                                                            \
    for (; j < n; j++) {                                                         \
        T c0 = y0[j], c1 = y1[j];                                                \
        for (k = 0; k < K; k++) {                                                \
            c0 += a0[k * as] * B[k * ldb + j]; c1 += a1[k * as] * B[k * ldb + j]; \
        }                                                                        \
        y0[j] = c0; y1[j] = c1;                                                  \
    }                                                                            \
}                                                                                \
                                                                                 \
/* four rows y0..y3 sharing each load of B: 2 vectors x 4 rows = 8 chains */     \
static inline void rowacc4_##S(T *CHARRNN_RESTRICT y, ptrdiff_t ldy,             \
                               const T *CHARRNN_RESTRICT a, ptrdiff_t lda,       \
                               ptrdiff_t as, const T *CHARRNN_RESTRICT B,        \
                               ptrdiff_t ldb, ptrdiff_t K, ptrdiff_t n)          \
{                                                                                \
    T *y0 = y, *y1 = y + ldy, *y2 = y + 2 * ldy, *y3 = y + 3 * ldy;              \
    const T *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;        \
    ptrdiff_t j = 0, k;                                                          \
    for (; j + 2 * W <= n; j += 2 * W) {                                         \
        VT c00 = vload_##S(y0 + j), c01 = vload_##S(y0 + j + W);                 \
        VT c10 = vload_##S(y1 + j), c11 = vload_##S(y1 + j + W);                 \
        VT c20 = vload_##S(y2 + j), c21 = vload_##S(y2 + j + W);                 \
        VT c30 = vload_##S(y3 + j), c31 = vload_##S(y3 + j + W);                 \
        for (k = 0; k < K; k++) {                                                \
            const T *b = B + k * ldb + j;                                        \
            VT b0 = vload_##S(b), b1 = vload_##S(b + W);                         \
            T p0 = a0[k * as], p1 = a1[k * as], p2 = a2[k * as], p3 = a3[k * as]; \
            c00 = vmadd_##S(c00, p0, b0); c01 = vmadd_##S(c01, p0, b1);          \
            c10 = vmadd_##S(c10, p1, b0); c11 = vmadd_##S(c11, p1, b1);          \
            c20 = vmadd_##S(c20, p2, b0); c21 = vmadd_##S(c21, p2, b1);          \
            c30 = vmadd_##S(c30, p3, b0); c31 = vmadd_##S(c31, p3, b1);          \
        }                                                                        \
        vstore_##S(y0 + j, c00); vstore_##S(y0 + j + W, c01);                    \
        vstore_##S(y1 + j, c10); vstore_##S(y1 + j + W, c11);                    \
        vstore_##S(y2 + j, c20); vstore_##S(y2 + j + W, c21);                    \
        vstore_##S(y3 + j, c30); vstore_##S(y3 + j + W, c31);                    \
    }                                                                            \
    if (j < n) {                             /* the last columns: two rows at a time */ \
        rowacc2_##S(y0 + j, y1 + j, a0, a1, as, B + j, ldb, K, n - j);           \
        rowacc2_##S(y2 + j, y3 + j, a2, a3, as, B + j, ldb, K, n - j);           \
    }                                                                            \
}                                                                                \
                                                                                 \
/* Y[r, :] += sum_k A[r * lda + k * as] * B[k, :] for r < m: rows four at a time */ \
static inline void rowacc_rows_##S(T *Y, ptrdiff_t ldy, const T *A, ptrdiff_t lda, \
                                   ptrdiff_t as, const T *B, ptrdiff_t ldb,      \
                                   ptrdiff_t m, ptrdiff_t K, ptrdiff_t n)        \
{                                                                                \
    ptrdiff_t r = 0;                                                             \
    for (; r + 4 <= m; r += 4)                                                   \
        rowacc4_##S(Y + r * ldy, ldy, A + r * lda, lda, as, B, ldb, K, n);       \
    for (; r + 2 <= m; r += 2)                                                   \
        rowacc2_##S(Y + r * ldy, Y + (r + 1) * ldy, A + r * lda, A + (r + 1) * lda, \
                    as, B, ldb, K, n);                                           \
    if (r < m) rowacc_##S(Y + r * ldy, A + r * lda, as, B, ldb, K, n);           \
}

CHARRNN_DEFINE_ROWACC(double, d, charrnn_vd, (CHARRNN_VBYTES / 8), charrnn_hd, 2)
CHARRNN_DEFINE_ROWACC(float, f, charrnn_vf, (CHARRNN_VBYTES / 4), charrnn_hf, 4)
CHARRNN_DEFINE_ROWACC2(double, d, charrnn_vd, (CHARRNN_VBYTES / 8), charrnn_hd, 2)
CHARRNN_DEFINE_ROWACC2(float, f, charrnn_vf, (CHARRNN_VBYTES / 4), charrnn_hf, 4)

/* Register-blocked form of rowacc_rows for the stacked kernels:
 *
 *     Y[r, j] += sum_k A[r * lda + k * as] * B[k * ldb + j]      r < m, j < n, k < K
 *
 * Tiles of MR rows by NR vectors keep MR * NR accumulators in registers while k runs
 * (8 x 2: 16 chains, each load of B feeding 8 multiply-adds); the tiles of a block
 * of rows run along its columns, so that its rows of A stay in L1. Every element is
 * one chain of multiply-adds in the order of k, whatever tile computes it: the result
 * depends on the vector width of the build only through the contraction of a * b + c
 * into one FMA, and not on m. */
#define CHARRNN_DEFINE_TILE(T, S, VT, W, MR, NR)                                 \
static inline void tile_##S##_##MR##x##NR(T *CHARRNN_RESTRICT Y, ptrdiff_t ldy,  \
                                          const T *CHARRNN_RESTRICT A, ptrdiff_t lda, \
                                          ptrdiff_t as, const T *CHARRNN_RESTRICT B, \
                                          ptrdiff_t ldb, ptrdiff_t K)            \
{                                                                                \
    VT c[MR][NR];                                                                \
    for (int r = 0; r < MR; r++)                                                 \
        for (int u = 0; u < NR; u++) c[r][u] = vload_##S(Y + r * ldy + u * W);   \
    for (ptrdiff_t k = 0; k < K; k++) {                                          \
        VT b[NR];                                                                \
        for (int u = 0; u < NR; u++) b[u] = vload_##S(B + k * ldb + u * W);      \
        for (int r = 0; r < MR; r++) {                                           \
            const T p = A[r * lda + k * as];                                     \
            for (int u = 0; u < NR; u++) c[r][u] = vmadd_##S(c[r][u], p, b[u]);  \
        }                                                                        \
    }                                                                            \
    for (int r = 0; r < MR; r++)                                                 \
        for (int u = 0; u < NR; u++) vstore_##S(Y + r * ldy + u * W, c[r][u]);   \
}

/* MR rows of Y, all n columns: tiles of 2 vectors, then 1, then single columns */
#define CHARRNN_DEFINE_GEMM_ROWS(T, S, W, MR)                                    \
CHARRNN_DEFINE_TILE(T, S, charrnn_v##S, W, MR, 2)                                \
CHARRNN_DEFINE_TILE(T, S, charrnn_v##S, W, MR, 1)                                \
static inline void gemm_rows_##S##_##MR(T *Y, ptrdiff_t ldy, const T *A,         \
                                        ptrdiff_t lda, ptrdiff_t as, const T *B, \
                                        ptrdiff_t ldb, ptrdiff_t K, ptrdiff_t n) \
{                                                                                \
    ptrdiff_t j = 0;                                                             \
    for (; j + 2 * W <= n; j += 2 * W)                                           \
        tile_##S##_##MR##x2(Y + j, ldy, A, lda, as, B + j, ldb, K);              \
    for (; j + W <= n; j += W)                                                   \
        tile_##S##_##MR##x1(Y + j, ldy, A, lda, as, B + j, ldb, K);              \
    for (int r = 0; r < MR; r++)                                                 \
        for (ptrdiff_t i = j; i < n; i++) {                                      \
            T c = Y[r * ldy + i];                                                \
            for (ptrdiff_t k = 0; k < K; k++) c += A[r * lda + k * as] * B[k * ldb + i]; \
            Y[r * ldy + i] = c;                                                  \
        }                                                                        \
}

#define CHARRNN_DEFINE_GEMM(T, S, W)                                             \
CHARRNN_DEFINE_GEMM_ROWS(T, S, W, 8)                                             \
CHARRNN_DEFINE_GEMM_ROWS(T, S, W, 4)                                             \
CHARRNN_DEFINE_GEMM_ROWS(T, S, W, 1)                                             \
static inline void gemm_acc_##S(T *Y, ptrdiff_t ldy, const T *A, ptrdiff_t lda,  \
                                ptrdiff_t as, const T *B, ptrdiff_t ldb,         \
                                ptrdiff_t m, ptrdiff_t K, ptrdiff_t n)           \
{                                                                                \
    ptrdiff_t r = 0;                                                             \
    for (; r + 8 <= m; r += 8)                                                   \
        gemm_rows_##S##_8(Y + r * ldy, ldy, A + r * lda, lda, as, B, ldb, K, n); \
    for (; r + 4 <= m; r += 4)                                                   \
        gemm_rows_##S##_4(Y + r * ldy, ldy, A + r * lda, lda, as, B, ldb, K, n); \
    for (; r < m; r++)                                                           \
        gemm_rows_##S##_1(Y + r * ldy, ldy, A + r * lda, lda, as, B, ldb, K, n); \
}                                                                                \
                                                                                 \
/* Bp = the panels of B (K, n), row stride ldb: panel q holds the 2W columns       \
 * [2Wq, 2Wq + 2W) of all K rows, row after row, at Bp + 2Wq * K; the last n % 2W   \
 * columns are not packed. A tile then reads its columns of B as one sequential    \
 * stream, where B itself puts each row of the strip a row stride (a page, for a    \
 * weight matrix of 1024 float columns) from the last, out of the prefetchers' reach. */ \
static inline void pack_panels_##S(T *CHARRNN_RESTRICT Bp, const T *CHARRNN_RESTRICT B, \
                                   ptrdiff_t ldb, ptrdiff_t K, ptrdiff_t n)      \
{                                                                                \
    for (ptrdiff_t j = 0; j + 2 * W <= n; j += 2 * W)                            \
        for (ptrdiff_t k = 0; k < K; k++)                                        \
            memcpy(Bp + j * K + k * 2 * W, B + k * ldb + j, 2 * W * sizeof(T));  \
}                                                                                \
                                                                                 \
/* gemm_acc with B's panels from pack_panels (B still gives the unpacked last       \
 * columns): the same tiles and sums, so the same bits. Panel after panel, each     \
 * serving all m rows while it stays in L1. */                                     \
static inline void gemm_acc_packed_##S(T *Y, ptrdiff_t ldy, const T *A, ptrdiff_t lda, \
                                       ptrdiff_t as, const T *B, ptrdiff_t ldb,  \
                                       const T *Bp, ptrdiff_t m, ptrdiff_t K,    \
                                       ptrdiff_t n)                              \
{                                                                                \
    ptrdiff_t j = 0, r;                                                          \
    for (; j + 2 * W <= n; j += 2 * W) {                                         \
        const T *panel = Bp + j * K;                                             \
        for (r = 0; r + 8 <= m; r += 8)                                          \
            tile_##S##_8x2(Y + r * ldy + j, ldy, A + r * lda, lda, as, panel, 2 * W, K); \
        for (; r + 4 <= m; r += 4)                                               \
            tile_##S##_4x2(Y + r * ldy + j, ldy, A + r * lda, lda, as, panel, 2 * W, K); \
        for (; r < m; r++)                                                       \
            tile_##S##_1x2(Y + r * ldy + j, ldy, A + r * lda, lda, as, panel, 2 * W, K); \
    }                                                                            \
    if (j < n)                                                                   \
        gemm_acc_##S(Y + j, ldy, A, lda, as, B + j, ldb, m, K, n - j);           \
}                                                                                \
                                                                                 \
/* Ap = the (m, K) matrix whose element (r, k) is A[r + k * as] (a weight gradient's \
 * A, read down the columns of a (K, as) array), in panels of 8 rows: (r, k) at    \
 * Ap[(r - r % 8) * K + 8k + r % 8], for the rows below m - m % 8. The tiles then   \
 * read their 8 values of each k as one sequential stream, where A puts them a row  \
 * of the (K, as) array (a page, for 1024 float gates) apart. */                   \
static inline void pack_rows_##S(T *CHARRNN_RESTRICT Ap, const T *CHARRNN_RESTRICT A, \
                                 ptrdiff_t as, ptrdiff_t m, ptrdiff_t K)         \
{                                                                                \
    /* 32 values of k at a time: their 32 rows of A stay in cache while r runs     \
       along them, and each panel gets 32 * 8 contiguous values (a row at a time,  \
       or a panel at a time, would touch a new page at every copy) */            \
    for (ptrdiff_t k0 = 0; k0 < K; k0 += 32) {                                   \
        const ptrdiff_t k1 = k0 + 32 < K ? k0 + 32 : K;                          \
        for (ptrdiff_t r = 0; r + 8 <= m; r += 8)                                \
            for (ptrdiff_t k = k0; k < k1; k++)                                  \
                memcpy(Ap + r * K + 8 * k, A + r + k * as, 8 * sizeof(T));       \
    }                                                                            \
}                                                                                \
                                                                                 \
/* gemm_acc for lda = 1 with A's row panels from pack_rows (A still gives the last  \
 * m % 8 rows): the same tiles and sums, so the same bits */                       \
static inline void gemm_acc_rows_packed_##S(T *Y, ptrdiff_t ldy, const T *A,     \
                                            ptrdiff_t as, const T *Ap, const T *B, \
                                            ptrdiff_t ldb, ptrdiff_t m, ptrdiff_t K, \
                                            ptrdiff_t n)                         \
{                                                                                \
    ptrdiff_t r = 0;                                                             \
    for (; r + 8 <= m; r += 8)                                                   \
        gemm_rows_##S##_8(Y + r * ldy, ldy, Ap + r * K, 1, 8, B, ldb, K, n);     \
    if (r < m)                                                                   \
        gemm_acc_##S(Y + r * ldy, ldy, A + r, 1, as, B, ldb, m - r, K, n);       \
}
CHARRNN_DEFINE_GEMM(double, d, (CHARRNN_VBYTES / 8))
CHARRNN_DEFINE_GEMM(float, f, (CHARRNN_VBYTES / 4))

/* Matrix-vector product in the "dot" form:  y[i] += sum_j A[i, j] * x[j],  A (m, n)
 * row-major. Reads A row after row, each row once from start to end: a single
 * sequential stream, which the L2 prefetchers serve at nearly the cache's read rate
 * (about 240 GB/s on Zen 5 for 512 KB; eight rows read side by side, eight streams,
 * got half that). Each row is summed in four chains of vectors, whatever m, so that
 * any split of the rows gives the same bits. The row form (rowacc on A.T) wins while
 * A fits in L1. */
#define CHARRNN_DEFINE_GEMV(T, S, VT, W)                                         \
static CHARRNN_NOINLINE void gemv_##S(T *CHARRNN_RESTRICT y, const T *CHARRNN_RESTRICT A,  \
                            const T *CHARRNN_RESTRICT x, ptrdiff_t m, ptrdiff_t n) \
{                                                                                \
    for (ptrdiff_t i = 0; i < m; i++) {                                          \
        const T *a = A + i * n;                                                  \
        VT c0 = vzero_##S(), c1 = vzero_##S(), c2 = vzero_##S(), c3 = vzero_##S(); \
        ptrdiff_t j = 0;                                                         \
        for (; j + 4 * W <= n; j += 4 * W) {                                     \
            c0 = vmadd_vv_##S(c0, vload_##S(a + j), vload_##S(x + j));           \
            c1 = vmadd_vv_##S(c1, vload_##S(a + j + W), vload_##S(x + j + W));   \
            c2 = vmadd_vv_##S(c2, vload_##S(a + j + 2 * W), vload_##S(x + j + 2 * W)); \
            c3 = vmadd_vv_##S(c3, vload_##S(a + j + 3 * W), vload_##S(x + j + 3 * W)); \
        }                                                                        \
        for (; j + W <= n; j += W)                                               \
            c0 = vmadd_vv_##S(c0, vload_##S(a + j), vload_##S(x + j));           \
        T s = vsum_##S(vadd_##S(vadd_##S(c0, c1), vadd_##S(c2, c3)));            \
        for (; j < n; j++) s += a[j] * x[j];                                     \
        y[i] += s;                                                               \
    }                                                                            \
}
CHARRNN_DEFINE_GEMV(double, d, charrnn_vd, (CHARRNN_VBYTES / 8))
CHARRNN_DEFINE_GEMV(float, f, charrnn_vf, (CHARRNN_VBYTES / 4))

/* B_T[j, i] = B[i, j];  B is (m, n) row-major */
#define CHARRNN_DEFINE_TRANSPOSE(T, S)                                           \
static inline void transpose_##S(T *CHARRNN_RESTRICT Bt, const T *CHARRNN_RESTRICT B, \
                                 ptrdiff_t m, ptrdiff_t n)                       \
{                                                                                \
    for (ptrdiff_t i0 = 0; i0 < m; i0 += 8)                                      \
        for (ptrdiff_t j = 0; j < n; j++)                                        \
            for (ptrdiff_t i = i0; i < m && i < i0 + 8; i++)                     \
                Bt[j * m + i] = B[i * n + j];                                    \
}
CHARRNN_DEFINE_TRANSPOSE(double, d)
CHARRNN_DEFINE_TRANSPOSE(float, f)

#endif
