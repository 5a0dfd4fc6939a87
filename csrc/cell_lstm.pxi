# The LSTM cell of torch.nn.LSTM, for G streams side by side over T steps of one
# layer; included by stack.pxi. The four gates are rows of one stacked product
# (torch-rnn's LSTM.lua): a = W_ih x + b_ih + W_hh h + b_hh (4H,), split i, f, g, o:
#
#     i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
#     c[t+1] = f * c[t] + i * g
#     h[t+1] = o * tanh(c[t+1])
#
# Layouts (row t * G + g is stream g at step t):
#   hs (T+1, G, H)        hs[0] = h at the chunk start
#   cs (2T+1, G, H)       c (T+1, G, H), cs[0] = c at the chunk start, then
#                         tanh(c[t+1]) (T, G, H) for the backward pass
#   A  (T, G, 4H)         in: W_ih x[t] + b_ih; out: the activated gates i, f, g, o
#   Ahh                   unused (hh and ih pre-activations are summed)
# Whh (4H, H), WhhT (H, 4H): weight_hh and its transpose; bhh (4H,) bias_hh.
# Wp: the panels of WhhT, then of Whh, for several streams (stack.pxi's packed), or NULL.


cdef void lstm_forward(floating *hs, floating *cs, floating *A, floating *Ahh,
                       const floating *Whh, const floating *WhhT, const floating *Wp,
                       const floating *bhh, Py_ssize_t T, Py_ssize_t G,
                       Py_ssize_t H) noexcept nogil:
    cdef Py_ssize_t t, g, j, GH = G * H, H4 = 4 * H
    cdef floating *a
    cdef floating *c
    cdef floating *tc
    cdef floating *h
    cdef const floating *cprev
    for t in range(T):
        a = A + t * G * H4
        for g in range(G):
            for j in range(H4):
                a[g * H4 + j] += bhh[j]
        hh_forward(a, hs + t * GH, Whh, WhhT, Wp, G, H4, H)      # a += W_hh h[t]
        for g in range(G):
            sigmoid_inplace(a, 2 * H)                        # i, f
            tanh_inplace(a + 2 * H, H)                       # g
            sigmoid_inplace(a + 3 * H, H)                    # o
            cprev = cs + (t * G + g) * H
            c = cs + ((t + 1) * G + g) * H
            tc = cs + (T + 1) * GH + (t * G + g) * H
            h = hs + ((t + 1) * G + g) * H
            for j in range(H):
                c[j] = a[H + j] * cprev[j] + a[j] * a[2 * H + j]   # c = f*c + i*g
            memcpy(tc, c, H * sizeof(floating))
            tanh_inplace(tc, H)
            for j in range(H):
                h[j] = a[3 * H + j] * tc[j]                  # h = o * tanh(c)
            a += H4


cdef floating *lstm_backward(floating *A, floating *Ahh, floating *dhnext, floating *dcnext,
                             const floating *dH, const floating *hs, const floating *cs,
                             const floating *Whh, const floating *WhhT, const floating *Wp,
                             Py_ssize_t T, Py_ssize_t G, Py_ssize_t H) noexcept nogil:
    # dH (T, G, H): dloss/dh[t+1] from above. A (the gates) becomes dA, the gradient
    # of the stacked pre-activations (T, G, 4H), of both the ih and the hh product:
    # returns A. dhnext, dcnext (G, H) scratch. The gates' part: cellmath.h.
    cdef Py_ssize_t t, g, GH = G * H, H4 = 4 * H
    cdef floating *a
    cdef floating *dhn
    cdef floating *dcn
    cdef const floating *cprev
    cdef const floating *tc
    cdef const floating *dh
    memset(dhnext, 0, GH * sizeof(floating))
    memset(dcnext, 0, GH * sizeof(floating))
    for t in range(T - 1, -1, -1):
        for g in range(G):
            a = A + (t * G + g) * H4
            cprev = cs + (t * G + g) * H
            tc = cs + (T + 1) * GH + (t * G + g) * H
            dh = dH + (t * G + g) * H
            dhn = dhnext + g * H
            dcn = dcnext + g * H
            lstm_gates_backward(a, a + H, a + 2 * H, a + 3 * H, dcn, cprev, tc, dh, dhn, H)
        if t > 0:
            memset(dhnext, 0, GH * sizeof(floating))
            hh_backward(dhnext, A + t * G * H4, Whh, WhhT, Wp, G, H4, H)   # W_hh.T da
    return A
