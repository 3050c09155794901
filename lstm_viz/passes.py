"""The forward and backward passes behind record(), time-major (T, B, .).

Forward runs PyTorch's fused module for every h_t and recomputes every gate at
once from (x_t, h_{t-1}); Adjoint steps dL/dh_t (and dL/dc_t) backwards (kernels.py),
renormalising per block and keeping the scale in log space, so no value underflows.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

from . import kernels
from .models import RecurrentModel


def to_numpy(a: torch.Tensor | np.ndarray | None) -> np.ndarray | None:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a


def _torch_mkl_local():
    """MKL_Set_Num_Threads_Local of the MKL linked into torch (threadpoolctl does not find it
    there), or None without one. It sets the calling thread's MKL thread count and returns the
    previous one (0: the process-wide count, which torch.set_num_threads sets)."""
    try:
        library = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        function = library.MKL_Set_Num_Threads_Local
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int
    return function


_LIMITS_LOCK = threading.Lock()
_CONTROLLER: ThreadpoolController | None = None
_MKL_LOCAL = _torch_mkl_local()
_BLAS_USERS = 0  # threads inside one_thread(); the process-wide BLAS limit holds while any is
_BLAS_LIMIT = None


@contextmanager
def one_thread():
    """One OpenMP, one MKL and one BLAS thread for the calling thread, restored on exit.

    record() is a chain of small per-step products: a second thread woken at every
    step costs more than it saves, and 20 to 300 times more when another process
    keeps the second core busy (measured on this project's 2-core machine). Its one
    large product (every pre-activation at once) gained nothing from two threads there.
    It also makes the numbers independent of torch.set_num_threads: torch's fused GRU
    forward rounds differently on two MKL threads (issue #14). OpenMP's and MKL's counts
    are set for this thread alone; numpy's BLAS count is process-wide, so it is limited
    from the first thread in to the last one out, however sessions' threads interleave.
    """
    global _CONTROLLER, _BLAS_USERS, _BLAS_LIMIT
    with _LIMITS_LOCK:
        if _CONTROLLER is None:  # finding the thread pools reads /proc: once per process
            _CONTROLLER = ThreadpoolController()
        if _BLAS_USERS == 0:
            _BLAS_LIMIT = _CONTROLLER.limit(limits=1, user_api="blas")
        _BLAS_USERS += 1
    openmp = _CONTROLLER.limit(limits=1, user_api="openmp")  # a thread's own OpenMP setting
    mkl = None if _MKL_LOCAL is None else _MKL_LOCAL(1)
    try:
        yield
    finally:
        if mkl is not None:
            _MKL_LOCAL(mkl)
        openmp.restore_original_limits()
        with _LIMITS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0:
                _BLAS_LIMIT.restore_original_limits()


_FUSED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FUSED_LOCK = threading.Lock()


def _fused(model: RecurrentModel) -> torch.nn.Module:
    """model.fused(batch_first=False), built once per model and state of its weights (a tensor's
    _version moves with every in-place change, load_state_dict included): building torch's module
    costs 5% of a small recording. The module is only ever called, never changed."""
    key = (model.training, *((id(p), p._version) for p in model.parameters()))
    with _FUSED_LOCK:
        cached = _FUSED.get(model)
        if cached is not None and cached[0] == key:
            return cached[1]
    module = model.fused(batch_first=False)
    with _FUSED_LOCK:
        _FUSED[model] = (key, module)
    return module


def _sigmoid_grad(a: torch.Tensor) -> torch.Tensor:
    """sigmoid'(a) = sigmoid(a) * sigmoid(-a): no cancellation where the gate saturates."""
    return torch.sigmoid(a) * torch.sigmoid(-a)


def _tanh_grad(a: torch.Tensor) -> torch.Tensor:
    """tanh'(a) = cosh(a)^-2: stays > 0 where 1 - tanh(a)^2 rounds to 0 (|a| > 9 in float32)."""
    return torch.cosh(a).pow_(-2)


def log10_norm(v: np.ndarray) -> np.ndarray:
    """float64 log10 of the 2-norm over the last axis, without underflow.

    A plain norm squares its entries, so it returns 0 for float32 vectors near 1e-20:
    float32 is widened to float64 first, float64 divided by its largest entry first.
    """
    with np.errstate(divide="ignore"):  # an exactly zero gradient is -inf, as it should be
        if v.dtype == np.float32:  # squares of float32 numbers cannot leave float64's range
            # summed in float64 without a float64 copy of v: four times faster than norm(astype)
            return 0.5 * np.log10(np.einsum("...i,...i->...", v, v, dtype=np.float64))
        peak = np.abs(v).max(axis=-1, keepdims=True)
        safe = np.where(peak > 0, peak, 1)
        return np.log10(safe[..., 0]) + np.log10(np.linalg.norm(v / safe, axis=-1))


class Forward:
    """The forward pass, time-major (T, B, .), and the backward factors of any block of steps.

    PyTorch's fused module gives every h_t; the pre-activations of all steps then
    come from one matrix product on (x_t, h_{t-1}). The factors the backward pass
    needs (gate derivatives times their partners) are made per block of steps in
    `terms`, while they are in cache, instead of as (T, B, 4H) arrays.
    """

    def __init__(self, model: RecurrentModel, x: torch.Tensor):
        T, B, _ = x.shape
        H = self.H = model.hidden_size
        self.arch = model.arch
        self.nonlinearity = getattr(model, "nonlinearity", "tanh")
        w_ih, w_hh = model.weight_ih_l0.detach(), model.weight_hh_l0.detach()
        self.hidden, _ = _fused(model)(x)
        self.underflow_step: int | None = None  # float64: first step with a factor below SMALLEST_FACTOR
        if not bool(torch.isfinite(self.hidden).all()):
            finite = torch.isfinite(self.hidden).flatten(1).all(dim=1)
            raise FloatRangeError("overflow", int((~finite).nonzero()[0, 0]))
        self.h_prev = torch.cat([self.hidden.new_zeros(1, B, H), self.hidden[:-1]])
        self.cell = None
        self.gates: dict[str, torch.Tensor] = {}
        b_ih, b_hh = model.bias_ih_l0.detach(), model.bias_hh_l0.detach()
        if self.arch == "gru":  # keep W_hn h + b_hn apart: the reset gate multiplies it
            pre = torch.addmm(b_ih, x.reshape(T * B, -1), w_ih.T).view(T, B, -1)
            from_h = torch.addmm(b_hh, self.h_prev.reshape(T * B, H), w_hh.T).view(T, B, -1)
            x_r, x_z, x_n = pre.chunk(3, dim=-1)
            h_r, h_z, self.h_n = from_h.chunk(3, dim=-1)
            self.a_r, self.a_z = x_r + h_r, x_z + h_z
            r, z = self.a_r.sigmoid(), self.a_z.sigmoid()
            self.a_n = torch.addcmul(x_n, r, self.h_n)
            self.gates = {"reset": r, "update": z, "candidate": self.a_n.tanh()}
            return
        pre = torch.addmm(b_ih + b_hh, self.h_prev.reshape(T * B, H), w_hh.T)
        self.pre = pre.addmm_(x.reshape(T * B, -1), w_ih.T).view(T, B, -1)
        if self.arch == "lstm":  # pre-activations kept: the derivatives are made from them
            act = self.act = self.pre.sigmoid()
            torch.tanh(self.pre[..., 2 * H : 3 * H], out=act[..., 2 * H : 3 * H])
            i, f, g, o = act.chunk(4, dim=-1)
            self.gates = {"input": i, "forget": f, "candidate": g, "output": o}
            self.cell = _cell_states(f, i * g)  # (T + 1, B, H), c_{-1} = 0 first

    def _check(self, t0: int, *factors: torch.Tensor) -> None:
        step = _first_below(t0, factors)
        if step is None:
            return
        if factors[0].dtype == torch.float32:
            raise FloatRangeError("underflow", step)
        # float64: a factor this small only matters where it is every path's (a saturated
        # unit beside live ones is not); record() checks the result for that (lost_to_underflow)
        self.underflow_step = step if self.underflow_step is None else min(self.underflow_step, step)

    def terms(self, t0: int, t1: int):
        """Backward factors for steps t0..t1-1: (carry, mix, mix_x), each (t1 - t0, B, .).

        mix scales the adjoint, laid out per gate block, into dL/d(pre-activation)
        before W_hh; mix_x the same before W_ih (it differs for the GRU alone);
        carry is the LSTM's dh_t -> dc_t factor and the GRU's dh_t -> dh_{t-1}.
        Every derivative is made from its pre-activation, without cancellation.
        Where one falls below SMALLEST_FACTOR: float32 raises FloatRangeError (record()
        runs again in float64); float64 notes the first such step in underflow_step.
        """
        if self.arch == "rnn":
            pre = self.pre[t0:t1]
            if self.nonlinearity == "relu":  # 0 and 1 are exact
                slope = (pre > 0).to(pre.dtype)
            else:
                slope = _tanh_grad(pre)
                self._check(t0, slope)
            return None, slope, slope
        if self.arch == "lstm":
            pre, act = self.pre[t0:t1], self.act[t0:t1]
            i, f, g, o = act.chunk(4, dim=-1)
            c_prev, c = self.cell[t0:t1], self.cell[t0 + 1 : t1 + 1]
            mix = pre.neg().sigmoid_().mul_(act)  # sigmoid'(a) = sigmoid(a) sigmoid(-a) ...
            blocks = mix.view(*mix.shape[:2], 4, self.H)
            g_slope = _tanh_grad(pre[..., 2 * self.H : 3 * self.H])  # ... and tanh'(a_g), times i
            torch.mul(g_slope, i, out=blocks[:, :, 2])
            carry = o * _tanh_grad(c)
            self._check(t0, mix, carry)  # before the partners below, which may be exactly 0
            for k, partner in ((0, g), (1, c_prev), (3, c.tanh())):  # d pre / d c_t per gate
                blocks[:, :, k] *= partner
            return carry, mix, mix
        a_r, a_z, a_n = self.a_r[t0:t1], self.a_z[t0:t1], self.a_n[t0:t1]
        r, z, n = (self.gates[k][t0:t1] for k in ("reset", "update", "candidate"))
        dn = torch.sigmoid(-a_z) * _tanh_grad(a_n)  # (1 - z) tanh'(a_n), no cancellation
        dr = dn * _sigmoid_grad(a_r)
        dz = _sigmoid_grad(a_z)
        self._check(t0, dr, dz)  # dn r >= dr, z >= dz: these two bound every factor
        dr *= self.h_n[t0:t1]
        dz *= self.h_prev[t0:t1] - n
        return z, torch.cat([dr, dz, dn * r], -1), torch.cat([dr, dz, dn], -1)


class FloatRangeError(ArithmeticError):
    """This dtype cannot carry the run: its state overflows (what="overflow") or a derivative
    factor falls below the smallest one it carries exactly (what="underflow"), at `step`."""

    def __init__(self, what: str, step: int):
        super().__init__(f"{what} at step {step}")
        self.what, self.step = what, step


# The smallest derivative factor carried per dtype. The adjoint is renormalised to a
# peak of 1 (at worst every step), so a factor above this keeps its product with the
# adjoint's leading entries far from the subnormal range (float32 1e-38, float64 1e-308).
SMALLEST_FACTOR = {torch.float32: 1e-30, torch.float64: 1e-290}


def _first_below(t0: int, factors: tuple[torch.Tensor, ...]) -> int | None:
    """The first step with a factor that is > 0 in exact arithmetic but came out below
    SMALLEST_FACTOR (tanh'(60) = 3e-52 is 0 in float32), or None."""
    smallest = SMALLEST_FACTOR[factors[0].dtype]
    steps = [
        t0 + int((factor < smallest).flatten(1).any(dim=1).nonzero()[0, 0])
        for factor in factors
        if float(factor.min()) < smallest
    ]
    return min(steps, default=None)


def _cell_states(f: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
    """(T + 1, B, H): c_{-1} = 0, then c_t = f_t * c_{t-1} + update_t (a compiled loop)."""
    f_np, update_np = to_numpy(f), to_numpy(update)
    cell = np.empty((len(update_np) + 1, *update_np.shape[1:]), update_np.dtype)
    kernels.cell_states(f_np, update_np, cell)
    return torch.from_numpy(cell).to(update.device)


# The adjoint is renormalised at the end of every block of steps. Each block is
# as long as the last one's rate of change allows within _BUDGET decades; one
# whose values still leave [low, high] relative to its start is redone a step at
# a time, renormalising at each, so a gradient that falls 30 decades in one step
# is carried exactly too.
_BLOCK_RANGE = (4, 256)
_CHUNK_CELLS = 2**17  # backward factors (step x sample x gate unit) made at once: 512 KB, in cache
_BOUNDS = {np.dtype(np.float32): (1e-25, 1e25), np.dtype(np.float64): (1e-250, 1e250)}
_BUDGET = {np.dtype(np.float32): 12.0, np.dtype(np.float64): 120.0}


class Adjoint:
    """Backward recursion over t for dL/dh_t (and dL/dc_t), kept scaled, and dL/dx_t.

    The true adjoint at step t is dh[t] * 10 ** scale[t] (dc and grad_x likewise);
    dh, dc are (T, B, H), grad_x (T, B, I), scale (T, B) float64. The recursion runs
    in numpy, its per-step loops compiled by numba (kernels.py).
    """

    def __init__(self, model: RecurrentModel, fwd: Forward, grad_output: torch.Tensor, progress=None):
        self.arch, self.fwd, self.progress = model.arch, fwd, progress
        self.w_hh, self.w_ih = to_numpy(model.weight_hh_l0), to_numpy(model.weight_ih_l0)
        T, B, H = fwd.hidden.shape
        dtype = self.w_hh.dtype
        self.gate_count = self.w_hh.shape[0] // H
        self.dh = np.empty((T, B, H), dtype)
        self.dc = np.empty((T, B, H), dtype) if self.arch == "lstm" else None
        self.grad_x = np.empty((T, B, model.input_size), dtype)
        self.scale = np.empty((T, B))
        self.forget = to_numpy(fwd.gates.get("forget"))
        self.dh[T - 1] = to_numpy(grad_output)
        dc_in = np.zeros((B, H), dtype) if self.dc is not None else None
        dc_in, scale = self._renormalise(T - 1, dc_in, np.zeros(B))
        self._run(dc_in, scale)

    def _steps(self, t_end: int, t_start: int, dc_in, terms, t0: int):
        """Steps t_end-1 .. t_start: fills dc[t] and dh[t-1]; returns dc[t_start].

        terms come from fwd.terms(t0, ...): row t - t0 belongs to step t.
        """
        carry, mix, _ = terms
        if self.arch == "lstm":
            return kernels.lstm_steps(
                self.dh, self.dc, carry, self.forget, mix, self.w_hh, dc_in, t_end, t_start, t0
            )
        if self.arch == "rnn":
            kernels.rnn_steps(self.dh, mix, self.w_hh, t_end, t_start, t0)
        else:
            kernels.gru_steps(self.dh, carry, mix, self.w_hh, t_end, t_start, t0)
        return None

    def _block_peak(self, t_end: int, t_start: int) -> np.ndarray:
        """(steps, B) peaks of what steps t_end-1 .. t_start wrote, from t = max(0, t_start - 1):
        |dh| there and, for the LSTM, |dc| at t_start .. t_end-1. dc[t_start - 1] is not written
        yet; reading it (np.empty's leftovers) made repeated runs differ (issue #14)."""
        low = max(0, t_start - 1)
        peak = np.abs(self.dh[low:t_end]).max(axis=-1)
        if self.dc is not None:
            written = peak[t_start - low :]  # a view: updated in place
            np.maximum(written, np.abs(self.dc[t_start:t_end]).max(axis=-1), out=written)
        return peak

    def _renormalise(self, t: int, dc_in, scale):
        """Divide (dh[t], dc_in) by their joint per-sample peak; returns (dc_in, scale)."""
        peak = np.abs(self.dh[t]).max(axis=-1)
        if dc_in is not None:
            peak = np.maximum(peak, np.abs(dc_in).max(axis=-1))
        peak = np.where(peak > 0, peak, 1)[:, None]
        self.dh[t] /= peak
        if dc_in is not None:
            dc_in = dc_in / peak
        return dc_in, scale + np.log10(peak[:, 0], dtype=np.float64)

    def _grad_x(self, t0: int, t1: int, mix_x: np.ndarray) -> None:
        """dL/dx_t for steps t0..t1-1 (at their own scale): one product with W_ih."""
        K, B, H = self.dh[t0:t1].shape
        grad_pre = mix_x.reshape(K, B, -1, H)
        if self.dc is not None:
            grad_pre[:, :, :3] *= self.dc[t0:t1, :, None]
            grad_pre[:, :, 3] *= self.dh[t0:t1]
        else:
            grad_pre *= self.dh[t0:t1, :, None]
        # one (K*B, G*H) x (G*H, I) product: per step it would be K matrix-vector calls for B = 1
        np.matmul(grad_pre.reshape(K * B, -1), self.w_ih, out=self.grad_x[t0:t1].reshape(K * B, -1))

    def _run(self, dc_in, scale) -> None:
        """Chunks of steps (their factors fit in cache) from the end, blocks of steps within."""
        low, high = _BOUNDS[self.dh.dtype]
        budget = _BUDGET[self.dh.dtype]
        T, B, H = self.dh.shape
        cells_per_step = B * H * self.gate_count
        smallest, largest = _BLOCK_RANGE
        chunk_len = max(smallest, _CHUNK_CELLS // cells_per_step)
        block_len = smallest
        t_end = T
        while t_end > 0:
            chunk_start = max(0, t_end - chunk_len)
            terms = [to_numpy(term) for term in self.fwd.terms(chunk_start, t_end)]
            chunk_end = t_end
            while t_end > chunk_start:
                t_start = max(chunk_start, t_end - block_len)
                alive = np.abs(self.dh[t_end - 1]).max(axis=-1) > 0
                if dc_in is not None:
                    alive |= np.abs(dc_in).max(axis=-1) > 0
                dc_out = self._steps(t_end, t_start, dc_in, terms, chunk_start)
                block = self._block_peak(t_end, t_start)
                if (~np.isfinite(block) | (block > high) | ((block < low) & alive)).any():
                    for t in range(t_end - 1, t_start - 1, -1):  # redo, renormalising at every step
                        self.scale[t] = scale
                        dc_in = self._steps(t + 1, t, dc_in, terms, chunk_start)
                        if t:
                            dc_in, scale = self._renormalise(t - 1, dc_in, scale)
                    block_len = smallest
                else:
                    self.scale[t_start:t_end] = scale
                    if t_start:
                        dc_in, scale = self._renormalise(t_start - 1, dc_out, scale)
                    with np.errstate(divide="ignore"):
                        spread = np.abs(np.log10(block[:, alive])).max(initial=0.0)  # decades moved
                    rate = spread / max(1, len(block) - 1)
                    block_len = int(np.clip(budget / rate if rate > 0 else largest, smallest, largest))
                t_end = t_start
                if self.progress is not None:
                    self.progress(1.0 - t_end / T)
            self._grad_x(chunk_start, chunk_end, terms[2])


class InjectedAdjoint(Adjoint):
    """Adjoint for a gradient that enters at every step: a loss on every output, or, for a layer
    under others, the gradient the layer above sends to its input.

    injection (T, B, H) holds each step's gradient with its peak at 1 and inj_scale (T, B)
    its log10 scale (-inf where none enters); both in this layer's own time order. The
    recursion renormalises at every step (kernels.*_steps_injected); fields as Adjoint's.
    """

    def __init__(self, model: RecurrentModel, fwd: Forward, injection, inj_scale, progress=None):
        self.arch, self.fwd, self.progress = model.arch, fwd, progress
        self.w_hh, self.w_ih = to_numpy(model.weight_hh_l0), to_numpy(model.weight_ih_l0)
        T, B, H = fwd.hidden.shape
        dtype = self.w_hh.dtype
        self.dh = np.zeros((T, B, H), dtype)
        self.dc = np.zeros((T, B, H), dtype) if self.arch == "lstm" else None
        self.grad_x = np.empty((T, B, model.input_size), dtype)
        self.scale = np.empty((T, B))
        self.forget = to_numpy(fwd.gates.get("forget"))
        injection = np.ascontiguousarray(injection, dtype=dtype)
        inj_scale = np.ascontiguousarray(inj_scale, dtype=np.float64)
        running = np.full(B, -np.inf)  # the adjoint's scale so far: nothing has entered yet
        dc_in = np.zeros((B, H), dtype)
        chunk_len = max(_BLOCK_RANGE[0], _CHUNK_CELLS // (B * self.w_hh.shape[0]))
        t_end = T
        while t_end > 0:
            start = max(0, t_end - chunk_len)
            carry, mix, mix_x = (to_numpy(term) for term in fwd.terms(start, t_end))
            args = (self.scale, injection, inj_scale, running)
            if self.arch == "lstm":
                dc_in = kernels.lstm_steps_injected(
                    self.dh, self.dc, *args, carry, self.forget, mix, self.w_hh, dc_in, t_end, start, start
                )
            elif self.arch == "rnn":
                kernels.rnn_steps_injected(self.dh, *args, mix, self.w_hh, t_end, start, start)
            else:
                kernels.gru_steps_injected(self.dh, *args, carry, mix, self.w_hh, t_end, start, start)
            self._grad_x(start, t_end, mix_x)
            t_end = start
            if progress is not None:
                progress(1.0 - t_end / T)


def peak_normalised(g: np.ndarray, scale: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(g / its peak over the last axis, scale + log10 peak): float64, -inf scale where g is 0."""
    g = np.asarray(g, dtype=np.float64)
    peak = np.abs(g).max(axis=-1)
    safe = np.where(peak > 0, peak, 1.0)
    with np.errstate(divide="ignore"):
        return g / safe[..., None], scale + np.log10(peak)


def _log_sum(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Sum of terms given as (peak-normalised values (T, B, N), log10 scale (T, B)), the same way."""
    top = np.max([scale for _, scale in parts], axis=0)
    total = np.zeros_like(parts[0][0])
    for values, scale in parts:
        with np.errstate(invalid="ignore"):
            weight = np.where(np.isneginf(scale), 0.0, 10.0 ** (scale - top))
        total += values * weight[..., None]
    return peak_normalised(total, np.where(np.isneginf(top), 0.0, top))


class StackedPasses:
    """Forward and backward passes of a stack of layers, one or two directions each.

    Forward runs layer by layer from the bottom, each direction in its own time order (the
    backward direction on the time-reversed sequence). Backward runs from the top: the
    gradient a layer sends to its input, summed over its directions in log space, enters the
    layer below at every step (InjectedAdjoint). `runs[l][d]` is (model, Forward, Adjoint) in
    that direction's own time order; `grad_input` (T, B, I), `grad_input_scale` (T, B) the
    gradient with respect to the network's input, in input order.
    """

    def __init__(
        self,
        layers,
        x: torch.Tensor,
        grad_output: torch.Tensor,
        progress=None,
        forward_done=None,
        two_threads: bool = False,
    ):
        """layers[l][d]: one-layer models; x (T, B, I) time-major; grad_output (B, D*H) for the
        top layer's final states or (T, B, D*H) for its output at every step. two_threads: run a
        layer's backward direction on a second thread beside its forward one (they never wait on
        each other within a layer); progress is then reported from the calling thread only."""
        D, H = len(layers[0]), layers[0][0].hidden_size
        T = x.shape[0]
        each = _on_two_threads if two_threads and D == 2 else _in_turn
        fwds, inputs = [], x

        def forward(d: int, model, inputs: torch.Tensor) -> Forward:
            try:
                return Forward(model, inputs.flip(0).contiguous() if d else inputs)
            except FloatRangeError as error:
                raise FloatRangeError(error.what, T - 1 - error.step if d else error.step) from None

        for row in layers:
            fwds.append(each([partial(forward, d, model, inputs) for d, model in enumerate(row)]))
            outputs = [fwd.hidden.flip(0) if d else fwd.hidden for d, fwd in enumerate(fwds[-1])]
            inputs = torch.cat(outputs, dim=-1)
        if forward_done is not None:
            forward_done()
        runs_total = len(layers) * D
        self.runs = [[None] * D for _ in layers]
        upper = None  # the gradient with respect to the current layer's output, input order

        def backward(layer: int, d: int, model, upper, part):
            units = slice(d * H, (d + 1) * H)
            fwd = fwds[layer][d]
            try:
                if upper is None and grad_output.dim() == 2:
                    return Adjoint(model, fwd, grad_output[:, units], part)
                if upper is None:
                    values, scale = peak_normalised(to_numpy(grad_output[..., units]))
                else:
                    values, scale = peak_normalised(upper[0][..., units], upper[1])
                if d:
                    values, scale = values[::-1], scale[::-1]
                return InjectedAdjoint(model, fwd, values, scale, part)
            except FloatRangeError as error:
                raise FloatRangeError(error.what, T - 1 - error.step if d else error.step) from None

        for layer in reversed(range(len(layers))):
            before = (len(layers) - 1 - layer) * D  # runs done before this layer
            jobs = []
            for d, model in enumerate(layers[layer]):
                part = None
                if progress is not None and (d == 0 or each is _in_turn):
                    share = D if each is _on_two_threads else 1  # one reporter stands for both directions
                    part = partial(_report, progress, before + d, share, runs_total)
                jobs.append(partial(backward, layer, d, model, upper, part))
            adjoints = each(jobs)
            into_input = []
            for d, (model, adjoint) in enumerate(zip(layers[layer], adjoints, strict=True)):
                self.runs[layer][d] = (model, fwds[layer][d], adjoint)
                values, scale = peak_normalised(adjoint.grad_x, adjoint.scale)
                into_input.append((values[::-1], scale[::-1]) if d else (values, scale))
            upper = _log_sum(into_input) if D > 1 else into_input[0]
        self.grad_input, self.grad_input_scale = upper


def _report(progress, done: int, share: int, total: int, fraction: float) -> None:
    progress((done + fraction * share) / total)


def _in_turn(jobs) -> list:
    """Run each job (a function of no arguments) in order; their results."""
    return [job() for job in jobs]


def _on_two_threads(jobs) -> list:
    """Run two jobs at once, the second on a worker thread (with no autograd and one thread of its
    own, as the caller has); their results, or the first job's error, else the second's."""

    def second():
        with torch.no_grad(), one_thread():
            return jobs[1]()

    with ThreadPoolExecutor(1) as pool:
        later = pool.submit(second)
        try:
            first = jobs[0]()
        finally:
            other = later.result() if later.exception() is None else None
        if later.exception() is not None:
            raise later.exception()
    return [first, other]


def lost_to_underflow(fwd: Forward, grad_h: np.ndarray, grad_c, grad_x: np.ndarray) -> int | None:
    """The first step (own time order) where a float64 run with factors below SMALLEST_FACTOR
    lost a whole gradient: log10 norms (T, B) that are -inf where the step after (grad_h) or
    the same step's dL/dh (grad_c, grad_x) is finite. Exactly zero is the truth there only for
    a relu (its slope is 0 and 1); elsewhere it means the value fell below float64. None if none.
    """
    if fwd.underflow_step is None or fwd.nonlinearity == "relu":
        return None
    lost = np.zeros(grad_h.shape[0], dtype=bool)
    lost[:-1] |= (np.isneginf(grad_h[:-1]) & np.isfinite(grad_h[1:])).any(axis=1)
    for values in (grad_c, grad_x):
        if values is not None:
            lost |= (np.isneginf(values) & np.isfinite(grad_h)).any(axis=1)
    return int(lost.nonzero()[0][0]) if lost.any() else None
