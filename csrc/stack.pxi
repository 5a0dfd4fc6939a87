# Stacked recurrent layers (rnn, lstm, gru) with dropout and a softmax decoder:
# training and inference kernels; included by _kernels.pyx after kernels.pxi.
# The equations, the parameter layout and the dropout rule are those of
# cells_spec.md (PyTorch's torch.nn.RNN / LSTM / GRU and names).
#
# Legend: L = number of layers, H = hidden size, V = vocabulary size, T = sequence
# length, B = minibatch streams, G = streams side by side in one group (one thread),
# GH = gates * H = rows of a layer's stacked weights (gates = 1, 4, 3 for rnn, lstm,
# gru), In_k = V for layer 0 else H, S = state slots (2 for lstm: h and c; else 1).
#
# Parameters, one flat buffer in PyTorch's order (P values):
#   for k < L: weight_ih_l{k} (GH, In_k), weight_hh_l{k} (GH, H), bias_ih_l{k} (GH,),
#              bias_hh_l{k} (GH,);  then decoder.weight (V, H), decoder.bias (V,)
# WT has the same layout with every weight matrix transposed: (In_k, GH), (H, GH),
# (H, V); it is refreshed from the parameters before each use and shared by all
# groups. State (S, L, B, H): h_n, then c_n for lstm.
#
# One group of G streams over T steps (row t * G + g is stream g at step t):
#   layer 0:  A = W_ih[:, x] + b_ih for all T at once (a row of W_ih.T: no one-hot)
#   layer k:  A = X_{k-1} @ W_ih.T + b_ih for all T at once (rowacc_rows)
#             then the cell runs the recurrence step by step (cell_*.pxi)
#             X_k = h_k * keep_k / (1 - p) with dropout, else h_k itself
#   decoder:  ps = softmax(X_{L-1} @ W_dec.T + b_dec), loss = sum -log ps[target]
# Backward mirrors it: the decoder, then each layer from the top, the weight
# gradients off the recurrence again computed for all T * G rows at once.

cdef enum:
    CELL_RNN = 0      # codes shared with charrnn/_stack.py (CELLS)
    CELL_LSTM = 1
    CELL_GRU = 2


cdef struct Dims:
    int cell
    Py_ssize_t L, H, V, T
    Py_ssize_t G          # streams per group the scratch is laid out for
    Py_ssize_t GH         # gates * H
    Py_ssize_t P          # number of parameters
    # offsets into one group's scratch: per layer (stride `layer`) ...
    Py_ssize_t layer, hs, cs, A, Ahh, X
    # ... then, after the L layers:
    Py_ssize_t ps, dH, dhnext, dcnext, dWT, Ap, size
    Py_ssize_t wt_size    # WT: P, then for G > 1 each layer's panels (packed_offset)


cdef Dims make_dims(int cell, Py_ssize_t L, Py_ssize_t H, Py_ssize_t V, Py_ssize_t T,
                    Py_ssize_t G) noexcept nogil:
    cdef Dims d
    cdef Py_ssize_t gates = 4 if cell == CELL_LSTM else (3 if cell == CELL_GRU else 1)
    d.cell = cell
    d.L, d.H, d.V, d.T, d.G = L, H, V, T, G
    d.GH = gates * H
    d.P = decoder_offset(&d) + V * H + V
    d.hs = 0                                            # (T+1, G, H)
    d.cs = d.hs + (T + 1) * G * H                       # lstm: (2T+1, G, H)
    d.A = d.cs + ((2 * T + 1) * G * H if cell == CELL_LSTM else 0)   # (T, G, GH)
    d.Ahh = d.A + T * G * d.GH                          # gru: (T, G, GH)
    d.X = d.Ahh + (T * G * d.GH if cell == CELL_GRU else 0)           # (T, G, H)
    d.layer = d.X + T * G * H
    d.ps = L * d.layer                                  # (T, G, V)
    d.dH = d.ps + T * G * V                             # (T, G, H)
    d.dhnext = d.dH + T * G * H                         # (G, H)
    d.dcnext = d.dhnext + G * H                         # (G, H)
    d.dWT = d.dcnext + G * H                            # (V, GH): d weight_ih_l0 .T
    d.Ap = d.dWT + V * d.GH                             # (GH, T, G): weight_grad's
    d.size = d.Ap + d.GH * T * G
    d.wt_size = d.P + (L * 4 * d.GH * H if G > 1 else 0)
    return d


# Where each parameter starts in the flat buffer (and in WT).
cdef inline Py_ssize_t w_ih(const Dims *d, Py_ssize_t k) noexcept nogil:
    if k == 0:
        return 0
    return d.GH * (d.V + d.H + 2) + (k - 1) * d.GH * (2 * d.H + 2)

cdef inline Py_ssize_t in_size(const Dims *d, Py_ssize_t k) noexcept nogil:
    return d.V if k == 0 else d.H

cdef inline Py_ssize_t w_hh(const Dims *d, Py_ssize_t k) noexcept nogil:
    return w_ih(d, k) + d.GH * in_size(d, k)

cdef inline Py_ssize_t b_ih(const Dims *d, Py_ssize_t k) noexcept nogil:
    return w_hh(d, k) + d.GH * d.H

cdef inline Py_ssize_t b_hh(const Dims *d, Py_ssize_t k) noexcept nogil:
    return b_ih(d, k) + d.GH

