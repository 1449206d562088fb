"""The pin table of drivers/firmware/README.md, the firmware's own pin definitions (main.c)
and the emulated MCU's wiring (simulator/mcu/wiring.py) agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator.mcu.wiring import WIRING, avr_pin

FW = Path(__file__).resolve().parent.parent / "drivers" / "firmware"
MAIN = (FW / "main.c").read_text()
README = (FW / "README.md").read_text()


def _main_c_tables() -> dict[str, list[str]]:
    """``{"X9C": [...], "SPI": [...]}``: cs_bit[] of each #if branch as AVR pins ("D2", "B0")."""
    out = {}
    for key, m in zip(("X9C", "SPI"), re.finditer(r"static const uint8_t cs_bit\[\d+\] = \{([^}]*)\};", MAIN)):
        bits = [b.strip() for b in m.group(1).split(",")]
        out[key] = [f"{b[1]}{b[2]}" for b in bits]  # "PD2" -> "D2"
    ports = re.findall(r"static volatile uint8_t \*const cs_port\[\d+\] = \{([^}]*)\};", MAIN)
    for key, p in zip(("X9C", "SPI"), ports):
        letters = [x.strip()[-1] for x in p.split(",")]
        assert letters == [pin[0] for pin in out[key]], f"{key}: cs_port[] and cs_bit[] disagree"
    return out


def _readme_table() -> dict[str, dict[str, str]]:
    rows = re.findall(r"^\| (CS\d+|INC|U/D|MOSI|MISO|SCK) \| (\S+) \| (\S+) \| (\S+) \|$", README, re.M)
    assert len(rows) == 21, "README pin table: expected CS0..CS15, INC, U/D, MOSI, MISO, SCK"
    return {fam: {r[0]: r[1 + i] for r in rows if r[1 + i] != "—"} for i, fam in enumerate(("X9C", "MCP41", "MCP42"))}


def test_main_c_pins_match_the_wiring():
    tables = _main_c_tables()
    assert [avr_pin(p) for p in WIRING["X9C"].cs] == tables["X9C"]
    for fam in ("MCP41", "MCP42"):
        assert [avr_pin(p) for p in WIRING[fam].cs] == tables["SPI"]
    inc = re.search(r"#define INC_BIT P(\w\d)", MAIN)
    ud = re.search(r"#define UD_BIT P(\w\d)", MAIN)
    assert inc and ud and "PORTC |= (uint8_t)(1 << INC_BIT)" in MAIN  # INC and U/D are on port C
    assert (avr_pin(WIRING["X9C"].inc or ""), avr_pin(WIRING["X9C"].ud or "")) == (inc.group(1), ud.group(1))


def test_readme_pin_table_matches_the_wiring():
    table = _readme_table()
    for fam, w in WIRING.items():
        chips = 8 if fam == "MCP42" else len(w.cs)  # 16 channels at most: 8 two-wiper chips
        assert [table[fam][f"CS{k}"] for k in range(chips)] == list(w.cs[:chips]), fam
        assert not any(f"CS{k}" in table[fam] for k in range(chips, 16)), fam
        if w.inc:
            assert (table[fam]["INC"], table[fam]["U/D"]) == (w.inc, w.ud)
        for sig, pin in w.spi:
            assert table[fam][sig] == pin


def test_main_c_header_comment_names_the_same_pins():
    head = MAIN.split("*/", 1)[0]
    assert "D2..D13 then A0..A3, INC on A4, U/D on A5" in head
    assert "CS on D2..D9\n * then A0..A5" in head


def test_switch_pins_follow_the_chip_selects_in_main_c_readme_and_wiring():
    """Switch k is on chip-select slot N_CS + k (main.c hw_switch), as the README's switch table
    and simulator/mcu/wiring.py say; main.c refuses a build whose chips + switches exceed the slots."""
    assert "cs(N_CS + k, (uint8_t)((mask >> k) & 1))" in MAIN
    assert "#if defined(FAMILY_X9C) && N_CS + SWITCHES > 16" in MAIN and "#if !defined(FAMILY_X9C) && N_CS + SWITCHES > 14" in MAIN
    rows = re.findall(r"^\| `FAMILY=(\w+) CHANNELS=(\d+) SWITCHES=(\d+)` \| (.*) \|$", README, re.M)
    assert len(rows) == 3
    tables = _main_c_tables()
    for fam, ch, sw, pins in rows:
        n_chips = (int(ch) + 1) // 2 if fam == "MCP42" else int(ch)
        got = [p.strip() for p in pins.split("|") if p.strip() != "—"]
        assert list(WIRING[fam].switch_pins(n_chips, int(sw))) == got, fam
        main = tables["X9C" if fam == "X9C" else "SPI"]
        assert [avr_pin(p) for p in got] == main[n_chips:n_chips + int(sw)], fam
    with pytest.raises(ValueError, match="chip-select"):
        WIRING["X9C"].switch_pins(16, 1)
