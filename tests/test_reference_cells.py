"""The numpy oracle of the stacked cells (charrnn.reference) against PyTorch and against
central differences.

PyTorch is optional: the comparisons with it ``importorskip("torch")``. The numerical
gradient checks need only numpy and always run.
"""
import math

import numpy as np
import pytest
from conftest import assert_close

from charrnn import reference

CELLS = ["rnn", "lstm", "gru"]
LAYERS = [1, 2, 3]
TORCH_RTOL = 1e-10


def _state(rng, cell, L, H, B=None):
    """A nonzero state (S, L, H) (or (S, L, B, H)): h in (-1, 1), c unbounded."""
    shape = (L, H) if B is None else (L, B, H)
    slots = [np.tanh(rng.randn(*shape))]
    if cell == "lstm":
        slots.append(rng.randn(*shape))
    return np.array(slots)


def _case(cell, L, H, V, T, seed, dropout=0.0, gain=1.0):
    """Weights (init_stack's, times ``gain``), a chunk, a start state and keep flags."""
    rng = np.random.RandomState(seed)
    params = reference.init_stack(cell, L, H, V, rng)
    for a in params.values():
        a *= gain
    inputs = list(rng.randint(V, size=T))
    targets = list(rng.randint(V, size=T))
    state = _state(rng, cell, L, H)
    keep = None
    if dropout > 0:
        keep = (rng.random_sample((L, T, H)) >= dropout).astype(np.uint8)
    return inputs, targets, state, params, keep


# ---------------------------------------------------------------------------------------
# PyTorch, run on the same weights (float64)
# ---------------------------------------------------------------------------------------

def _torch_module(torch, cell, input_size, H, L, params, layer=None):
    """torch.nn.RNN/LSTM/GRU with the weights of ``params`` (one layer if ``layer`` given)."""
    module_class = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    layers = range(L) if layer is None else [layer]
    module = module_class(input_size, H, num_layers=len(layers), dtype=torch.float64)
    with torch.no_grad():
        for j, k in enumerate(layers):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(module, f"{kind}_l{j}").copy_(torch.from_numpy(params[f"{kind}_l{k}"]))
    return module


def torch_stack(inputs, targets, state, params, cell, keep=None, dropout=0.0):
    """PyTorch's loss, gradients by our names, new state and log-probabilities.

    Without keep flags the whole L-layer module runs at once; with them the layers run
    one at a time and the masks are applied between them (and before the decoder).
    """
    torch = pytest.importorskip("torch")
    V, H = params["decoder.weight"].shape
    L, T = state.shape[1], len(inputs)
    x = torch.zeros(T, 1, V, dtype=torch.float64)  # (T, batch 1, V) one-hot
    x[torch.arange(T), 0, torch.tensor(inputs)] = 1
    initial = [torch.from_numpy(state[s][:, None, :].copy()) for s in range(state.shape[0])]
    hidden = initial[0] if cell != "lstm" else tuple(initial)
    decoder = torch.nn.Linear(H, V, dtype=torch.float64)
    with torch.no_grad():
        decoder.weight.copy_(torch.from_numpy(params["decoder.weight"]))
        decoder.bias.copy_(torch.from_numpy(params["decoder.bias"]))
    grads_of = {"decoder.weight": decoder.weight, "decoder.bias": decoder.bias}
    if keep is None:
        module = _torch_module(torch, cell, V, H, L, params)
        out, final = module(x, hidden)
        for name, a in module.named_parameters():
            grads_of[name] = a
        finals = [final] if cell != "lstm" else list(final)
    else:
        scale = 1.0 / (1.0 - dropout)
        out, per_layer = x, []
        for k in range(L):
            module = _torch_module(torch, cell, V if k == 0 else H, H, L, params, layer=k)
            h_k = tuple(s[k:k + 1] for s in initial)
            out, final = module(out, h_k if cell == "lstm" else h_k[0])
            out = out * torch.from_numpy(keep[k] * scale)[:, None, :]
            for name, a in module.named_parameters():
                grads_of[name.replace("_l0", f"_l{k}")] = a
            per_layer.append([final] if cell != "lstm" else list(final))
        finals = [torch.cat([f[s] for f in per_layer]) for s in range(len(per_layer[0]))]
    logp = torch.log_softmax(decoder(out[:, 0]), dim=1)  # (T, V)
    loss = -logp[torch.arange(T), torch.tensor(targets)].sum()
    loss.backward()
    grads = {name: a.grad.numpy() for name, a in grads_of.items()}
    new_state = np.array([f.detach().numpy()[:, 0] for f in finals])
    return loss.item(), grads, new_state, logp.detach().numpy()