cdef inline Py_ssize_t decoder_offset(const Dims *d) noexcept nogil:
    return w_ih(d, d.L)


# The panels (smallblas.h's pack_panels) of the products of several streams, after
# the P values of WT: per layer, those of weight_hh.T (H, GH), weight_hh (GH, H),
# and for k > 0 weight_ih.T (H, GH), weight_ih (GH, H). Refreshed with WT.
cdef enum:
    PACK_HH_T = 0
    PACK_HH = 1
    PACK_IH_T = 2
    PACK_IH = 3

cdef inline Py_ssize_t packed_offset(const Dims *d, Py_ssize_t k, int which) noexcept nogil:
    return d.P + (4 * k + which) * d.GH * d.H

cdef inline const floating *packed(const Dims *d, const floating *WT, Py_ssize_t k,
                                   int which) noexcept nogil:
    # the panels of one matrix, or NULL where there are none (one stream per group)
    return WT + packed_offset(d, k, which) if d.G > 1 else NULL


# ---------------------------------------------------------------------------
# Helpers of the cells: the products, the gate nonlinearities
# ---------------------------------------------------------------------------

cdef extern from "smallblas.h" nogil:
    void gemm_acc_d(double *Y, Py_ssize_t ldy, const double *A, Py_ssize_t lda,
                    Py_ssize_t a_stride, const double *B, Py_ssize_t ldb,
                    Py_ssize_t m, Py_ssize_t K, Py_ssize_t n)
    void gemm_acc_f(float *Y, Py_ssize_t ldy, const float *A, Py_ssize_t lda,
                    Py_ssize_t a_stride, const float *B, Py_ssize_t ldb,
                    Py_ssize_t m, Py_ssize_t K, Py_ssize_t n)
    void pack_panels_d(double *Bp, const double *B, Py_ssize_t ldb, Py_ssize_t K,
                       Py_ssize_t n)
    void pack_panels_f(float *Bp, const float *B, Py_ssize_t ldb, Py_ssize_t K,
                       Py_ssize_t n)
    void gemm_acc_packed_d(double *Y, Py_ssize_t ldy, const double *A, Py_ssize_t lda,
                           Py_ssize_t a_stride, const double *B, Py_ssize_t ldb,
                           const double *Bp, Py_ssize_t m, Py_ssize_t K, Py_ssize_t n)
    void gemm_acc_packed_f(float *Y, Py_ssize_t ldy, const float *A, Py_ssize_t lda,
                           Py_ssize_t a_stride, const float *B, Py_ssize_t ldb,
                           const float *Bp, Py_ssize_t m, Py_ssize_t K, Py_ssize_t n)
    void pack_rows_d(double *Ap, const double *A, Py_ssize_t a_stride, Py_ssize_t m,
                     Py_ssize_t K)
    void pack_rows_f(float *Ap, const float *A, Py_ssize_t a_stride, Py_ssize_t m,
                     Py_ssize_t K)
    void gemm_acc_rows_packed_d(double *Y, Py_ssize_t ldy, const double *A,
                                Py_ssize_t a_stride, const double *Ap, const double *B,
                                Py_ssize_t ldb, Py_ssize_t m, Py_ssize_t K, Py_ssize_t n)
    void gemm_acc_rows_packed_f(float *Y, Py_ssize_t ldy, const float *A,
                                Py_ssize_t a_stride, const float *Ap, const float *B,
                                Py_ssize_t ldb, Py_ssize_t m, Py_ssize_t K, Py_ssize_t n)


cdef inline void gemm_acc(floating *Y, Py_ssize_t ldy, const floating *A, Py_ssize_t lda,
                          Py_ssize_t a_stride, const floating *B, Py_ssize_t ldb,
                          Py_ssize_t m, Py_ssize_t K, Py_ssize_t n) noexcept nogil:
    # Y[r, :] += sum_k A[r * lda + k * a_stride] * B[k, :] for r < m: rowacc_rows'
    # sum in register tiles of 8 rows (smallblas.h), for the many-row products here
    if floating is double:
        gemm_acc_d(Y, ldy, A, lda, a_stride, B, ldb, m, K, n)
    else:
        gemm_acc_f(Y, ldy, A, lda, a_stride, B, ldb, m, K, n)


cdef inline void gemm_acc_p(floating *Y, Py_ssize_t ldy, const floating *A, Py_ssize_t lda,
                            Py_ssize_t a_stride, const floating *B, Py_ssize_t ldb,
                            const floating *Bp, Py_ssize_t m, Py_ssize_t K,
                            Py_ssize_t n) noexcept nogil:
    # gemm_acc with B's panels Bp (pack_panels), or B alone where Bp is NULL: same bits
    if Bp == NULL:
        gemm_acc(Y, ldy, A, lda, a_stride, B, ldb, m, K, n)
    elif floating is double:
        gemm_acc_packed_d(Y, ldy, A, lda, a_stride, B, ldb, Bp, m, K, n)
    else:
        gemm_acc_packed_f(Y, ldy, A, lda, a_stride, B, ldb, Bp, m, K, n)


