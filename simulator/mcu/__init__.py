"""The real firmware in the loop: the ATmega328P binary in simavr with pin-level digipot models.

* ``lndp_mcu.c``, ``parts.c``/``parts.h`` — the harness (C, links simavr, GPL-3): built from
  source at run time into a cache directory (:mod:`simulator.mcu.build`), never shipped
  built; a test/simulation tool.
* :mod:`~simulator.mcu.harness` — :class:`McuProcess`: the harness process, its pty and side
  channel (wipers, stores, datasheet violations, timing statistics).
* :mod:`~simulator.mcu.board` — :class:`McuBoard`: the process wired to a breadboard model.
* :mod:`~simulator.mcu.wiring` — the pin table (README), checked against the firmware.
* ``simulator/protocol_simavr.py`` — the pyserial URL ``simavr://<bench>``.
"""
