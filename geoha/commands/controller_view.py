"""The running controller's status, as the commands that show it ask for it."""

from __future__ import annotations

from geoha.plan import Plan
from geoha.runtime import control
from geoha.runtime.events import ControllerStatus


def controller_snapshot(plan: Plan) -> ControllerStatus | None:
    """The controller's status, or None when no controller runs for this run directory."""
    try:
        snap: ControllerStatus = control.call(plan.run_dir, "status")
    except control.ControlError:
        return None
    return snap
