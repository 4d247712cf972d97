"""The read-your-writes token of a commit (see app/api/wal.py)."""

from __future__ import annotations

import pytest

from app.api.wal import commit_token, format_lsn, lsn_to_int

SEGMENT = 16 * 1024 * 1024
BLOCK = 8192


@pytest.mark.parametrize("text", ["0/0", "0/16B3748", "1/0", "FFFFFFFF/FFFFFFFF"])
def test_round_trip(text: str) -> None:
    assert format_lsn(lsn_to_int(text)) == text


@pytest.mark.parametrize(
    ("insert", "token"),
    [
        ("0/3009F70", "0/3009F70"),  # mid-page: unchanged
        ("0/3000028", "0/3000000"),  # just after a segment's long page header
        ("0/3002018", "0/3002000"),  # just after an ordinary page header
        ("0/3002028", "0/3002028"),  # 40 bytes into an ordinary page: a real record end
        ("1/28", "1/0"),  # segment start across the 4 GiB boundary
    ],
)
def test_commit_token_moves_back_over_a_page_header(insert: str, token: str) -> None:
    assert commit_token(insert, SEGMENT, BLOCK) == token
