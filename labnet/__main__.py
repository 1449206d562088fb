"""``python -m labnet`` — the same as the ``labnet`` command."""

import sys

from labnet.app.cli import main

sys.exit(main())
