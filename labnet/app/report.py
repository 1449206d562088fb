"""``labnet report FOLDER``: figures (PNG), ``report.md`` and a self-contained ``report.html``
for any session folder — training (``labnet run``/``resume``), calibration, probe — or a sweep.

Dispatch (:func:`write_report`) is by :func:`labnet.app.report_data.folder_kind`; a folder that
is no session raises :class:`~labnet.core.errors.ConfigError` (exit 2). A session that stopped
or failed, even before its first row, gets a **partial** report: the page says how the run ended
(``status.json``) and shows only the figures its rows support.

A training session's figures (in the session folder):

* ``error.png`` — train and test error vs step;
* ``trajectories.png`` — every edge's code and model conductance vs step;
* ``network.png`` — the network drawn with edge width and colour by conductance, before/after;
* ``spectrum.png`` — eigenvalues of the free-state Hessian before vs after (log scale);
* ``alignment.png`` — each mode's share of the task response, and |f_n|, |a_n|, vs mode index;
* ``deff_gbar.png`` — model D_eff and ḡ vs step;
* ``deff_measured.png`` — probe-measured vs model D_eff (model only, marked, without probes);
* ``outputs_vs_targets.png`` — measured outputs vs targets at the first and last evaluation;
* ``histograms.png`` — code and conductance histograms at the first and last step;
* ``confusion.png`` (classification) — confusion matrices, accuracy in the page.

Step axes become symmetric-log past 1,000 steps; legends grow columns with the edge count.
Calibration and probe reports are :mod:`labnet.app.report_kinds`, the sweep report
:mod:`labnet.app.sweep_report`; the page model and figure helpers :mod:`labnet.app.report_page`.
"""

from __future__ import annotations

from pathlib import Path

from labnet.app.report_data import SessionData, compute_tracking, folder_kind, load_session_data
from labnet.app.report_figs import TRAIN_FIGURES, layout
from labnet.app.report_page import Page
from labnet.app.report_task import confusion, eval_steps, fig_confusion, fig_histograms, fig_outputs_vs_targets

#: The figures every complete training session's report has.
FIGURES = (*TRAIN_FIGURES, "outputs_vs_targets.png", "histograms.png")
#: Added for a classification task.
CLASSIFICATION_FIGURES = ("confusion.png",)


def write_report(folder: str | Path) -> Path:
    """Write the figures, ``report.md`` and ``report.html`` of any session or sweep folder;
    return report.md's path. :class:`ConfigError` when ``folder`` is not one."""
    f = Path(folder)
    kind = folder_kind(f)
    if kind == "sweep":
        from labnet.app.sweep_report import write_sweep_report

        return write_sweep_report(f)
    if kind == "calibrate":
        from labnet.app.report_kinds import calibration_page

        return calibration_page(f).write(f)
    if kind == "probe":
        from labnet.app.report_kinds import probe_page

        return probe_page(f).write(f)
    return train_page(f).write(f)


def train_page(folder: Path) -> Page:
    """Draw a training session's figures and build its page (partial when the run did not complete)."""
    if not (folder / "session.csv").is_file():  # failed or stopped before its first row
        page = Page(f"labnet report — {folder.name}")
        _ending(page, folder, None)
        page.p("No state was recorded (session.csv is missing): nothing to plot.")
        return page
    d = load_session_data(folder)
    proto = d.header.get("protocol", {})
    page = Page(f"labnet report — {proto.get('name', folder.name)}")
    _ending(page, folder, d)
    if not d.has_rows:
        page.p("No complete state was recorded: nothing to plot.")
        return page
    page.p(f"Session `{folder.name}`; rig `{d.header.get('rig', {}).get('name', '?')}`; {d.network.n_nodes} nodes, "
           f"{d.network.n_edges} edges; conductances from the {d.model_name} model; steps "
           f"{int(d.codes.index.min())}–{int(d.codes.index.max())}.")
    _numbers(page, folder, d)
    _kept(page, folder, d)
    figs: list[tuple[str, str]] = []
    for name, (fn, caption) in TRAIN_FIGURES.items():
        if name in ("spectrum.png", "alignment.png", "deff_gbar.png", "deff_measured.png") and d.tracking.empty:
            continue
        fn(d, folder / name)
        figs.append((name, caption))
    if d.task is not None and eval_steps(d):
        fig_outputs_vs_targets(d, folder / "outputs_vs_targets.png")
        figs.append(("outputs_vs_targets.png", "Outputs vs targets"))
    fig_histograms(d, folder / "histograms.png")
    figs.append(("histograms.png", "Code and conductance histograms"))
    steps = eval_steps(d)
    if steps and (confusion(d, steps[-1], "test") or confusion(d, steps[-1], "train")):
        fig_confusion(d, folder / "confusion.png")
        figs.append(("confusion.png", "Confusion matrix"))
    for name, caption in figs:
        page.fig(name, caption)
    return page


