"""Instrument drivers: bytes over pyserial and pyvisa, and the digipot board's firmware.

* :mod:`drivers.digiproto` — the board's line protocol (framing, CRC-8, error codes);
  ``drivers/PROTOCOL.md`` describes it with byte examples.
* :mod:`drivers.digipot` — :class:`~drivers.digipot.DigipotBoard`, the ``Digipots`` role.
* :mod:`drivers.scpi` — the SCPI base (transport, retries, error queue); :mod:`drivers.scpi_params` —
  declarative commands and validators; :mod:`drivers.scpi_text` — reply/channel-list text.
* :mod:`drivers.daq970a` — Keysight DAQ970A / 34970A, the ``Meter`` role.
* :mod:`drivers.sources` — Keysight E36312A, Keithley 2450 and
  :class:`~drivers.sources.RoutedSources`, the ``Sources`` (and ``CurrentSensing``) role.
* :mod:`drivers.testing` — scripted transports for message-level tests.
* ``drivers/firmware/`` — the ATmega328P firmware (C, avr-libc) and its Makefile.

Drivers take their transport as an argument; they never import the simulator.
"""
