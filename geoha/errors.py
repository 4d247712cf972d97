"""Errors that end a geoha command, each carrying its exit status.

A command reports a failure by raising one of these; the command line prints
its `lines()` on stderr and exits with `exit_code`. The status is chosen by
the error's type, never by matching its text.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class GeohaError(Exception):
    """Something geoha could not do; the message says what and why."""

    exit_code = EXIT_FAILED

    def lines(self) -> list[str]:
        """What the command line prints: by default one line, `geoha: MESSAGE`."""
        return [f"geoha: {self}"]


class BadInput(GeohaError):
    """The caller asked for something that cannot be: the message names the
    argument or field, what was expected and what was given."""

    exit_code = EXIT_BAD_INPUT
