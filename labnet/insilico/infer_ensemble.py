"""An ensemble test of :mod:`labnet.core.infer`: train random allostery tasks, probe, rank, score.

Per network (seeded): a random connected network (``nodes``, ``edges``; 2 inputs, 1 output,
ground), conductances uniform in [k_lo, k_hi] S, one random allostery task (input voltages
uniform in [0.2, 1] V, the target the untrained output ± 0.3·max input, clipped to [0, 1] V),
trained by continuous coupled learning in silico. The probe, as on the bench
(``protocols/probe.toml``): the inputs and ``decoys`` other random non-output nodes driven with
``samples`` voltage patterns uniform in [v_min, v_max] V (the decoys and the order of the drive
list random), every other non-ground node measured with Gaussian meter noise ``noise_v`` (V),
before and after training. :func:`labnet.core.infer.infer_roles` ranks from the responses alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labnet.core.analysis import transfer_matrix
from labnet.core.generators import random_network
from labnet.core.infer import fit_transfer, infer_roles, topk_hits
from labnet.insilico.trainer import CoupledLearning


@dataclass(frozen=True)
class EnsembleSpec:
    """One ensemble's settings (units in the names; see the module docstring)."""

    networks: int = 50
    nodes: int = 10
    edges: int = 20
    decoys: int = 2
    samples: int = 200
    v_min: float = 0.0
    v_max: float = 0.5
    noise_v: float = 1e-4
    k_lo_siemens: float = 1e-4
    k_hi_siemens: float = 1e-3
    alpha: float = 1e-3
    eta: float = 0.1
    steps: int = 2000
    seed: int = 0


def _probe(net_t: np.ndarray, rng: np.random.Generator, spec: EnsembleSpec) -> np.ndarray:
    """Simulated probe of a network with transfer ``net_t`` (F, D); returns the fitted T (F, D)."""
    v = rng.uniform(spec.v_min, spec.v_max, (spec.samples, net_t.shape[1]))
    x = v @ net_t.T + rng.normal(0.0, spec.noise_v, (spec.samples, net_t.shape[0]))
    return fit_transfer(v, x)


def run_one(index: int, spec: EnsembleSpec) -> dict[str, float]:
    """Train network ``index`` and score both estimators: keys ``<method>_<in|out>_top<k>``,
    the final task error ``err_v`` (V) and the numbers of candidates ``n_drive``, ``n_measured``."""
    rng = np.random.default_rng([spec.seed, index])
    net = random_network(spec.nodes, spec.edges, seed=rng, n_inputs=2, n_outputs=1)
    others = [n for n in net.nodes if n not in net.inputs and n not in net.outputs and n != net.ground]
    drive = list(net.inputs) + [str(n) for n in rng.choice(others, spec.decoys, replace=False)]
    drive = [drive[i] for i in rng.permutation(len(drive))]
    k0 = rng.uniform(spec.k_lo_siemens, spec.k_hi_siemens, net.n_edges)
    vin = rng.uniform(0.2, 1.0, (1, len(net.inputs)))
    t_in, free_in = transfer_matrix(net, k0, list(net.inputs))
    out_row = [list(free_in).index(net.nodes.index(o)) for o in net.outputs]
    out0 = t_in[out_row] @ vin[0]
    target = np.clip(out0 + rng.choice([-1.0, 1.0]) * 0.3 * vin.max(), 0.0, 1.0).reshape(1, -1)
    cl = CoupledLearning(net, k0.copy(), vin, target, alpha=spec.alpha, eta=spec.eta,
                         k_min=spec.k_lo_siemens / 10, k_max=spec.k_hi_siemens * 10, method="dense")
    cl.train(spec.steps)
    t0, free = transfer_matrix(net, k0, drive)
    t1, _ = transfer_matrix(net, cl.k, drive)
    measured = [net.nodes[i] for i in free]
    before, after = _probe(t0, rng, spec), _probe(t1, rng, spec)
    out: dict[str, float] = {"err_v": float(np.abs(cl.outputs(vin) - target).max()),
                             "n_drive": float(len(drive)), "n_measured": float(len(measured))}
    for method, tb in (("change", before), ("single", None)):
        inf = infer_roles(after, drive, measured, tb)
        for k in (1, 2):
            out[f"{method}_in_top{k}"] = topk_hits(inf.inputs, net.inputs, k)
            out[f"{method}_out_top{k}"] = topk_hits(inf.outputs, net.outputs, k)
    return out


def run_ensemble(spec: EnsembleSpec) -> list[dict[str, float]]:
    """:func:`run_one` for every network of the ensemble."""
    return [run_one(i, spec) for i in range(spec.networks)]


__all__ = ["EnsembleSpec", "run_ensemble", "run_one"]