cdef inline void weight_grad(floating *Y, const floating *A, Py_ssize_t a_stride,
                             const floating *B, floating *Ap, Py_ssize_t m, Py_ssize_t K,
                             Py_ssize_t n) noexcept nogil:
    # Y (m, n) += A.T @ B for A (K, a_stride) (its first m columns) and B (K, n): a
    # weight's gradient summed over the K rows of a group. A's columns are first
    # packed into Ap (m * K scratch) when there are many rows: the same bits.
    if K < 64:
        gemm_acc(Y, n, A, 1, a_stride, B, n, m, K, n)
    elif floating is double:
        pack_rows_d(Ap, A, a_stride, m, K)
        gemm_acc_rows_packed_d(Y, n, A, a_stride, Ap, B, n, m, K, n)
    else:
        pack_rows_f(Ap, A, a_stride, m, K)
        gemm_acc_rows_packed_f(Y, n, A, a_stride, Ap, B, n, m, K, n)


cdef inline void pack_panels(floating *Bp, const floating *B, Py_ssize_t ldb, Py_ssize_t K,
                             Py_ssize_t n) noexcept nogil:
    if floating is double:
        pack_panels_d(Bp, B, ldb, K, n)
    else:
        pack_panels_f(Bp, B, ldb, K, n)


cdef inline void hh_forward(floating *a, const floating *h, const floating *Whh,
                            const floating *WhhT, const floating *Wp, Py_ssize_t G,
                            Py_ssize_t GH, Py_ssize_t H) noexcept nogil:
    # a (G, GH) += h (G, H) @ Whh.T: each pass over the weights serves the G rows.
    # WhhT is read only where hh_transposed says.
    if G == 1:
        matvec(a, Whh, WhhT, h, GH, H)
    else:
        gemm_acc_p(a, GH, h, H, 1, WhhT, GH, Wp, G, H, GH)


cdef inline void hh_backward(floating *dh, const floating *da, const floating *Whh,
                             const floating *WhhT, const floating *Wp, Py_ssize_t G,
                             Py_ssize_t GH, Py_ssize_t H) noexcept nogil:
    # dh (G, H) += da (G, GH) @ Whh: for one stream the row form on W_hh itself at any
    # size, so that a large W_hh needs no transposed copy beside it in the caches
    cdef const floating *Whhp = NULL                   # W_hh's panels follow WhhT's
    if G == 1:
        rowacc(dh, da, 1, Whh, H, GH, H)
    else:
        if Wp != NULL:
            Whhp = Wp + GH * H
        gemm_acc_p(dh, H, da, GH, 1, Whh, H, Whhp, G, GH, H)


cdef inline bint hh_transposed(const Dims *d, size_t itemsize) noexcept nogil:
    # whether the recurrent products read WhhT: the products of several streams, and
    # the row form of matvec for a small W_hh; one stream's large W_hh is read as it is
    return d.G > 1 or not gemv_form(d.GH, d.H, itemsize)


cdef inline void tanh_inplace(floating *x, Py_ssize_t n) noexcept nogil:
    activate(x, n, ACT_TANH)


cdef inline void sigmoid_inplace(floating *x, Py_ssize_t n) noexcept nogil:
    activate(x, n, ACT_SIGMOID)


cdef extern from "cellmath.h" nogil:
    void lstm_gates_backward_d(double *ai, double *af, double *ag, double *ao, double *dcn,
                               const double *cprev, const double *tc, const double *dh,
                               const double *dhn, Py_ssize_t H)
    void lstm_gates_backward_f(float *ai, float *af, float *ag, float *ao, float *dcn,
                               const float *cprev, const float *tc, const float *dh,
                               const float *dhn, Py_ssize_t H)
    void gru_gates_backward_d(double *ar, double *az, double *an, double *qr, double *qz,
                              double *qn, double *dhn, const double *hp, const double *dh,
                              Py_ssize_t H)
    void gru_gates_backward_f(float *ar, float *az, float *an, float *qr, float *qz,
                              float *qn, float *dhn, const float *hp, const float *dh,
                              Py_ssize_t H)


cdef inline void lstm_gates_backward(floating *ai, floating *af, floating *ag, floating *ao,
                                     floating *dcn, const floating *cprev,
                                     const floating *tc, const floating *dh,
                                     const floating *dhn, Py_ssize_t H) noexcept nogil:
    if floating is double:
        lstm_gates_backward_d(ai, af, ag, ao, dcn, cprev, tc, dh, dhn, H)
    else:
        lstm_gates_backward_f(ai, af, ag, ao, dcn, cprev, tc, dh, dhn, H)


cdef inline void gru_gates_backward(floating *ar, floating *az, floating *an, floating *qr,
                                    floating *qz, floating *qn, floating *dhn,
                                    const floating *hp, const floating *dh,
                                    Py_ssize_t H) noexcept nogil:
    if floating is double:
        gru_gates_backward_d(ar, az, an, qr, qz, qn, dhn, hp, dh, H)
    else:
        gru_gates_backward_f(ar, az, an, qr, qz, qn, dhn, hp, dh, H)


include "cell_rnn.pxi"
include "cell_lstm.pxi"
include "cell_gru.pxi"


