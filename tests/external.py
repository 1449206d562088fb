"""External programs some tests need (ngspice, a host C compiler, the AVR toolchain, simavr,
clang, chromium): installed by CI (.ci/run) from Debian packages, not by pip.

:func:`need` skips the calling test with a reason naming the missing programs and the package
to install — unless ``CI`` is set, where a missing tool fails the test, so CI always runs them.
``python -m pytest -q -ra`` lists every skip and its reason at the end.
"""

from __future__ import annotations

import os
import shutil

import pytest


def missing(*programs: str) -> list[str]:
    """The ``programs`` not found on PATH."""
    return [p for p in programs if shutil.which(p) is None]


def need(*programs: str, apt: str, why: str) -> None:
    """Skip (or fail, with ``CI`` set) unless every program is on PATH.

    ``apt`` names the Debian packages that provide them; ``why`` what the test checks.
    """
    gone = missing(*programs)
    if not gone:
        return
    msg = f"{why} needs {', '.join(gone)} (apt-get install {apt}; CI installs it)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {msg}", pytrace=False)
    pytest.skip(msg)
