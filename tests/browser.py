"""Headless Chromium for the scenario tests (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
"""Screenshots the tests take, for a person to look at."""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # this machine's network is closed: no background calls home to fail
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch_chromium(pw: Playwright) -> Browser:
    ARTIFACTS.mkdir(exist_ok=True)
    return pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
