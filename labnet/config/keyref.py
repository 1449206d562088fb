"""The reference of every key a person can write, generated from the validators themselves.

``python -m labnet.config.keyref`` validates every shipped file (``protocols/``: rigs, training
protocols of each task kind, calibrate, probe, sweeps) plus a few snippets that reach branches no
shipped file takes, under :class:`labnet.config.schema.recording`, and writes what the
validators read — key, type, unit, default or "required", range/choices, an example value and
which files read it — to ``protocols/KEYS.md``. The reference therefore cannot drift from the
validation: ``tests/test_keyref.py`` regenerates it and fails when the file is stale, and checks
that every key name a validator reads literally appears in it.

Units come from the key-name convention (``_v`` volts, ``_a`` amperes, ``_ohm`` ohms,
``_siemens`` siemens, ``_s`` seconds, ``_hz`` hertz, ``_kelvin`` kelvin, …).
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labnet.config.schema import KeyRead, read_toml, recording
from labnet.config.shipped import shipped_root

#: Key-name suffix -> unit (the project's convention: units in key names).
UNITS = (("_siemens", "S"), ("_ohm", "Ω"), ("_kelvin", "K"), ("_hz", "Hz"), ("_ms", "ms"), ("_us", "µs"),
         ("_v", "V"), ("_a", "A"), ("_s", "s"), ("_pct", "%"))

#: Sections of the reference, in order: (title, what the files are).
SECTIONS = {
    "rig": ("Rig files", "`protocols/rigs/*.toml`: the network, parts, limits, instruments and simulator of a bench"),
    "train": ("Training protocols", "`[protocol] kind = \"train\"` (`labnet run`): allostery, regression, classification"),
    "calibrate": ("Calibrate protocols", "`[protocol] kind = \"calibrate\"` (`labnet calibrate`)"),
    "probe": ("Probe protocols", "`[protocol] kind = \"probe\"` (`labnet probe`)"),
    "sweep": ("Sweep files", "`protocols/sweeps/*.toml` (`labnet sweep`); every `[base]` key may also be an axis parameter"),
}

# Files that reach validator branches no shipped file takes (each is validated like a user's file).
_EXTRA: dict[str, list[tuple[str, str]]] = {
    "sweep": [("random_axis.toml", '[sweep]\n[[axis]]\nrandom = { param = "eta", low = 0.2, high = 0.9, n = 2, log = true }\n')],
    # a training protocol with the optional [analysis] table (allostery.toml + the table, rig path absolute)
    "train": [("with_analysis.toml", "@allostery.toml\n[analysis]\ntrack_every = 10\nprobe_every = 50\n")],
    # a rig with the optional [simulator.wiring] table (wiring faults for testing `labnet doctor`)
    "rig": [("with_wiring.toml", "@rigs/sim16.toml\n[simulator.wiring]\nopen_edges = [3]\nshorted_edges = [7]\n"
             "swapped_edges = [[2, 9]]\nswapped_meter_channels = [[\"104\", \"107\"]]\nloaded_nodes = { n5 = 2000.0 }\n")],
}


class _FileName:
    def __repr__(self) -> str:
        return "the file's name"


#: Shown as the default of keys that default to the file's own name (``rig.name``, ``protocol.name``).
FILE_NAME = _FileName()


@dataclass
class Entry:
    """What the reference says about one key (merged over every read of it; required only when
    no read gave it a default)."""

    key: str
    kinds: set[str] = field(default_factory=set)
    required: bool = True
    defaults: list[Any] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    example: Any = None
    files: set[str] = field(default_factory=set)


def normalise(key: str) -> str:
    """``axis[2].grid.demand[0]`` -> ``axis[].grid.demand[]``: one entry for every list item; the
    rig's own instrument names (``instruments.sources.psu1``) -> ``instruments.sources.<name>``,
    its node names in ``release.switch_channels`` -> ``release.switch_channels.<node>``."""
    key = re.sub(r"\[\d+\]", "[]", key)
    key = re.sub(r"^release\.switch_channels\.[^.]+$", "release.switch_channels.<node>", key)
    return re.sub(r"^instruments\.sources\.[^.]+", "instruments.sources.<name>", key)


def unit_of(key: str) -> str:
    """The unit the key's name declares ("" when none)."""
    leaf = key.rsplit(".", 1)[-1].rstrip("[]")
    for suffix, unit in UNITS:
        if leaf.endswith(suffix):
            return unit
    return ""


def _loaders() -> dict[str, Callable[[Path], Any]]:
    from labnet.config.calibrate_file import load_calibrate_protocol
    from labnet.config.probe_file import load_probe_protocol
    from labnet.config.protocol import load_protocol
    from labnet.config.rigfile import load_rig
    from labnet.config.sweep_file import load_sweep

    return {"rig": load_rig, "train": load_protocol, "calibrate": load_calibrate_protocol,
            "probe": load_probe_protocol, "sweep": load_sweep}