# The one place that knows every cell: a new cell family adds a line to each.
cdef inline void cell_forward(const Dims *d, floating *hs, floating *cs, floating *A,
                              floating *Ahh, const floating *Whh, const floating *WhhT,
                              const floating *Wp, const floating *bhh,
                              Py_ssize_t G) noexcept nogil:
    if d.cell == CELL_LSTM:
        lstm_forward(hs, cs, A, Ahh, Whh, WhhT, Wp, bhh, d.T, G, d.H)
    elif d.cell == CELL_GRU:
        gru_forward(hs, cs, A, Ahh, Whh, WhhT, Wp, bhh, d.T, G, d.H)
    else:
        rnn_forward(hs, cs, A, Ahh, Whh, WhhT, Wp, bhh, d.T, G, d.H)


cdef inline floating *cell_backward(const Dims *d, floating *A, floating *Ahh,
                                    floating *dhnext, floating *dcnext, const floating *dH,
                                    const floating *hs, const floating *cs,
                                    const floating *Whh, const floating *WhhT,
                                    const floating *Wp, Py_ssize_t G) noexcept nogil:
    # A becomes dloss/d(W_ih x + b_ih); returns where dloss/d(W_hh h + b_hh) is.
    if d.cell == CELL_LSTM:
        return lstm_backward(A, Ahh, dhnext, dcnext, dH, hs, cs, Whh, WhhT, Wp, d.T, G, d.H)
    elif d.cell == CELL_GRU:
        return gru_backward(A, Ahh, dhnext, dcnext, dH, hs, cs, Whh, WhhT, Wp, d.T, G, d.H)
    return rnn_backward(A, Ahh, dhnext, dcnext, dH, hs, cs, Whh, WhhT, Wp, d.T, G, d.H)


# ---------------------------------------------------------------------------
# Dropout (between layers and before the decoder, never on the recurrence)
# ---------------------------------------------------------------------------

cdef void dropout_apply(floating *y, const floating *x, const uint8_t *keep,
                        Py_ssize_t T, Py_ssize_t G, Py_ssize_t B, Py_ssize_t b0,
                        Py_ssize_t H, floating scale) noexcept nogil:
    # y = x * keep * scale for rows (t, g); x, y (T, G, H); keep (T, B, H) of one
    # layer, the group's streams b0 .. b0+G-1. y may be x (the backward pass).
    cdef Py_ssize_t t, g, i
    cdef const uint8_t *m
    for t in range(T):
        for g in range(G):
            m = keep + (t * B + b0 + g) * H
            for i in range(H):
                y[(t * G + g) * H + i] = x[(t * G + g) * H + i] * (scale * <floating>m[i])


cdef inline floating *layer_output(const Dims *d, floating *s, Py_ssize_t k, Py_ssize_t G,
                                   bint dropout) noexcept nogil:
    # What layer k hands up (T, G, H): its dropped-out copy X, or its hidden states
    cdef floating *base = s + k * d.layer
    return base + d.X if dropout else base + d.hs + G * d.H


# ---------------------------------------------------------------------------
# stack_forward / stack_backward: one group of G streams over T steps
# ---------------------------------------------------------------------------

cdef double stack_forward(floating *s, double *logp, const Dims *d, Py_ssize_t G,
                          const int32_t *inputs, const int32_t *targets,
                          const floating *state, Py_ssize_t B, Py_ssize_t b0,
                          const uint8_t *keep, floating scale,
                          const floating *flat, const floating *WT) noexcept nogil:
    # s: the group's scratch (Dims offsets); inputs, targets (T, G): targets NULL runs
    # the layers only (no decoder, no loss); an input < 0 is an all-zero vector.
    # state (S, L, B, H): the group's streams are b0 .. b0+G-1.
    # keep (L, T, B, H) or NULL (no dropout); logp (T, G) or NULL: log ps[target].
    # Returns the summed loss of the T * G predictions.
    cdef Py_ssize_t k, r, j, x, T = d.T, H = d.H, V = d.V, GH = d.GH, TG = d.T * G
    cdef floating *base
    cdef floating *A
    cdef floating *p
    cdef floating *below = NULL
    cdef const floating *row
    cdef const floating *bias
    cdef double loss = 0, lse, y_target
    for k in range(d.L):
        base = s + k * d.layer
        memcpy(base + d.hs, state + (k * B + b0) * H, G * H * sizeof(floating))
        if d.cell == CELL_LSTM:
            memcpy(base + d.cs, state + ((d.L + k) * B + b0) * H, G * H * sizeof(floating))
        A = base + d.A
        bias = flat + b_ih(d, k)
        for r in range(TG):                             # A = b_ih ...
            memcpy(A + r * GH, bias, GH * sizeof(floating))
        if k == 0 and d.G > 1:
            for r in range(TG):                         # ... + W_ih[:, x]: a row of W_ih.T
                x = inputs[r]
                if x >= 0:
                    row = WT + x * GH
                    for j in range(GH):
                        A[r * GH + j] += row[j]
        elif k == 0:                                    # one stream: the column itself
            for r in range(TG):
                x = inputs[r]
                if x >= 0:
                    row = flat + x
                    for j in range(GH):
                        A[r * GH + j] += row[j * V]
        else:                                           # ... + X_{k-1} @ W_ih.T
            gemm_acc_p(A, GH, below, H, 1, WT + w_ih(d, k), GH, packed(d, WT, k, PACK_IH_T),
                       TG, H, GH)
        cell_forward(d, base + d.hs, base + d.cs, A, base + d.Ahh, flat + w_hh(d, k),
                     WT + w_hh(d, k), packed(d, WT, k, PACK_HH_T), flat + b_hh(d, k), G)
        if keep != NULL:
            dropout_apply(base + d.X, base + d.hs + G * H, keep + k * T * B * H,
                          T, G, B, b0, H, scale)
        below = layer_output(d, s, k, G, keep != NULL)
    if targets == NULL:
        return 0
    p = s + d.ps
    bias = flat + decoder_offset(d) + V * H
    for r in range(TG):
        memcpy(p + r * V, bias, V * sizeof(floating))
    gemm_acc(p, V, below, H, 1, WT + decoder_offset(d), V, TG, H, V)   # ys
    for r in range(TG):
        y_target = p[r * V + targets[r]]
        lse = softmax_forward(p + r * V, V)
        loss += lse - y_target                          # -log ps[t][targets[t]]
        if logp != NULL:
            logp[r] = y_target - lse
    return loss