@pytest.mark.parametrize("dropout", [0.0, 0.4], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("L", LAYERS, ids=lambda L: f"L{L}")
@pytest.mark.parametrize("cell", CELLS)
def test_stack_lossfun_matches_torch(cell, L, dropout):
    H, V, T = 7, 11, 9
    inputs, targets, state, params, keep = _case(cell, L, H, V, T, seed=L, dropout=dropout,
                                                 gain=1.5)
    loss, grads, new_state = reference.stack_lossFun(inputs, targets, state, params, cell,
                                                     keep=keep, dropout=dropout)
    want_loss, want_grads, want_state, _ = torch_stack(inputs, targets, state, params, cell,
                                                       keep, dropout)
    assert_close(loss, want_loss, TORCH_RTOL, f"{cell} L={L} loss")
    assert list(grads) == list(params)
    assert sorted(want_grads) == sorted(params)
    for name in params:
        assert_close(grads[name], want_grads[name], TORCH_RTOL, f"{cell} L={L} d{name}")
    assert_close(new_state, want_state, TORCH_RTOL, f"{cell} L={L} new state")


@pytest.mark.parametrize("cell", CELLS)
def test_cells_match_torch_cells(cell):
    """One step of each cell, forward and backward (dx, dh, dc too), against nn.*Cell."""
    torch = pytest.importorskip("torch")
    rng = np.random.RandomState(5)
    In, H, G = 6, 5, reference.GATES[cell]
    W_ih, W_hh = rng.randn(G * H, In), rng.randn(G * H, H) * 0.7
    b_ih, b_hh = rng.randn(G * H), rng.randn(G * H)
    x, h, c = rng.randn(In), np.tanh(rng.randn(H)), rng.randn(H)
    dh_next, dc_next = rng.randn(H), rng.randn(H)
    forward, backward = reference.CELLS[cell]

    module = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell,
              "gru": torch.nn.GRUCell}[cell](In, H, dtype=torch.float64)
    with torch.no_grad():
        for name, a in (("weight_ih", W_ih), ("weight_hh", W_hh), ("bias_ih", b_ih),
                        ("bias_hh", b_hh)):
            getattr(module, name).copy_(torch.from_numpy(a))
    tx, th, tc = (torch.tensor(a[None, :], requires_grad=True) for a in (x, h, c))
    if cell == "lstm":
        h_next, c_next, cache = forward(x, h, c, W_ih, W_hh, b_ih, b_hh)
        dx, dh, dc, *dweights = backward(dh_next, dc_next, cache)
        th_next, tc_next = module(tx, (th, tc))
        torch.autograd.backward([th_next, tc_next], [torch.from_numpy(dh_next[None, :]),
                                                     torch.from_numpy(dc_next[None, :])])
        assert_close(c_next, tc_next.detach().numpy()[0], TORCH_RTOL, "lstm c_next")
        assert_close(dc, tc.grad.numpy()[0], TORCH_RTOL, "lstm dc")
    else:
        h_next, cache = forward(x, h, W_ih, W_hh, b_ih, b_hh)
        dx, dh, *dweights = backward(dh_next, cache)
        th_next = module(tx, th)
        th_next.backward(torch.from_numpy(dh_next[None, :]))
    assert_close(h_next, th_next.detach().numpy()[0], TORCH_RTOL, f"{cell} h_next")
    assert_close(dx, tx.grad.numpy()[0], TORCH_RTOL, f"{cell} dx")
    assert_close(dh, th.grad.numpy()[0], TORCH_RTOL, f"{cell} dh")
    for name, d in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), dweights):
        assert_close(d, getattr(module, name).grad.numpy(), TORCH_RTOL, f"{cell} d{name}")


# ---------------------------------------------------------------------------------------
# Central differences (no torch needed)
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("L", LAYERS, ids=lambda L: f"L{L}")
@pytest.mark.parametrize("cell", CELLS)
def test_stack_lossfun_numerical_gradient(cell, L):
    """Every gradient entry against (f(w + e) - f(w - e)) / 2e, with a dropout mask."""
    H, V, T, dropout, eps = 3, 4, 5, 0.3, 1e-5  # small: 2 losses per weight
    inputs, targets, state, params, keep = _case(cell, L, H, V, T, seed=10 + L,
                                                 dropout=dropout, gain=1.5)
    assert 0 < keep.sum() < keep.size
    _, grads, _ = reference.stack_lossFun(inputs, targets, state, params, cell,
                                          keep=keep, dropout=dropout)

    def loss_at():
        return reference.stack_lossFun(inputs, targets, state, params, cell,
                                       keep=keep, dropout=dropout)[0]

    for name, a in params.items():
        numerical = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + eps
            plus = loss_at()
            a[i] = old - eps
            minus = loss_at()
            a[i] = old
            numerical[i] = (plus - minus) / (2 * eps)
        # central differences carry a rounding error of about 1e-16 * loss / eps ~ 1e-10
        # in absolute terms, which dominates for the smallest gradients (deep layer 0)
        error = np.max(np.abs(grads[name] - numerical))
        bound = 1e-6 * np.max(np.abs(numerical)) + 2e-9
        assert error <= bound, (f"{cell} L={L} d{name}: max difference {error:.3e} from the "
                                f"numerical gradient > {bound:.3e}")
