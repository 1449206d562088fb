"""The bench documentation (``BENCH.md``), generated from a rig file and the firmware's pin table.

``python -m labnet.app.benchdoc [RIG] [--check]`` writes the wiring tables (every edge: its
digipot chip, chip-select pin and the two nodes its rheostat terminals go to; every node: meter
channel, source channel, ground), the bill of materials counted from the rig, the flashing
steps and the first-bench checklist. The pin assignment is read from
``drivers/firmware/README.md``'s pin table (itself checked against the firmware source by
``tests/test_firmware_pins.py``), so a wiring table cannot disagree with the rig file or the
firmware: ``tests/test_benchdoc.py`` regenerates it and fails when ``BENCH.md`` is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from labnet.config.rigfile import RigSpec, load_rig

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RIG = ROOT / "protocols" / "rigs" / "breadboard16.toml"
FIRMWARE_README = ROOT / "drivers" / "firmware" / "README.md"
OUT = ROOT / "BENCH.md"

#: X9C10x DIP-8 pins (Renesas X9C102/103/104/503 datasheet, "Pin descriptions"); a rheostat uses VW
#: and VL: R(VW–VL) = D/99·R_TOTAL + R_W grows with the code D (the model of labnet.core.parts).
X9C_PINS = {"INC": 1, "U/D": 2, "VH": 3, "VSS": 4, "VW": 5, "VL": 6, "CS": 7, "VCC": 8}
#: Meter channels of a DAQM901A in slot 1 are 101..120 (DAQ970A User's Guide, DAQM901A module).
MODULE = {"DAQ970A": "DAQM901A 20-channel armature multiplexer (slot 1)", "34970A": "34901A 20-channel multiplexer"}


def pin_table(readme: Path = FIRMWARE_README) -> dict[str, dict[str, str]]:
    """The firmware README's pin table: signal -> {family: Uno pin}."""
    rows = [ln for ln in readme.read_text(encoding="utf-8").splitlines() if ln.startswith("| ")]
    head = next(i for i, r in enumerate(rows) if r.startswith("| signal |"))
    families = [c.strip() for c in rows[head].strip("|").split("|")][1:]
    out: dict[str, dict[str, str]] = {}
    for r in rows[head + 1:]:
        cells = [c.strip() for c in r.strip("|").split("|")]
        if len(cells) != len(families) + 1 or not re.match(r"^[A-Z][A-Z0-9/]*$", cells[0]):
            break
        out[cells[0]] = dict(zip(families, cells[1:], strict=True))
    return out


def family(spec: RigSpec) -> str:
    """The firmware family of the rig's part (X9C, MCP41, MCP42)."""
    name = spec.part.name
    return "X9C" if name.startswith("X9C") else "MCP42" if name.startswith(("MCP42", "MCP423", "MCP425")) else "MCP41"


def wiring(spec: RigSpec, pins: dict[str, dict[str, str]]) -> list[str]:
    """Markdown rows: one per edge."""
    fam = family(spec)
    net = spec.network
    rows = ["| edge | nodes | digipot | CS pin (Uno) | rheostat terminals |", "|---|---|---|---|---|"]
    for e, ((a, b), ch) in enumerate(zip(net.edges, net.edge_channels, strict=True)):
        cs = pins.get(f"CS{ch}", {}).get(fam, "?")
        terms = (f"VL (pin {X9C_PINS['VL']}) → {a}, VW (pin {X9C_PINS['VW']}) → {b}; VH open" if fam == "X9C"
                 else f"P0B → {a}, P0W → {b}; P0A open")
        rows.append(f"| e{e} | {a} – {b} | U{ch + 1} {spec.part.name} (channel {ch}) | {cs} | {terms} |")
    return rows


def nodes(spec: RigSpec) -> list[str]:
    """Markdown rows: one per node (meter channel, source channel, role)."""
    net = spec.network
    rows = ["| node | role | meter channel | source channel |", "|---|---|---|---|"]
    for n in net.nodes:
        role = ("ground (0 V: the sources' and meter's LO)" if n == net.ground else "input" if n in net.inputs
                else "output" if n in net.outputs else "hidden")
        src = net.source_channels.get(n, "—")
        rows.append(f"| {n} | {role} | {net.meter_channels.get(n, '—')} | {src} |")
    return rows


def release_text(spec: RigSpec) -> list[str]:
    """How the rig releases clamped outputs, and what that means on this bench."""
    rel = spec.release
    if rel.method == "switch" and rel.switch_part is not None:
        rows = [f"Clamped outputs are released by {rel.switch_part.name} analog switches "
                f"(R_on {rel.switch_part.r_on_ohm:g} Ω) between each source channel and its node, driven by the board:",
                "", "| node | switch | board pin |", "|---|---|---|"]
        rows += [f"| {n} | S{k} | after the last chip select (firmware README) |" for n, k in sorted(rel.switches.items())]
        return rows
    loading = {ch: ohm for ch, ohm in rel.off_ohm.items() if ohm is not None and ohm == ohm}
    text = ("Clamped outputs are released by switching the source channel off (`[release] method = \"output_off\"`).")
    if loading:
        worst = min(loading.values())
        text += (f" The rig models a disabled output as {worst:g} Ω to 0 V on {', '.join(sorted(loading))} (the "
                 "conservative reading of the supplies' documentation): a released output node is then held near 0 V "
                 "and the free state is not free, so this bench cannot learn until the off-state is measured higher or "
                 "switches release the outputs (`protocols/rigs/sim16-switch.toml`).")
    return [text]