cdef void stack_backward(floating *grad, floating *s, const Dims *d, Py_ssize_t G,
                         const int32_t *inputs, const int32_t *targets,
                         Py_ssize_t B, Py_ssize_t b0, const uint8_t *keep, floating scale,
                         const floating *flat, const floating *WT) noexcept nogil:
    # Adds the gradient of stack_forward's loss into grad (P,), flat layout. The
    # scratch of the forward pass is consumed (ps becomes dy, the gates dA).
    cdef Py_ssize_t k, r, j, j0, v, x, T = d.T, H = d.H, V = d.V, GH = d.GH, TG = d.T * G
    cdef floating *base
    cdef floating *dy = s + d.ps
    cdef floating *dH = s + d.dH
    cdef floating *dA
    cdef floating *dAhh
    cdef floating *g
    cdef floating *gT
    cdef const floating *dec = flat + decoder_offset(d)
    cdef bint dropout = keep != NULL
    g = grad + decoder_offset(d) + V * H
    for r in range(TG):
        dy[r * V + targets[r]] -= 1                     # dy = ps - onehot(target)
        for v in range(V):
            g[v] += dy[r * V + v]                       # d decoder.bias += dy
    gemm_acc(grad + decoder_offset(d), H, dy, 1, V,  # d decoder.weight += dy.T @ X
                layer_output(d, s, d.L - 1, G, dropout), H, V, TG, H)
    memset(dH, 0, TG * H * sizeof(floating))
    gemm_acc(dH, H, dy, V, 1, dec, H, TG, V, H)      # dX = dy @ decoder.weight
    for k in range(d.L - 1, -1, -1):
        base = s + k * d.layer
        if dropout:                                     # dh = dX * keep * scale
            dropout_apply(dH, dH, keep + k * T * B * H, T, G, B, b0, H, scale)
        dA = base + d.A
        dAhh = cell_backward(d, dA, base + d.Ahh, s + d.dhnext, s + d.dcnext, dH,
                             base + d.hs, base + d.cs, flat + w_hh(d, k), WT + w_hh(d, k),
                             packed(d, WT, k, PACK_HH_T), G)
        g = grad + b_ih(d, k)
        for r in range(TG):
            for j in range(GH):
                g[j] += dA[r * GH + j]                  # d bias_ih += dA
        g = grad + b_hh(d, k)
        if dAhh == dA:                                  # rnn, lstm: the same sums, from
            memcpy(g, grad + b_ih(d, k), GH * sizeof(floating))   # zero: the same bits
        else:
            for r in range(TG):
                for j in range(GH):
                    g[j] += dAhh[r * GH + j]            # d bias_hh += dAhh
        weight_grad(grad + w_hh(d, k), dAhh, GH,      # d weight_hh += dAhh.T @ h[t-1]
                    base + d.hs, s + d.Ap, GH, TG, H)
        if k == 0:                                      # d weight_ih[:, x] += dA:
            gT = s + d.dWT                              # summed as rows of its transpose
            memset(gT, 0, V * GH * sizeof(floating))    # in order of r, as a scatter
            for r in range(TG):                         # into the columns would, but
                x = inputs[r]                           # each a contiguous row
                if x >= 0:
                    for j in range(GH):
                        gT[x * GH + j] += dA[r * GH + j]
            g = grad + w_ih(d, 0)                       # (zero until here: 0 + sum)
            for j0 in range(0, GH, 16):                 # blocks of 16 rows: each read
                for v in range(V):                      # of gT takes a cache line
                    for j in range(j0, min(j0 + 16, GH)):
                        g[j * V + v] += gT[v * GH + j]
        else:
            weight_grad(grad + w_ih(d, k), dA, GH,      # d weight_ih += dA.T @ X_{k-1}
                        layer_output(d, s, k - 1, G, dropout), s + d.Ap, GH, TG, H)
            memset(dH, 0, TG * H * sizeof(floating))
            gemm_acc_p(dH, H, dA, GH, 1, flat + w_ih(d, k), H,     # dX = dA @ W_ih
                       packed(d, WT, k, PACK_IH), TG, GH, H)


# ---------------------------------------------------------------------------
# One iteration over B streams: groups on threads, gradients summed in order
# ---------------------------------------------------------------------------

