"""WAL positions (LSNs): text form, and the read-your-writes token of a commit.

Why the token is `pg_current_wal_insert_lsn()` read right after COMMIT:
- read *inside* the transaction it is before the commit record, so a replica
  that replayed up to it still does not see the write;
- `pg_current_wal_lsn()` (the write position) may lag the commit record when
  `synchronous_commit = off`;
- after COMMIT the insert position is at or past the end of our commit record.
One wrinkle: when the insert position sits exactly at a page boundary, PostgreSQL
reports it *after* the page header (24 bytes, 40 on a segment's first page),
while a replica reports the replayed record's end *at* the boundary and would
never reach the token on a quiet system. No record ends right after a page
header, so such a position is moved back to the boundary.
"""

from __future__ import annotations

SHORT_PAGE_HEADER = 24  # MAXALIGN(sizeof(XLogPageHeaderData))
LONG_PAGE_HEADER = 40  # MAXALIGN(sizeof(XLogLongPageHeaderData)), a segment's first page


def lsn_to_int(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def commit_token(insert_lsn: str, segment_bytes: int, block_bytes: int) -> str:
    """The LSN a replica must have replayed to see a commit that ended at or
    before `insert_lsn` (an insert position read after the commit)."""
    position = lsn_to_int(insert_lsn)
    header = LONG_PAGE_HEADER if position % segment_bytes < block_bytes else SHORT_PAGE_HEADER
    if position % block_bytes == header:
        position -= header
    return format_lsn(position)
