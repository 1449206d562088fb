"""The breadboard without hardware: the physical model and emulators beneath the drivers.

Importing this package registers the pyserial URL handler ``sim://<bench>``
(:mod:`simulator.protocol_sim`); :mod:`simulator.visa` is the pyvisa backend.
"""

import serial

if "simulator" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("simulator")