cdef void transpose_weights(floating *WT, const floating *flat, const Dims *d,
                            int num_threads) noexcept nogil:
    # WT = the weight matrices of flat that the products read transposed, in place of
    # the original: all but weight_ih_l0 (one stream gathers its columns) and
    # weight_hh (see hh_transposed) of one stream; then, for several streams per group,
    # the panels of the products (packed_offset). Copies only: any thread may do any.
    cdef Py_ssize_t job, k
    cdef int which
    for job in prange(2 * d.L + 1, num_threads=num_threads, schedule="dynamic"):
        k = job // 2
        if job == 2 * d.L:
            transpose(WT + decoder_offset(d), flat + decoder_offset(d), d.V, d.H)
        elif job % 2 == 0:
            if k > 0 or d.G > 1:
                transpose(WT + w_ih(d, k), flat + w_ih(d, k), d.GH, in_size(d, k))
        elif hh_transposed(d, sizeof(floating)):
            transpose(WT + w_hh(d, k), flat + w_hh(d, k), d.GH, d.H)
    if d.G == 1:
        return
    for job in prange(4 * d.L, num_threads=num_threads, schedule="dynamic"):
        k = job // 4
        which = job % 4
        if which == PACK_HH_T:
            pack_panels(WT + packed_offset(d, k, which), WT + w_hh(d, k), d.GH, d.H, d.GH)
        elif which == PACK_HH:
            pack_panels(WT + packed_offset(d, k, which), flat + w_hh(d, k), d.H, d.GH, d.H)
        elif k > 0 and which == PACK_IH_T:
            pack_panels(WT + packed_offset(d, k, which), WT + w_ih(d, k), d.GH, d.H, d.GH)
        elif k > 0:
            pack_panels(WT + packed_offset(d, k, which), flat + w_ih(d, k), d.H, d.GH, d.H)


cdef inline Py_ssize_t group_size(Py_ssize_t grp, Py_ssize_t G, Py_ssize_t B) noexcept nogil:
    # streams in group grp: G, or what is left for the last one
    return G if (grp + 1) * G <= B else B - grp * G


cdef double group_loss_grad(floating *grad, floating *s, const Dims *d, Py_ssize_t G,
                            const int32_t *window, const floating *state, Py_ssize_t B,
                            Py_ssize_t b0, const uint8_t *keep, floating scale,
                            const floating *flat, const floating *WT) noexcept nogil:
    # Loss and gradient (into grad (P,), zeroed here) of streams b0 .. b0+G-1;
    # window (2, T, d.G): their inputs, then their targets.
    cdef const int32_t *targets = window + d.T * d.G
    cdef double loss
    memset(grad, 0, d.P * sizeof(floating))
    loss = stack_forward(s, NULL, d, G, window, targets, state, B, b0, keep, scale, flat, WT)
    if isfinite(loss):
        stack_backward(grad, s, d, G, window, targets, B, b0, keep, scale, flat, WT)
    return loss


cdef double stack_loss_grad(floating *grads, floating *scratch, const int32_t *window,
                            double *group_loss, const Dims *d, Py_ssize_t B,
                            const floating *state, const uint8_t *keep, floating scale,
                            const floating *flat, floating *WT,
                            int num_threads) noexcept nogil:
    # Loss (the mean over the B streams of their summed losses) and gradient (the sum
    # over streams, into grads[0]) of one iteration. grads (NG, P), scratch
    # (NG, d.size), window (NG, 2, T, d.G): one row per group of d.G streams. The
    # groups run on num_threads threads; their gradients are summed in group order,
    # so that the result does not depend on the number of threads.
    cdef Py_ssize_t grp, G = d.G, NG = (B + d.G - 1) // d.G, TG2 = 2 * d.T * d.G
    cdef double loss
    transpose_weights(WT, flat, d, num_threads)
    if NG == 1:
        group_loss[0] = group_loss_grad(grads, scratch, d, B, window, state, B, 0, keep,
                                        scale, flat, WT)
    else:
        # round robin: the last, smaller group does not unbalance the threads
        for grp in prange(NG, num_threads=num_threads, schedule="static", chunksize=1):
            group_loss[grp] = group_loss_grad(
                grads + grp * d.P, scratch + grp * d.size, d, group_size(grp, G, B),
                window + grp * TG2, state, B, grp * G, keep, scale, flat, WT)
        sum_groups(grads, NG, d.P, num_threads)
    loss = group_loss[0]
    for grp in range(1, NG):
        loss += group_loss[grp]
    return loss / B


cdef void save_state(floating *state, const floating *scratch, const Dims *d,
                     Py_ssize_t B) noexcept nogil:
    # state (S, L, B, H) = the hidden (and cell) states after step T of every stream
    cdef Py_ssize_t grp, k, G, b0, NG = (B + d.G - 1) // d.G, H = d.H
    cdef const floating *base
    for grp in range(NG):
        G = group_size(grp, d.G, B)
        b0 = grp * d.G
        for k in range(d.L):
            base = scratch + grp * d.size + k * d.layer
            memcpy(state + (k * B + b0) * H, base + d.hs + d.T * G * H,
                   G * H * sizeof(floating))
            if d.cell == CELL_LSTM:
                memcpy(state + ((d.L + k) * B + b0) * H, base + d.cs + d.T * G * H,
                       G * H * sizeof(floating))


