"""Running the real `geoha` command line from tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def geoha(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m geoha ARGS` in `cwd` (never the repository: no run directory there)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "geoha", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
