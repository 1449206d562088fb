"""Build the emulator harness and the firmware at run time, into a cache directory.

The harness (``lndp_mcu.c`` + ``parts.c``) links simavr (GPL-3): it is compiled here from
source with ``cc`` and ``pkg-config simavr`` and never shipped built. The firmware is built
by its own Makefile (``make -C drivers/firmware``, avr-gcc) for the configuration asked for.
Both are keyed by a hash of their sources, so a changed source rebuilds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESS_SOURCES = ("lndp_mcu.c", "parts.c", "switches.c", "parts.h", "switches.h")
FIRMWARE_SOURCES = ("main.c", "lndp.c", "lndp.h", "Makefile")


class BuildError(RuntimeError):
    """The harness or the firmware could not be built (tool missing or compile error)."""


def firmware_dir() -> Path:
    """``drivers/firmware`` (the firmware's sources and Makefile)."""
    import drivers

    return Path(drivers.__file__).resolve().parent / "firmware"


def cache_dir() -> Path:
    """``$LABNET_MCU_CACHE``, else ``<tmp>/labnet-mcu-<uid>``."""
    env = os.environ.get("LABNET_MCU_CACHE")
    d = Path(env) if env else Path(tempfile.gettempdir()) / f"labnet-mcu-{os.getuid()}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _digest(paths: list[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for p in paths:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def missing_tools() -> list[str]:
    """What the emulated MCU needs and this machine lacks (empty: all there)."""
    out = [t for t in ("cc", "pkg-config", "make", "avr-gcc") if shutil.which(t) is None]
    if not out:
        r = subprocess.run(["pkg-config", "--exists", "simavr"], capture_output=True)
        if r.returncode != 0:
            out.append("simavr (pkg-config; Debian: libsimavr-dev)")
    return out


def build_harness() -> Path:
    """Compile the harness if needed; returns the executable."""
    srcs = [HERE / n for n in HARNESS_SOURCES]
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "simavr"], capture_output=True, text=True)
    if flags.returncode != 0:
        raise BuildError("pkg-config finds no simavr (Debian: simavr libsimavr-dev libsimavrparts1 libelf-dev)")
    exe = cache_dir() / f"lndp_mcu-{_digest(srcs, flags.stdout)}"
    if exe.exists():
        return exe
    tmp = exe.with_suffix(f".tmp{os.getpid()}")
    cmd = ["cc", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o", str(tmp),
           *(str(p) for p in srcs if p.suffix == ".c"), *flags.stdout.split(), "-lelf"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"harness build failed: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    os.replace(tmp, exe)
    return exe


@dataclass(frozen=True)
class FirmwareBuild:
    """A built firmware: its .elf and what it was built for."""

    elf: Path
    family: str
    channels: int
    max_code: int
    power_up_code: int
    switches: int = 0

    @property
    def sha256(self) -> str:
        """Hash of the binary (the build hash a session header names)."""
        return hashlib.sha256(self.elf.read_bytes()).hexdigest()


def build_firmware(family: str, channels: int, max_code: int, power_up_code: int,
                   source: Path | None = None, switches: int = 0) -> FirmwareBuild:
    """``make -C <source> FAMILY=... all`` into the cache (``source`` defaults to drivers/firmware;
    a test points it at a copy holding other code; ``switches``: analog switch channels)."""
    src = firmware_dir() if source is None else Path(source)
    cfg = f"{family}-{channels}-{max_code}-{power_up_code}" + (f"-sw{switches}" if switches else "")
    build = cache_dir() / f"fw-{cfg}-{_digest([src / n for n in FIRMWARE_SOURCES], cfg)}"
    elf = build / "lndp.elf"
    if not elf.exists():
        tmp = build.with_name(build.name + f".tmp{os.getpid()}")
        cmd = ["make", "-s", "-C", str(src), f"BUILD={tmp}", f"FAMILY={family}", f"CHANNELS={channels}",
               f"MAX_CODE={max_code}", f"POWER_UP_CODE={power_up_code}", f"SWITCHES={switches}", "all"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise BuildError(f"firmware build failed: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
        try:
            os.replace(tmp, build)
        except OSError:  # another process built it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    return FirmwareBuild(elf, family, channels, max_code, power_up_code, switches)
