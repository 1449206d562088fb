"""How the digipots are wired to the Uno/Nano: the pin table of ``drivers/firmware/README.md``.

The emulated MCU's part models are connected exactly as this table says; a test checks it
against the firmware's own pin definitions (``cs_port[]``/``cs_bit[]``, ``INC_BIT``/``UD_BIT``
in ``drivers/firmware/main.c``) and against the README's table.
"""

from __future__ import annotations

from dataclasses import dataclass


def avr_pin(arduino: str) -> str:
    """``"D2"`` -> ``"D2"`` (PD2), ``"D10"`` -> ``"B2"`` (PB2), ``"A4"`` -> ``"C4"`` (PC4)."""
    kind, num = arduino[0], int(arduino[1:])
    if kind == "D" and 0 <= num <= 7:
        return f"D{num}"
    if kind == "D" and 8 <= num <= 13:
        return f"B{num - 8}"
    if kind == "A" and 0 <= num <= 5:
        return f"C{num}"
    raise ValueError(f"not an Uno/Nano digital pin: {arduino!r}")


@dataclass(frozen=True)
class Wiring:
    """One family's wiring (Arduino pin names).

    Attributes
    ----------
    cs : tuple of str
        Chip select of chip 0, 1, ... (an MCP42x1 chip carries channels 2k and 2k+1).
    inc, ud : str or None
        X9C: the shared INC and U/D lines.
    spi : dict
        SPI parts: MOSI, MISO, SCK (the ATmega328P's hardware SPI).
    """

    cs: tuple[str, ...]
    inc: str | None = None
    ud: str | None = None
    spi: tuple[tuple[str, str], ...] = ()

    def switch_pins(self, n_chips: int, n_switches: int) -> tuple[str, ...]:
        """Control pins of the analog switches: the chip-select slots after the first ``n_chips``
        (``drivers/firmware/main.c``: switch k on slot N_CS + k)."""
        pins = self.cs[n_chips:n_chips + n_switches]
        if len(pins) < n_switches:
            raise ValueError(f"{n_chips} chips and {n_switches} switches need {n_chips + n_switches} chip-select "
                             f"slots; the board has {len(self.cs)}")
        return pins

    def harness_args(self, n_chips: int, n_switches: int = 0) -> list[str]:
        """Pin arguments of the emulator harness (``lndp_mcu``) for the first ``n_chips`` chips
        and ``n_switches`` switches."""
        args = [",".join(avr_pin(p) for p in self.cs[:n_chips])]
        if self.inc and self.ud:
            args += [avr_pin(self.inc), avr_pin(self.ud)]
        if n_switches:
            args.append("SW=" + ",".join(avr_pin(p) for p in self.switch_pins(n_chips, n_switches)))
        return args


_SPI = (("MOSI", "D11"), ("MISO", "D12"), ("SCK", "D13"))

WIRING: dict[str, Wiring] = {
    "X9C": Wiring(cs=("D2", "D3", "D4", "D5", "D6", "D7", "D8", "D9", "D10", "D11", "D12", "D13",
                      "A0", "A1", "A2", "A3"), inc="A4", ud="A5"),
    "MCP41": Wiring(cs=("D2", "D3", "D4", "D5", "D6", "D7", "D8", "D9", "A0", "A1", "A2", "A3", "A4", "A5"),
                    spi=_SPI),
    "MCP42": Wiring(cs=("D2", "D3", "D4", "D5", "D6", "D7", "D8", "D9", "A0", "A1", "A2", "A3", "A4", "A5"),
                    spi=_SPI),
}


def n_chips(family: str, n_channels: int) -> int:
    """Chips that carry ``n_channels`` channels (two wipers per MCP42x1)."""
    return (n_channels + 1) // 2 if family == "MCP42" else n_channels
