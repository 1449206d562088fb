"""The page of ``labnet report``: one list of blocks rendered twice, as ``report.md`` and as a
self-contained ``report.html`` (every figure embedded as a base64 PNG, no external file, no
script), plus the figure helpers every report kind shares (Agg backend, atomic PNG writes,
step axes that go logarithmic on long runs, legends that scale with the number of entries).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labnet.session.folder import atomic_write_text

#: A run longer than this (steps) gets a symmetric-log step axis (linear up to 10 steps).
LOG_STEPS_FROM = 1000


def plt() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def save_figure(fig: Any, path: Path, *, tight: bool = True, dpi: int = 110) -> None:
    """Lay out (unless the figure places its own legend and colour bar), write the PNG
    atomically (:func:`labnet.app.figfiles.save_figure`: rendered in memory, temp file, fsync,
    ``os.replace`` — a reader or a SIGTERM never leaves half a figure or a temp file), close the figure."""
    from labnet.app import figfiles

    if tight:
        fig.tight_layout()
    try:
        figfiles.save_figure(fig, path, dpi=dpi)
    finally:
        plt().close(fig)


def step_axis(ax: Any, last_step: float) -> None:
    """Label the x axis "training step"; symmetric-log past :data:`LOG_STEPS_FROM` steps so the
    early learning of a long run is not squeezed into the first pixels."""
    ax.set_xlabel("training step" + (" (log scale past 10)" if last_step > LOG_STEPS_FROM else ""))
    if last_step > LOG_STEPS_FROM:
        ax.set_xscale("symlog", linthresh=10, linscale=0.5)
        ax.set_xlim(0, last_step * 1.05)


def edge_colors(n: int) -> list[Any]:
    """``n`` distinguishable colours: tab10/tab20 up to 20, then evenly spaced on ``turbo``."""
    p = plt()
    if n <= 10:
        return [p.get_cmap("tab10")(j) for j in range(n)]
    if n <= 20:
        return [p.get_cmap("tab20")(j) for j in range(n)]
    cmap = p.get_cmap("turbo")
    return [cmap(0.05 + 0.9 * j / (n - 1)) for j in range(n)]


def scaled_legend(ax: Any, n: int, *, per_column: int = 16) -> Any:
    """A legend outside the axes on the right with ``ceil(n / per_column)`` columns and a font
    that shrinks with ``n`` (every entry stays readable and inside the figure once it is laid
    out with ``tight_layout``), or ``None`` when the axes have no labelled artists."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    ncol = max(1, -(-n // per_column))
    size = 8 if n <= 16 else 7 if n <= 32 else 6
    return ax.legend(handles, labels, fontsize=size, ncol=ncol, loc="center left", bbox_to_anchor=(1.01, 0.5),
                     frameon=False, handlelength=1.2, columnspacing=0.8)


@dataclass
class Page:
    """A report page: a title and blocks, each ``(kind, payload)``.

    kinds: ``"p"`` (a paragraph: str), ``"table"`` ((header row, rows) of str cells), ``"h2"``
    (str), ``"fig"`` ((file name, caption)), ``"code"`` (preformatted str).
    """

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def h2(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", (header, rows)))

    def fig(self, name: str, caption: str) -> None:
        self.blocks.append(("fig", (name, caption)))

    def code(self, text: str) -> None:
        self.blocks.append(("code", text))

    @property
    def figures(self) -> list[str]:
        return [b[1][0] for b in self.blocks if b[0] == "fig"]

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, x in self.blocks:
            if kind == "p":
                out += [x, ""]
            elif kind == "h2":
                out += [f"## {x}", ""]
            elif kind == "table":
                header, rows = x
                out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                out += ["| " + " | ".join(r) + " |" for r in rows] + [""]
            elif kind == "fig":
                out += [f"## {x[1]}", "", f"![{x[1]}]({x[0]})", ""]
            elif kind == "code":
                out += ["```", x, "```", ""]
        return "\n".join(out)

    def html(self, folder: Path) -> str:
        """The page as one HTML document; figures read from ``folder`` and embedded (base64)."""
        e = html.escape
        body = [f"<h1>{e(self.title)}</h1>"]
        for kind, x in self.blocks:
            if kind == "p":
                body.append(f"<p>{_inline(x)}</p>")
            elif kind == "h2":
                body.append(f"<h2>{e(x)}</h2>")
            elif kind == "table":
                header, rows = x
                body.append("<table><thead><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in header) + "</tr></thead><tbody>"
                            + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rows)
                            + "</tbody></table>")
            elif kind == "fig":
                data = base64.b64encode((folder / x[0]).read_bytes()).decode("ascii")
                body.append(f'<figure><img alt="{e(x[1])}" src="data:image/png;base64,{data}">'
                            f"<figcaption>{e(x[1])} (<code>{e(x[0])}</code>)</figcaption></figure>")
            elif kind == "code":
                body.append(f"<pre>{e(x)}</pre>")
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{e(self.title)}</title><style>{_CSS}</style></head>\n<body>\n"
                + "\n".join(body) + "\n</body></html>\n")

    def write(self, folder: Path) -> Path:
        """Write ``report.md`` and ``report.html`` into ``folder`` (atomically); return report.md's path."""
        atomic_write_text(folder / "report.md", self.markdown())
        atomic_write_text(folder / "report.html", self.html(folder))
        return folder / "report.md"


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}"
        "th{background:#eee}img{max-width:100%;border:1px solid #ddd}figure{margin:1.5em 0}"
        "figcaption{color:#555;font-size:90%}pre{background:#f6f6f6;padding:.6em;overflow-x:auto}"
        "code{background:#f2f2f2;padding:0 3px}")


def _inline(text: str) -> str:
    """Escape ``text`` and turn Markdown's `code` spans into ``<code>``."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{s}</code>" if i % 2 else s for i, s in enumerate(parts))


__all__ = ["LOG_STEPS_FROM", "Page", "edge_colors", "plt", "save_figure", "scaled_legend", "step_axis"]
