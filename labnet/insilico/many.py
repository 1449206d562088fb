"""Many independent small networks trained by coupled learning in one vectorised call.

:class:`BatchedCoupledLearning` assembles and solves the reduced Laplacians of B networks at
once (vectorised Gaussian elimination or LAPACK per matrix, or the compiled kernel of
:mod:`labnet.insilico.batched`); the update rule is the one of
:class:`labnet.insilico.trainer.CoupledLearning`. Conductances in siemens (S), voltages in
volts (V), α in S/V².
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse.csgraph import reverse_cuthill_mckee

from labnet.core.errors import ConfigError
from labnet.core.network import Network
from labnet.insilico import batched as _kernels

#: Free-node count at or below which the compiled small-network kernel (numba) is used. Its
#: Cholesky works in the reverse Cuthill–McKee band, O(F·bw²): 256-edge networks (87–137 free
#: nodes, half-bandwidth 11–23) take ~30 µs per step vs ~60–110 µs with dense LAPACK.
KERNEL_MAX = 400


class BatchedCoupledLearning:
    """Many independent small networks trained by coupled learning in one vectorised call.

    All networks share node count, edge count and the numbers of inputs and outputs; they may
    differ in wiring (give a list of networks), conductances, tasks and hyper-parameters.
    Every step does, for all B networks at once: assemble L_ff and L_f,in, solve for G and Z by
    vectorised Gaussian elimination (exact for the SPD reduced Laplacian; no pivoting needed),
    the free and clamped drops of every sample, the continuous rule, clipping.

    Parameters
    ----------
    networks : Network or sequence of B Networks
    conductances : array, shape (B, E)
        Initial conductances (S).
    inputs : array, shape (S, n_in) or (B, S, n_in)
        Training inputs (V) shared by all networks or one set per network.
    targets : array, shape (S, n_out) or (B, S, n_out)
        Targets (V).
    alpha, eta : float or array (B,)
        Per-network learning rate (S/V²) and nudge.
    k_min, k_max : float or array broadcastable to (B, E)
        Conductance range (S).
    engine : {"auto", "numba", "numpy"}
        ``numba``: the compiled kernel of :mod:`labnet.insilico.batched` (one loop over steps and
        networks); ``numpy``: vectorised NumPy over the batch axis; ``auto``: numba when it is
        installed and the networks have at most :data:`KERNEL_MAX` free nodes.
    threads : int
        Threads of the numba engine (0: numba's default, all cores). Networks are independent,
        so they are split into chunks that train without synchronising.
    wiring : {"auto", "each"}
        ``auto``: networks given as one object (or the same object B times) share one dense
        assembly map (BLAS); ``each``: every network is assembled from its own edge list, so a
        network's numbers do not depend on how many others are in the batch or what they are
        (:mod:`labnet.insilico.packed` relies on this to pack sweep points).
    """

    def __init__(
        self,
        networks: Network | Sequence[Network],
        conductances: np.ndarray,
        inputs: np.ndarray,
        targets: np.ndarray,
        *,
        alpha: float | np.ndarray,
        eta: float | np.ndarray,
        k_min: float | np.ndarray = 0.0,
        k_max: float | np.ndarray = np.inf,
        engine: str = "auto",
        threads: int = 0,
        wiring: str = "auto",
    ) -> None:
        k = np.array(conductances, dtype=float)
        if k.ndim != 2:
            raise ConfigError("<code>", "conductances", f"expected shape (B, E), got {k.shape}")
        b, e = k.shape
        nets = [networks] * b if isinstance(networks, Network) else list(networks)
        if len(nets) != b:
            raise ConfigError("<code>", "networks", f"expected {b} networks (one per row of conductances), got {len(nets)}")
        shapes = {(n.n_nodes, n.n_edges, len(n.inputs), len(n.outputs)) for n in nets}
        if len(shapes) != 1:
            raise ConfigError("<code>", "networks", f"networks differ in size or roles: {sorted(shapes)}")
        n_nodes, n_edges, n_in, n_out = shapes.pop()
        if n_edges != e:
            raise ConfigError("<code>", "conductances", f"expected {n_edges} edges per network, got {e}")
        self.b, self.e, self.n_in, self.n_out = b, e, n_in, n_out
        self.f = f = n_nodes - 1 - n_in
        if engine not in ("auto", "numba", "numpy"):
            raise ConfigError("<code>", "engine", f"expected 'auto', 'numba' or 'numpy', got {engine!r}")
        if engine == "numba" and not _kernels.HAVE_NUMBA:
            raise ConfigError("<code>", "engine", "engine 'numba' needs numba (pip install labnet[fast])")
        engine = ("numba" if _kernels.HAVE_NUMBA and f <= KERNEL_MAX else "numpy") if engine == "auto" else engine
        self.threads = max(1, min(int(threads), _kernels.THREADS)) if threads else _kernels.THREADS
        if wiring not in ("auto", "each"):
            raise ConfigError("<code>", "wiring", f"expected 'auto' or 'each', got {wiring!r}")
        self.shared = wiring == "auto" and (isinstance(networks, Network) or all(n is nets[0] for n in nets))
        self.engine = engine
        self.k = k  # stored transposed, (E, B), for the vectorised arithmetic
        self.alpha = np.broadcast_to(np.asarray(alpha, float), (b,)).copy()
        self.eta = np.broadcast_to(np.asarray(eta, float), (b,)).copy()
        self.k_min, self.k_max = k_min, k_max
        self._kmin_b = np.ascontiguousarray(np.broadcast_to(np.asarray(k_min, float), (b, e)))
        self._kmax_b = np.ascontiguousarray(np.broadcast_to(np.asarray(k_max, float), (b, e)))
        self._kmin_t = np.ascontiguousarray(self._kmin_b.T)
        self._kmax_t = np.ascontiguousarray(self._kmax_b.T)
        x = np.asarray(inputs, float)
        t = np.asarray(targets, float)
        self.inputs = np.broadcast_to(x, (b, *x.shape[-2:])) if x.ndim == 2 else x
        self.targets = np.broadcast_to(t, (b, *t.shape[-2:])) if t.ndim == 2 else t
        if self.inputs.shape[:2] != self.targets.shape[:2] or self.inputs.shape[2] != n_in or self.targets.shape[2] != n_out:
            raise ConfigError("<code>", "inputs", "inputs (B, S, n_in) and targets (B, S, n_out) do not match the networks")
        # per network: free-node relabelling, output positions, edge ends in [free | inputs | ground] space
        w = f + n_in  # columns of the assembled [L_ff | L_f,in]
        ends = np.empty((b, 2, e), dtype=np.int64)  # relabelled ends: 0..f-1 free, f..f+n_in-1 inputs, w ground
        out_pos = np.empty((b, n_out), dtype=np.int64)
        for i, net in enumerate(nets if not self.shared else nets[:1]):
            lab = np.empty(n_nodes, dtype=np.int64)
            held = net.indices([net.ground, *net.inputs])
            free = np.setdiff1d(np.arange(n_nodes), held)
            # reverse Cuthill–McKee order of the free nodes: a narrow band for the kernel's Cholesky
            sub = net.adjacency[free][:, free].tocsr()
            lab[free[reverse_cuthill_mckee(sub, symmetric_mode=True)]] = np.arange(f)
            lab[held[1:]] = f + np.arange(n_in)
            lab[held[0]] = w
            src, dst = net.edge_ends
            ends[i] = lab[src], lab[dst]
            out_pos[i] = lab[net.indices(net.outputs)]
        if self.shared:
            ends[:] = ends[0]
            out_pos[:] = out_pos[0]
        self.ends = ends
        both = (ends[:, 0] < f) & (ends[:, 1] < f)
        self.bw = int(np.max(np.abs(ends[:, 0] - ends[:, 1])[both], initial=0))  # half-bandwidth of L_ff
        self.out_pos = out_pos
        # scatter pattern of the augmented system [L_ff | −L_f,in | E_out], row stride ww:
        # edge (p, q) with p free adds +k at (p, p), −k at (p, q) for q free, +k at (p, q) for q an input
        ww = w + n_out
        self._ww = ww
        rows, cols, edges, signs = [], [], [], []
        ar = np.arange(e)
        for i in range(1 if self.shared else b):
            a, c = ends[i]
            for p, q in ((a, c), (c, a)):
                m = p < f
                m2 = m & (q < w)
                rows += [p[m] * ww + p[m], p[m2] * ww + q[m2]]
                edges += [ar[m], ar[m2]]
                signs += [np.ones(int(m.sum())), np.where(q[m2] < f, -1.0, 1.0)]
                cols.append(np.full(int(m.sum()) + int(m2.sum()), i))
        fww = f * ww
        r, nb, ed, sg = (np.concatenate(v) for v in (rows, cols, edges, signs))
        n_out_ar = np.arange(n_out)
        if self.shared:
            amap = np.zeros((f * ww, e))
            np.add.at(amap, (r, ed), sg)
            self._amap = amap  # (f·ww, E) @ kT (E, B) -> (f·ww, B)
            self._one_rows = out_pos[0] * ww + w + n_out_ar  # rows of the (f·ww, B) array holding E_out's ones
        else:
            self._flat = nb * fww + r  # index into a (B, f·ww) array: one network's system contiguous
            self._edge_flat = ed * b + nb  # index into kT.ravel()
            self._sign = sg
            self._one_flat = (np.arange(b)[:, None] * fww + out_pos * ww + w + n_out_ar[None, :]).ravel()
        # drops ΔV = V[a] − V[c] with V = [V_f, x, 0]: dense incidence (shared wiring) or a gather
        if self.shared:
            dfull = np.zeros((e, w + 1))
            dfull[ar, ends[0, 0]] += 1.0
            dfull[ar, ends[0, 1]] -= 1.0
            self._d_free = np.ascontiguousarray(dfull[:, :f])
            self._d_in = dfull[:, f:w]  # (E, n_in)
        else:
            bb = np.arange(b)[None, :]
            self._ia = ends[:, 0].T * b + bb  # (E, B) flat index into a (nodes·B) array
            self._ic = ends[:, 1].T * b + bb
        self._xs = np.ascontiguousarray(self.inputs.transpose(1, 2, 0))  # (S, n_in, B)
        self._ts = np.ascontiguousarray(self.targets.transpose(1, 2, 0))  # (S, n_out, B)
        self._xb = np.ascontiguousarray(self.inputs)  # (B, S, n_in) for the compiled kernel
        self._tb = np.ascontiguousarray(self.targets)
        u = np.concatenate([self._xs, self._ts], axis=1)  # (S, m, B)
        self._moments = np.einsum("sib,sjb->ijb", u, u) / u.shape[0]  # (m, m, B)

    @property
    def k(self) -> np.ndarray:
        """Conductances (S), shape (B, E)."""
        return self._kb if self.engine == "numba" else self._kt.T

    @k.setter
    def k(self, value: np.ndarray) -> None:
        v = np.asarray(value, dtype=float)
        if self.engine == "numba":
            self._kb = np.ascontiguousarray(v).copy()
        else:
            self._kt = np.ascontiguousarray(v.T)

    def _assemble(self) -> np.ndarray:
        """The augmented systems [L_ff | −L_f,in | E_out] of every network, shape (f, f + n_in + n_out, B)."""
        f, ww, b = self.f, self._ww, self.b
        kt = self._kt if self.engine == "numpy" else np.ascontiguousarray(self._kb.T)  # (E, B)
        if self.shared:
            m = self._amap @ kt
            m[self._one_rows] = 1.0
            return m.reshape(f, ww, b)
        m = np.bincount(self._flat, weights=kt.ravel()[self._edge_flat] * self._sign, minlength=f * ww * b)
        m[self._one_flat] = 1.0
        return m.reshape(b, f, ww).transpose(1, 2, 0)  # a view: each network's system stays contiguous

    def responses(self) -> tuple[np.ndarray, np.ndarray]:
        """G (f, n_in, B) and Z (f, n_out, B) of every network (see :meth:`CoupledLearning.responses`)."""
        f, n_in = self.f, self.n_in
        m = self._assemble()
        if f > 24:  # LAPACK per matrix beats the elimination loop for larger systems
            mb = m.transpose(2, 0, 1)  # (B, f, ww); LAPACK copies each matrix into its own buffer
            x = np.linalg.solve(mb[:, :, :f], mb[:, :, f:]).transpose(1, 2, 0)
        else:
            m = np.ascontiguousarray(m)  # the elimination works in place, batch axis last
            for j in range(f):  # forward elimination, vectorised over the batch
                row = m[j, j + 1 :]
                row /= m[j, j]
                m[j + 1 :, j + 1 :] -= m[j + 1 :, j, None, :] * row[None]
            x = m[:, f:]
            for j in range(f - 1, 0, -1):  # back substitution (rows already scaled by their pivots)
                x[:j] -= m[:j, j : j + 1] * x[j : j + 1]
        return x[:, :n_in], x[:, n_in:]

    def _edge_drops(self, x: np.ndarray, with_inputs: bool) -> np.ndarray:
        """Edge drops of node responses x (f, c, B) -> (c, E, B); input nodes at identity if ``with_inputs``."""
        f, b = self.f, self.b
        c = x.shape[1]
        if self.shared:
            out = self._d_free @ x.transpose(1, 0, 2)  # (c, E, B)
            if with_inputs:
                out += self._d_in.T[:, :, None]
            return out
        full = np.zeros((c, f + self.n_in + 1, b))
        full[:, :f] = x.transpose(1, 0, 2)
        if with_inputs:
            full[np.arange(c), f + np.arange(c)] = 1.0
        flat = full.reshape(c, -1)
        return np.take(flat, self._ia, axis=1) - np.take(flat, self._ic, axis=1)

    def gradient(self) -> tuple[np.ndarray, np.ndarray]:
        """Δk (S), shape (B, E), of the continuous rule over each network's samples, and errors (B,) (V²)."""
        g, z = self.responses()
        n_in, n_out = self.n_in, self.n_out
        bi = np.arange(self.b)
        g_out = g[self.out_pos.T, :, bi].transpose(0, 2, 1)  # (n_out, n_in, B)
        s = z[self.out_pos.T, :, bi].transpose(0, 2, 1)  # (n_out, n_out, B)
        q_f = self._edge_drops(g, True)  # (n_in, E, B) drops per input volt
        dz = self._edge_drops(z, False)  # (n_out, E, B)
        if n_out == 1:
            s_inv = 1.0 / s
        elif n_out == 2:
            det = s[0, 0] * s[1, 1] - s[0, 1] * s[1, 0]
            s_inv = np.stack([np.stack([s[1, 1], -s[0, 1]]), np.stack([-s[1, 0], s[0, 0]])]) / det
        else:
            s_inv = np.linalg.inv(s.transpose(2, 0, 1)).transpose(1, 2, 0)
        eta = self.eta
        r = [sum(dz[k] * (eta * s_inv[k, j]) for k in range(n_out)) for j in range(n_out)]  # η D_f Z S⁻¹
        xs, ts = self._xs, self._ts
        n_s = xs.shape[0]
        out = np.einsum("ojb,sjb->sob", g_out, xs)  # (S, n_out, B) free outputs
        err = np.mean((out - ts) ** 2, axis=(0, 1))
        acc = np.zeros((self.e, self.b))
        if n_s <= n_in + n_out:  # explicit per sample
            for si in range(n_s):
                dv_f = sum(q_f[j] * xs[si, j] for j in range(n_in))
                d = ts[si] - out[si]  # (n_out, B)
                delta = sum(r[k] * d[k] for k in range(n_out))
                acc -= delta * (2.0 * dv_f + delta)
            acc /= n_s
        else:  # second moments of [x; t]: mean (ΔV^F)² − mean (ΔV^C)²
            q_c = [q_f[j] - sum(r[k] * g_out[k, j] for k in range(n_out)) for j in range(n_in)] + r
            m = self._moments
            for i in range(n_in + n_out):
                for j in range(n_in + n_out):
                    term = q_c[i] * q_c[j]
                    if i < n_in and j < n_in:
                        term = q_f[i] * q_f[j] - term
                    else:
                        term = -term
                    acc += term * m[i, j]
        acc *= self.alpha / eta
        return acc.T, err  # (B, E)

    def step(self) -> np.ndarray:
        """One full-batch step of every network; returns each network's mean free error (V²), shape (B,)."""
        if self.engine == "numba":
            return self._run_kernel(1)[0]
        dk, err = self.gradient()
        kt = self._kt
        kt += dk.T
        np.maximum(kt, self._kmin_t, out=kt)
        np.minimum(kt, self._kmax_t, out=kt)
        return err

    def _run_kernel(self, steps: int) -> np.ndarray:
        errs = np.empty((steps, self.b))
        args = (self._kb, self.ends, self.out_pos, self._xb, self._tb, self.alpha, self.eta,
                self._kmin_b, self._kmax_b, self.f, steps, errs, self.bw)
        if self.threads > 1 and self.b >= 64 * self.threads:
            _kernels.train_small_parallel(*args, self.threads)
        else:
            _kernels.train_small(*args)
        return errs

    def train(self, steps: int) -> np.ndarray:
        """``steps`` steps; per-step errors (V²) measured before each update, shape (steps, B)."""
        if self.engine == "numba":
            return self._run_kernel(steps)
        return np.stack([self.step() for _ in range(steps)])
