"""Dense Cholesky through LAPACK, without SciPy's per-call checks (the hot path of small solves).

``dpotrf(a, lower=1, clean=0, overwrite_a=1) -> (c, info)`` factors a symmetric positive
definite (n, n) matrix; ``dpotrs(c, b, lower=1) -> (x, info)`` solves with the factor for b of
shape (n,) or (n, m). Both are SciPy's raw LAPACK wrappers for float64.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

dpotrf, dpotrs = lapack.get_lapack_funcs(("potrf", "potrs"), (np.zeros(1),))

__all__ = ["dpotrf", "dpotrs"]