def shipped_files() -> list[tuple[str, Path]]:
    """Every shipped file with its section (rig, train, calibrate, probe, sweep)."""
    root = shipped_root()
    out = [("rig", p) for p in sorted((root / "rigs").glob("*.toml"))]
    for p in sorted(root.glob("*.toml")):
        kind = read_toml(p).get("protocol", {}).get("kind", "train")
        out.append((kind if kind in SECTIONS else "train", p))
    out += [("sweep", p) for p in sorted((root / "sweeps").glob("*.toml"))]
    return out


def collect() -> dict[str, dict[str, Entry]]:
    """Validate every shipped (and extra) file while recording; entries by section and key."""
    loaders = _loaders()
    files = shipped_files()
    out: dict[str, dict[str, Entry]] = {s: {} for s in SECTIONS}
    with tempfile.TemporaryDirectory() as tmp:
        for section, snippets in _EXTRA.items():
            for name, text in snippets:
                if text.startswith("@"):  # a shipped file plus lines, its rig path made absolute
                    first, rest = text[1:].split("\n", 1)
                    base = shipped_root() / first
                    text = base.read_text(encoding="utf-8").replace('rig = "rigs/', f'rig = "{base.parent.as_posix()}/rigs/')
                    text += "\n" + rest
                p = Path(tmp) / name
                p.write_text(text.lstrip(), encoding="utf-8")
                files.append((section, p))
        for section, path in files:
            with recording() as reads:
                loaders[section](path)
            _merge(out, section, path, reads)
    return out


def _merge(out: dict[str, dict[str, Entry]], section: str, path: Path, reads: Iterable[KeyRead]) -> None:
    for r in reads:
        sec = section if Path(r.file) == path else "rig"  # a protocol also validates its rig file
        key = normalise(r.key)
        e = out[sec].setdefault(key, Entry(key))
        e.kinds.add(r.kind)
        e.files.add(Path(r.file).name)
        if not r.required:
            e.required = False
        if not r.required and r.kind != "table":
            d = FILE_NAME if isinstance(r.default, str) and r.default and r.default == Path(r.file).stem else r.default
            if not any(_same(d, x) for x in e.defaults):
                e.defaults.append(d)
        for name, value in r.checks:
            e.checks[name] = value
        if r.given and e.example is None and r.kind != "table":
            e.example = r.value


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _fmt(v: Any, width: int = 48) -> str:
    if isinstance(v, str) and v.startswith("(") and v.endswith(")"):
        text = v  # a phrase, not a value
    else:
        text = repr(v) if not isinstance(v, str) else f'"{v}"'
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _checks(e: Entry) -> str:
    c = e.checks
    parts = []
    if "choices" in c:
        parts.append("one of " + ", ".join(f"`{x}`" for x in c["choices"]))
    lo, hi = c.get("lo"), c.get("hi")
    if lo is not None or hi is not None:
        left = "" if lo is None else f"{lo} {'<' if c.get('lo_open') else '≤'} "
        right = "" if hi is None else f" ≤ {hi}"
        parts.append(f"{left}x{right}")
    if "length" in c:
        parts.append(f"{c['length']} values")
    return "; ".join(parts)


def render(entries: dict[str, dict[str, Entry]]) -> str:
    """The markdown reference."""
    lines = ["# Every key of labnet's files", "",
             "Generated by `python -m labnet.config.keyref` from the validators (do not edit by hand;",
             "`tests/test_keyref.py` fails when this file is stale). A key is *required* unless a default is",
             "shown; the unit comes from the key's name. `[]` stands for any list index. Files: the shipped",
             "files (and test snippets) whose validation read the key.", ""]
    for sec, (title, what) in SECTIONS.items():
        lines += [f"## {title}", "", what + ".", "", "| key | type | unit | default | range / choices | example | read for |",
                  "|---|---|---|---|---|---|---|"]
        for key in sorted(entries[sec]):
            e = entries[sec][key]
            shown = " or ".join("unset" if d is None else _fmt(d, 40) for d in e.defaults)
            default = shown or ("required" if e.required else "optional")
            example = "" if e.example is None else f"`{_fmt(e.example)}`"
            lines.append(f"| `{key}` | {' / '.join(sorted(e.kinds))} | {unit_of(key)} | {default} | {_checks(e)} | "
                         f"{example} | {', '.join(sorted(e.files))} |")
        lines.append("")
    return "\n".join(lines)


def reference_path() -> Path:
    """Where the reference lives (beside the files it documents)."""
    return shipped_root() / "KEYS.md"


def main(argv: list[str] | None = None) -> int:
    """Write ``protocols/KEYS.md`` (``--check``: exit 1 if it is stale instead)."""
    args = sys.argv[1:] if argv is None else argv
    text = render(collect())
    path = reference_path()
    if "--check" in args:
        same = path.exists() and path.read_text(encoding="utf-8") == text
        print(f"{path}: {'up to date' if same else 'stale: run python -m labnet.config.keyref'}")
        return 0 if same else 1
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