def bom(spec: RigSpec) -> list[str]:
    """Markdown rows: the bill of materials counted from the rig."""
    net = spec.network
    inst = spec.instruments
    rows = ["| qty | item | for |", "|---|---|---|",
            f"| {net.n_edges} | {spec.part.name} digital potentiometer (DIP-8) | one per edge |",
            f"| {net.n_edges} | 100 nF ceramic capacitor | VCC–GND at each digipot |",
            "| 1 | Arduino Uno (ATmega328P, 16 MHz) with USB cable | the digipot board (drivers/firmware) |",
            "| 1 | solderless breadboard (830 points) and jumper wires | the network |"]
    if inst is not None:
        rows.append(f"| 1 | Keysight {inst.meter.model} with {MODULE.get(inst.meter.model, 'a multiplexer module')} "
                    f"| node voltages ({len(net.meter_channels)} channels) |")
        for name, src in sorted(inst.sources.items()):
            used = sorted(ch for ch in net.source_channels.values() if ch.split(".")[0] == name)
            rows.append(f"| 1 | {src.model} (`{name}`) | source channels {', '.join(used)} |")
        rows.append(f"| {1 + len(inst.sources)} | USB (or LAN) cables, one per instrument | VISA "
                    "(`pip install -e '.[bench]'` for pyvisa-py) |")
        rows.append(f"| {2 * len(net.source_channels) + 2 * len(net.meter_channels)} | banana-to-wire leads "
                    "(or screw-terminal wires for the module) | a HI and a LO per source and meter channel |")
    return rows


def render(rig: Path = DEFAULT_RIG) -> str:
    """The whole BENCH.md text for ``rig``."""
    spec = load_rig(rig)
    pins = pin_table()
    fam = family(spec)
    shared = [f"{sig} → {p[fam]}" for sig, p in pins.items() if not sig.startswith("CS") and p.get(fam) not in
              (None, "—")]
    rel = rig.resolve().relative_to(ROOT) if rig.resolve().is_relative_to(ROOT) else rig
    lines = [
        f"# The bench: {spec.name}", "",
        f"Generated by `python -m labnet.app.benchdoc {rel}` from the rig file and the firmware's pin table",
        "(`drivers/firmware/README.md`); `tests/test_benchdoc.py` fails when this file is stale.", "",
        f"{spec.network.n_edges} edges of {spec.part.name} ({spec.part.r_ab_ohm / 1e3:g} kΩ, ±{spec.part.tolerance:.0%}) "
        f"on {spec.network.n_nodes} nodes; ground {spec.network.ground}, inputs {', '.join(spec.network.inputs)}, "
        f"outputs {', '.join(spec.network.outputs)}. Limits: sources ≤ {spec.limits.max_source_v:g} V, "
        f"edge current ≤ {spec.limits.max_edge_current_a * 1e3:g} mA, codes {spec.limits.code_min}…{spec.limits.code_max}.",
        "", "## Bill of materials", "", *bom(spec), "",
        "## Wiring: the digipots", "",
        f"Every chip: VCC (pin {X9C_PINS['VCC']}) to the Uno's 5 V, VSS (pin {X9C_PINS['VSS']}) to GND, 100 nF "
        "across them at the chip. Shared control lines: " + ", ".join(shared) + " (all chips). The Uno's GND is "
        "the network's ground node. A terminal must never go above VCC or below GND (datasheet absolute maximum).",
        "", *wiring(spec, pins), "",
        "## Wiring: nodes, meter and sources", "",
        "Each meter channel's HI to its node, LO to ground; each source channel's + to its node, − to ground. "
        "A released source (output off) must not load its node: see `labnet doctor`'s check.", "",
        *nodes(spec), "", *release_text(spec), "",
        "## Flashing the board", "", "```bash",
        "sudo apt-get install gcc-avr avr-libc binutils-avr avrdude make",
        f"make -C drivers/firmware FAMILY={fam} MAX_CODE={spec.part.max_code}   # build (prints flash/RAM use)",
        "avrdude -p m328p -c arduino -P /dev/ttyACM0 -b 115200 -U flash:w:drivers/firmware/build/lndp.hex:i",
        "```", "",
        "The board answers `labnet doctor` with its ready line (firmware version, part family, channels).", "",
        "## First bench: a checklist", "",
        "1. Wire as above; power the Uno over USB; instruments on, outputs off.",
        "2. Put the instruments' VISA addresses and the board's port in the rig file "
        "(`python -m serial.tools.list_ports`, `pyvisa-info`).",
        f"3. `labnet validate {rel}` — the file is consistent (nothing is opened).",
        f"4. `labnet doctor {rel}` — every instrument answers and is the model the rig names; the wiring "
        "check's residuals name any open, shorted or swapped edge, swapped meter channel or loading released source. "
        "Add `--responses` once: it measures how fast each supply settles and prints the "
        "`response_tau_s`/`response_dead_s` lines for the rig file (without them a planned run waits `settle_s` "
        "after every change on that supply).",
        f"5. `labnet calibrate protocols/calibrate.toml --rig {rel}` — every edge's R(D) in situ.",
        f"6. `labnet run protocols/allostery.toml --rig {rel} --dry-run` — the same drivers on the emulated bench: "
        "the plan and its modelled time.",
        f"7. `labnet run protocols/allostery.toml --rig {rel}` — the real run; `labnet watch sessions/` beside it.", "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    rigs = [a for a in args if not a.startswith("--")]
    text = render(Path(rigs[0]) if rigs else DEFAULT_RIG)
    if "--check" in args:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        print(f"{OUT}: {'up to date' if same else 'stale: run python -m labnet.app.benchdoc'}")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