cdef void fill_window(int32_t *window, const index_t *data, Py_ssize_t Ls, Py_ssize_t p,
                      const Dims *d, Py_ssize_t B) noexcept nogil:
    # window (NG, 2, T, d.G): inputs stream[p : p+T], targets stream[p+1 : p+T+1] of
    # each stream b = data[b*Ls : (b+1)*Ls]
    cdef Py_ssize_t grp, t, g, G, b, NG = (B + d.G - 1) // d.G, TG = d.T * d.G
    cdef int32_t *w
    for grp in range(NG):
        G = group_size(grp, d.G, B)
        w = window + grp * 2 * TG
        for t in range(d.T):
            for g in range(G):
                b = grp * d.G + g
                w[t * G + g] = data[b * Ls + p + t]
                w[TG + t * G + g] = data[b * Ls + p + t + 1]


# ---------------------------------------------------------------------------
# Python-facing drivers (called by charrnn/_stack.py, which checks and allocates)
# ---------------------------------------------------------------------------

def stack_sizes(int cell, Py_ssize_t L, Py_ssize_t H, Py_ssize_t V, Py_ssize_t T,
                Py_ssize_t G):
    """``(P, scratch, WT)``: the number of parameters, the scratch of one group of G and
    the size of the WT scratch."""
    cdef Dims d = make_dims(cell, L, H, V, T, G)
    return d.P, d.size, d.wt_size


def stack_loss_and_grad(const floating[::1] flat,     # (P,)
                        floating[::1] state,          # (S, L, B, H), updated
                        floating[::1] grads,          # (NG, P) scratch; grads[0] = the sum
                        floating[::1] scratch,        # (NG, size) scratch
                        floating[::1] WT,             # (wt_size,) scratch (stack_sizes)
                        const int32_t[::1] window,    # (NG, 2, T, G) inputs, targets
                        double[::1] group_loss,       # (NG,) scratch
                        const uint8_t[::1] keep,      # (L, T, B, H), or empty: no dropout
                        int cell, Py_ssize_t L, Py_ssize_t H, Py_ssize_t V, Py_ssize_t T,
                        Py_ssize_t B, Py_ssize_t G, double dropout, int num_threads):
    """Loss (mean over streams) and gradient (sum over streams, in grads[:P]) of one
    minibatch, no clipping; ``state`` becomes the state after step T."""
    cdef Dims d = make_dims(cell, L, H, V, T, G)
    cdef const uint8_t *kp = &keep[0] if keep.shape[0] > 0 else NULL
    cdef floating scale = <floating>(1.0 / (1.0 - dropout))
    cdef double loss
    with nogil:
        loss = stack_loss_grad(&grads[0], &scratch[0], &window[0], &group_loss[0], &d, B,
                               &state[0], kp, scale, &flat[0], &WT[0], num_threads)
        save_state(&state[0], &scratch[0], &d, B)
    return loss


def stack_train(const index_t[::1] data,            # (N,) the encoded text
                floating[::1] flat,                 # (P,) parameters, updated
                floating[::1] m1, floating[::1] m2, # (P,) optimizer state
                floating[::1] state,                # (S, L, B, H) carried state, updated
                floating[::1] grads,                # (NG, P) scratch
                floating[::1] scratch,              # (NG, size) scratch
                floating[::1] WT,                   # (wt_size,) scratch (stack_sizes)
                int32_t[::1] window,                # (NG, 2, T, G) scratch
                double[::1] group_loss,             # (NG,) scratch
                const uint8_t[::1] keep,            # (n_iter, L, T, B, H) or empty
                double[::1] loss_out, double[::1] smooth_out,   # (n_iter,) history
                int cell, Py_ssize_t L, Py_ssize_t H, Py_ssize_t V, Py_ssize_t T,
                Py_ssize_t B, Py_ssize_t G,
                Py_ssize_t p, int64_t n, double smooth_loss, int wrap,
                bint reset_each_epoch, int optimizer, double lr, int lr_schedule,
                int64_t warmup_iters, int64_t decay_iters, double min_lr, double lr_decay,
                int64_t decay_every, double clip, double clip_norm, double beta1,
                double beta2, double eps, double dropout, int num_threads):
    """Run len(loss_out) training iterations of the stacked model on B streams.

    The same walk, loss record and return value as ``train_loop``:
    ``(iterations_done, p, n, smooth_loss, epochs_wrapped, status)``, status 1 at a
    non-finite loss (stopped before updating), 2 after an update that made a
    parameter non-finite. Iteration k uses the dropout masks keep[k].
    """
    cdef Dims d = make_dims(cell, L, H, V, T, G)
    cdef Py_ssize_t Ls = data.shape[0] // B, S = 2 if cell == CELL_LSTM else 1
    cdef Py_ssize_t n_iter = loss_out.shape[0], k, done = 0, wrapped = 0
    cdef Py_ssize_t per_iter = L * T * B * H
    cdef const uint8_t *kp = &keep[0] if keep.shape[0] > 0 else NULL
    cdef floating scale = <floating>(1.0 / (1.0 - dropout))
    cdef Schedule sched = make_schedule(lr, lr_schedule, warmup_iters, decay_iters, min_lr,
                                        lr_decay, decay_every)
    cdef double loss
    cdef bint reset
    cdef int status = 0
    with nogil:
        for k in range(n_iter):
            if walk(&p, &reset, n, T, Ls, wrap, reset_each_epoch) and n > 0:
                wrapped += 1
            if not window_in_range(&data[0], Ls, p, T, B, V):
                status = 3                              # an index outside the vocabulary
                break
            if reset:
                memset(&state[0], 0, S * L * B * H * sizeof(floating))
            fill_window(&window[0], &data[0], Ls, p, &d, B)
            loss = stack_loss_grad(&grads[0], &scratch[0], &window[0], &group_loss[0], &d,
                                   B, &state[0], kp + k * per_iter if kp != NULL else NULL,
                                   scale, &flat[0], &WT[0], num_threads)
            if not isfinite(loss):
                status = 1
                break
            smooth_loss = smooth_loss * 0.999 + loss * 0.001
            if not update(&flat[0], &grads[0], &m1[0], &m2[0], d.P, optimizer, &sched, n,
                          clip, clip_norm, beta1, beta2, eps, num_threads):
                status = 2
                break
            save_state(&state[0], &scratch[0], &d, B)
            loss_out[k] = loss
            smooth_out[k] = smooth_loss
            p += T
            n += 1
            done += 1
    return done, p, n, smooth_loss, wrapped, status


