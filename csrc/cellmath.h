/* The element-wise parts of the LSTM and GRU backward steps (cell_lstm.pxi,
 * cell_gru.pxi), one stream at a time, on restrict pointers: Cython cannot say that
 * the gate blocks of one row and the state rows do not overlap, and without that the
 * compiler kept these loops scalar (about 4% of an LSTM minibatch iteration). The
 * expressions are those the .pxi comments give, in the same order.
 */
#ifndef CHARRNN_CELLMATH_H
#define CHARRNN_CELLMATH_H

#include <stddef.h>

#include "portable.h"   /* CHARRNN_RESTRICT, CHARRNN_PRAGMA */

#define CHARRNN_DEFINE_CELLMATH(T, S)                                            \
/* LSTM: ai, af, ag, ao (the activated gates i, f, g, o) become the gradients of \
 * their pre-activations; dcn (dloss/dc[t+1] from the step after) becomes         \
 * dloss/dc[t]. dh: dloss/dh[t+1] from above, dhn: from the step after; tc =      \
 * tanh(c[t+1]), cprev = c[t]. */                                                 \
static inline void lstm_gates_backward_##S(                                      \
        T *CHARRNN_RESTRICT ai, T *CHARRNN_RESTRICT af, T *CHARRNN_RESTRICT ag,  \
        T *CHARRNN_RESTRICT ao, T *CHARRNN_RESTRICT dcn,                         \
        const T *CHARRNN_RESTRICT cprev, const T *CHARRNN_RESTRICT tc,           \
        const T *CHARRNN_RESTRICT dh, const T *CHARRNN_RESTRICT dhn, ptrdiff_t H) \
{                                                                                \
    const T one = 1;                                                             \
    CHARRNN_PRAGMA(omp simd)                                                     \
    for (ptrdiff_t j = 0; j < H; j++) {                                          \
        const T i = ai[j], f = af[j], g = ag[j], o = ao[j];                      \
        const T dhj = dh[j] + dhn[j];                                            \
        const T dc = dcn[j] + dhj * o * (one - tc[j] * tc[j]);                   \
        ai[j] = dc * g * (i * (one - i));                                        \
        af[j] = dc * cprev[j] * (f * (one - f));                                 \
        ag[j] = dc * i * (one - g * g);                                          \
        ao[j] = dhj * tc[j] * (o * (one - o));                                   \
        dcn[j] = dc * f;                                                         \
    }                                                                            \
}                                                                                \
                                                                                 \
/* GRU: a = (r, z, n) activated becomes dgi, q = (gh_r, gh_z, gh_n) becomes dgh,   \
 * the gradients of the two products (equal but for dgh_n = dgi_n * r); dhn       \
 * (dloss/dh[t+1] from the step after) becomes the part of dloss/dh[t] that does   \
 * not pass through W_hh. hp = h[t], dh: dloss/dh[t+1] from above. */             \
static inline void gru_gates_backward_##S(                                       \
        T *CHARRNN_RESTRICT ar, T *CHARRNN_RESTRICT az, T *CHARRNN_RESTRICT an,  \
        T *CHARRNN_RESTRICT qr, T *CHARRNN_RESTRICT qz, T *CHARRNN_RESTRICT qn,  \
        T *CHARRNN_RESTRICT dhn, const T *CHARRNN_RESTRICT hp,                   \
        const T *CHARRNN_RESTRICT dh, ptrdiff_t H)                               \
{                                                                                \
    const T one = 1;                                                             \
    CHARRNN_PRAGMA(omp simd)                                                     \
    for (ptrdiff_t j = 0; j < H; j++) {                                          \
        const T r = ar[j], z = az[j], n = an[j];                                 \
        const T dhj = dh[j] + dhn[j];                                            \
        const T dan = dhj * (one - z) * (one - n * n);      /* through tanh */   \
        const T daz = dhj * (hp[j] - n) * (z * (one - z));                       \
        const T dar = dan * qn[j] * (r * (one - r));        /* r * gh_n */       \
        ar[j] = dar;                                                             \
        az[j] = daz;                                                             \
        an[j] = dan;                                                             \
        qr[j] = dar;                                                             \
        qz[j] = daz;                                                             \
        qn[j] = dan * r;                                                         \
        dhn[j] = dhj * z;                                   /* h[t] feeds h[t+1] */ \
    }                                                                            \
}

CHARRNN_DEFINE_CELLMATH(double, d)
CHARRNN_DEFINE_CELLMATH(float, f)

#endif
