"""One name, one symbol and one definition per quantity labnet reports (issue 15, item 7).

Three different "D_eff" used to appear unlabelled in one session's report, figures and probe
output, with opposite trends — because each is computed over something else. Every table,
figure label, ``report.json`` entry and probe summary takes its symbol and definition from
:data:`QUANTITIES`, so each says what it is computed over:

* ``H_F`` — the **free-node Hessian of the voltage-driven network**: the Laplacian restricted to
  the nodes that float in the free state (all but ground and the input nodes, which are held at
  their voltages); its spectrum gives λ_min, the mode shares, D_eff(H_F) and ḡ(H_F) — model
  quantities, from the recorded codes through the rig's conductance model (calibration table or
  nominal part);
* ``probe`` — **measured** responses of the free nodes to random voltages at the probe's drive
  nodes (a tracking probe during training, or ``labnet probe``); D_eff(probe) is the
  participation ratio of their covariance, D_eff(probe model) the same ensemble through the model.

D_eff(H_F) counts all free-node directions under isotropic random *forces*; D_eff(probe) only
the directions reachable from the few drive nodes — they need not move together.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quantity:
    """A reported quantity: ``symbol`` (what tables and figures print), ``unit`` ("" for none),
    ``over`` (what it is computed over, short) and ``definition`` (one sentence)."""

    name: str
    symbol: str
    unit: str
    over: str
    definition: str

    def label(self) -> str:
        """``symbol [unit]`` for a table row or an axis."""
        return f"{self.symbol} ({self.unit})" if self.unit else self.symbol


_H_F = "H_F: free nodes, voltage-driven (ground and inputs held); model conductances"
#: what H is over when the inputs are forces (current sources): ground alone is held
H_FORCE_OVER = "H: every non-ground node, force inputs (current sources; ground held); model conductances"
_PROBE = "probe: measured free-node voltages, random voltages at the drive nodes"

QUANTITIES: dict[str, Quantity] = {q.name: q for q in (
    Quantity("train_mse", "train error", "V²", "train samples, free state",
             "mean squared output error (V_out − V_target)² over the train samples in an evaluation's free states"),
    Quantity("test_mse", "test error", "V²", "test samples, free state",
             "mean squared output error (V_out − V_target)² over the test samples in an evaluation's free states"),
    Quantity("train_accuracy", "train accuracy", "", "train samples", "fraction of train samples classified correctly"),
    Quantity("test_accuracy", "test accuracy", "", "test samples", "fraction of test samples classified correctly"),
    Quantity("lambda_min", "λ_min(H_F)", "S", _H_F,
             "smallest eigenvalue of H_F = L_FF, the Laplacian on the nodes that float in the free state"),
    Quantity("softest_share", "c₀/Σc (H_F)", "", _H_F,
             "share of the task response A·H_F⁻¹F = Σ_n c_n carried by the softest mode, c_n = f_n a_n / λ_n "
             "(f_n: the input force's overlap with mode n, a_n: the output functional's)"),
    Quantity("softest_abs_share", "abs(c₀)/Σabs(c) (H_F)", "", _H_F,
             "the softest mode's share without cancellations, abs(c_0) / Σ_n abs(c_n)"),
    Quantity("deff_model", "D_eff(H_F)", "", _H_F,
             "participation ratio (Σλ⁻²)²/Σλ⁻⁴ of H_F's spectrum: the dimension of the free nodes' responses "
             "to isotropic random forces on them (the talk's D_eff is one third of it)"),
    Quantity("gbar", "ḡ(H_F)", "Ω", _H_F,
             "sqrt(Σλ⁻²) over H_F's spectrum: rms free-node response per unit rms isotropic random force"),
    Quantity("deff_probe", "D_eff(probe)", "", _PROBE,
             "participation ratio (tr C)²/tr C² of the covariance C of the measured free-node voltages under "
             "random voltages at the probe's drive nodes"),
    Quantity("deff_probe_model", "D_eff(probe model)", "", "probe ensemble through the model conductances",
             "D_eff(probe) computed from the rig's model instead of measured: same drive nodes, same voltage range"),
)}



def over(name: str, force_inputs: bool = False) -> str:
    """What quantity ``name`` is computed over; for a network whose inputs are current sources
    the Hessian quantities are over every non-ground node (:data:`H_FORCE_OVER`)."""
    q = QUANTITIES[name]
    return H_FORCE_OVER if force_inputs and q.over == _H_F else q.over


__all__ = ["H_FORCE_OVER", "QUANTITIES", "Quantity", "over"]
