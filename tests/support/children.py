"""Child Python processes that import what the test process imports."""

from __future__ import annotations

import os
import sys


def python_env() -> dict[str, str]:
    """The environment for a child `python -c` that imports what this process imports (under
    `make mutation`, the mutated copy of the package, with the mutant under test)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