def _ending(page: Page, folder: Path, d: SessionData | None) -> None:
    """A partial-report notice when status.json says the run did not complete."""
    from labnet.session.folder import read_status

    st = d.status if d is not None else read_status(folder)
    if st is None or st.get("status") == "completed":
        return
    last = int(d.codes.index.max()) if d is not None and d.has_rows else None
    at = f" at step {st['step']}" if st.get("step") is not None else ""
    upto = f"; rows up to step {last}" if last is not None else "; no complete state recorded"
    page.p(f"**Partial report**: the run is {st.get('status')} ({st.get('reason') or 'no reason recorded'}){at}{upto}.")


def _kept(page: Page, folder: Path, d: SessionData) -> None:
    """Which state the run ended in: ``keep`` from the header, the last ``# kept`` line if any."""
    from labnet.session.folder import read_markers

    keep = d.header.get("train", {}).get("keep", "final")
    marks = read_markers(folder / "session.csv", "kept")
    if not marks:
        if keep == "best" and (d.status or {}).get("status") == "completed":
            page.p("Kept state: `keep = best`, and the last evaluation was the best one: the run ends in its final state.")
        elif keep == "final":
            page.p("Kept state: the final one (`keep = final`).")
        return
    k = marks[-1]
    m = k["remeasured"]
    page.p(f"Kept state: `keep = best` wrote back the codes of step {k['from_step']} (train error "
           f"{k['best_train_mse']:.4g} V² then) over those of step {k['final_step']} ({k['final_train_mse']:.4g} V²); "
           f"re-measured (rows `phase = kept`): train {m['train']['mse']:.4g} V², test {m['test']['mse']:.4g} V². "
           f"The table's \"after\" column is the last evaluation (step {k['final_step']}).")


def _numbers(page: Page, folder: Path, d: SessionData) -> None:
    """The before/after table (errors, accuracy, model and probe quantities, each saying what it
    is computed over) and ``report.json`` with the same numbers (:mod:`labnet.app.report_numbers`)."""
    from labnet.app.report_numbers import definitions, table_rows, write_numbers
    from labnet.session.folder import read_markers

    marks = read_markers(folder / "session.csv", "kept")
    doc = write_numbers(folder, d, marks[-1] if marks else None)
    rows = table_rows(doc)
    if rows:
        page.table(["quantity", "before", "after", "computed over"], rows)
        page.p("Definitions — " + "; ".join(definitions(doc)) + ".")
    if not d.tracking.empty:
        t = d.tracking.sort_values("step")
        a, b = t.iloc[0], t.iloc[-1]
        page.p(f"Raw overlaps of the softest mode of H_F: abs(f_0) {abs(a['f0']):.3g} → {abs(b['f0']):.3g} A, "
               f"abs(a_0) {abs(a['a0']):.3g} → {abs(b['a0']):.3g}. D_eff(H_F) is the participation ratio "
               "(Σλ⁻²)²/Σλ⁻⁴; the talk's formula is one third of it (see labnet.core.analysis). Every number of "
               "this table, with its definition, is in report.json.")


__all__ = ["CLASSIFICATION_FIGURES", "FIGURES", "compute_tracking", "layout", "load_session_data", "train_page",
           "write_report"]