def stack_run(const int32_t[::1] inputs,            # (N,)
              const int32_t[::1] targets,           # (N,), or empty: no decoder
              double[::1] logp,                     # (N,) log p of each target, or empty
              const floating[::1] flat,             # (P,)
              floating[::1] state,                  # (S, L, 1, H), updated
              floating[::1] scratch,                # (size,) of one stream over Tc steps
              floating[::1] WT,                     # (P,) scratch
              int cell, Py_ssize_t L, Py_ssize_t H, Py_ssize_t V, Py_ssize_t Tc):
    """Feed ``inputs`` through the layers of one stream, Tc steps at a time, no
    dropout. With targets, writes log p(targets[t]) and returns the summed loss."""
    cdef Py_ssize_t N = inputs.shape[0], start, Tn
    cdef bint decode = targets.shape[0] > 0
    cdef Dims d = make_dims(cell, L, H, V, Tc, 1)
    cdef double loss = 0
    with nogil:
        transpose_weights(&WT[0], &flat[0], &d, 1)
        start = 0
        while start < N:
            Tn = min(Tc, N - start)
            d = make_dims(cell, L, H, V, Tn, 1)         # a shorter last chunk fits
            loss += stack_forward(&scratch[0], &logp[start] if decode else NULL, &d, 1,
                                  &inputs[start], &targets[start] if decode else NULL,
                                  &state[0], 1, 0, NULL, 1, &flat[0], &WT[0])
            save_state(&state[0], &scratch[0], &d, 1)
            start += Tn
    return loss


cdef inline Py_ssize_t draw(const floating *p, Py_ssize_t V, double u) noexcept nogil:
    # numpy's RandomState.choice(V, p=p) given its uniform u:
    # searchsorted(cumsum(p) / cumsum(p)[-1], u, 'right')
    cdef Py_ssize_t v
    cdef double c = 0, total = 0
    for v in range(V):
        total += p[v]
    for v in range(V):
        c += p[v]
        if u < c / total:
            return v
    return V - 1


def stack_sample(const floating[::1] flat,          # (P,)
                 floating[::1] state,               # (S, L, 1, H), updated
                 Py_ssize_t seed_ix,                # first input; < 0: all-zero input
                 const double[::1] uniforms,        # (n,) one draw per character
                 int64_t[::1] out,                  # (n,) sampled indices
                 floating[::1] y,                   # (2V,) scratch: logits, top-k/top-p
                 floating[::1] scratch,             # (size,) of one stream over 1 step
                 floating[::1] WT,                  # (P,) scratch
                 int cell, Py_ssize_t L, Py_ssize_t H, Py_ssize_t V,
                 double temperature, bint greedy, Py_ssize_t top_k,
                 double top_p=1.0):
    """Sample len(out) indices one character at a time, as ``sample`` does for the
    seeds' model (greedy: the argmax, no uniform used; top_k > 0: the k largest;
    top_p < 1: then the nucleus of the softmax, keep_top_p)."""
    cdef Dims d = make_dims(cell, L, H, V, 1, 1)
    cdef Py_ssize_t n = out.shape[0], t, v, dec = decoder_offset(&d)
    cdef int32_t x = <int32_t>seed_ix
    with nogil:
        transpose_weights(&WT[0], &flat[0], &d, 1)
        for t in range(n):
            stack_forward(&scratch[0], NULL, &d, 1, &x, NULL, &state[0], 1, 0, NULL, 1,
                          &flat[0], &WT[0])
            save_state(&state[0], &scratch[0], &d, 1)
            memcpy(&y[0], &flat[dec + V * H], V * sizeof(floating))
            matvec(&y[0], &flat[dec], &WT[dec], layer_output(&d, &scratch[0], L - 1, 1, False),
                   V, H)                                   # y = W_dec h + b_dec
            if greedy:
                x = 0
                for v in range(1, V):
                    if y[v] > y[x]:
                        x = v
            else:
                if temperature != 1.0:
                    for v in range(V):
                        y[v] = y[v] / temperature
                if 0 < top_k < V:
                    keep_top_k(&y[0], &y[0] + V, V, top_k)    # y (2V,): logits, scratch
                softmax_forward(&y[0], V)
                if top_p < 1.0:
                    keep_top_p(&y[0], &y[0] + V, V, top_p)    # y (2V,): probabilities, scratch
                x = draw(&y[0], V, uniforms[t])
            out[t] = x
    return None
