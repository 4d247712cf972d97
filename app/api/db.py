"""The two connection pools and the rules for using them.

- write pool: every node, `target_session_attrs=read-write`, so a write lands on
  the current primary wherever it is; retried while nothing was sent, bounded
  by GEOHA_WRITE_TIMEOUT_S, then 503.
- read pool: the local node first (libpq host order), falling back to the others.
- read-your-writes: a read carrying a commit LSN is served by the read pool's node
  only once it has replayed that LSN (bounded wait), else by the primary.
- fenced (fence.py: the region's etcd member has no quorum): reads go to the primary only,
  and the local node does not count as healthy; a fenced read that finds no primary reads
  as usual once the fence lifts (an etcd election after a member died fences for a moment,
  while the primary may be gone too).
- paused (gate.py: a planned switchover is under way): new writes wait at the gate,
  and on resume they start on fresh connections, to the new primary.

The role of the node that answered comes from the `in_hot_standby` parameter the
server reports (PostgreSQL >= 14 re-reports it after a promotion at the next
query), so knowing it costs no extra round trip.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import Pool, PoolConnectionProxy

from app.api.config import DatabaseTarget, SessionAttrs, Settings
from app.api.errors import ApiError, unavailable
from app.api.fence import DcsFence
from app.api.gate import PauseState, WriteGate
from app.api.wal import commit_token

log = logging.getLogger("geoha.api.db")

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
if TYPE_CHECKING:
    Conn: TypeAlias = PoolConnectionProxy[asyncpg.Record]
else:  # not subscriptable at run time
    Conn = PoolConnectionProxy
Op = Callable[[Conn], Awaitable[T]]

# Errors meaning "this node or connection cannot serve": try another, or 503.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InternalClientError,
)
# The read-your-writes token: the WAL insert position read after COMMIT on the
# same connection, with the WAL geometry to interpret it (see wal.py for why).
COMMIT_LSN_SQL = (
    "SELECT pg_current_wal_insert_lsn()::text, "
    "pg_size_bytes(current_setting('wal_segment_size')), "
    "current_setting('wal_block_size')::int"
)
CAUGHT_UP_SQL = (
    "SELECT NOT pg_is_in_recovery() "
    "OR coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)"
)
CONNECT_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *CONNECTION_ERRORS)
NODE_SQL = "SELECT pg_is_in_recovery(), host(inet_server_addr()), inet_server_port()"
RETRY_BACKOFF_S = (0.05, 0.1, 0.2, 0.4)
RYW_POLL_S = (0.002, 0.004, 0.008, 0.016, 0.025)


class NodeRole(StrEnum):
    PRIMARY = "primary"
    REPLICA = "replica"


@dataclass(frozen=True)
class Answer(Generic[T_co]):
    """A result and where it came from; `lsn` is set on writes (the commit's WAL position)."""

    value: T_co
    role: NodeRole
    lsn: str | None = None


class NotPlaced(Exception):
    """Nothing was sent to a usable node; safe to try again."""


class FenceLifted(Exception):
    """A fenced read found no primary, and meanwhile the fence lifted: read as usual."""


class NoNodeAvailable(Exception):
    """No node in the URI could be connected to with the wanted session attributes."""


ACQUIRE_ERRORS: tuple[type[BaseException], ...] = (NoNodeAvailable, *CONNECTION_ERRORS)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


async def _accepts(conn: asyncpg.Connection[Any], attrs: SessionAttrs) -> bool:
    if attrs is SessionAttrs.ANY:
        return True
    settings = conn.get_settings()
    standby_flag = getattr(settings, "in_hot_standby", None)
    if standby_flag is None:  # servers before 14 do not report it
        standby = bool(await conn.fetchval("SELECT pg_is_in_recovery()"))
    else:
        standby = standby_flag == "on"
    if attrs is SessionAttrs.READ_WRITE:
        return not standby and getattr(settings, "default_transaction_read_only", "off") != "on"
    if attrs is SessionAttrs.PRIMARY:
        return not standby
    return standby  # standby, read-only


async def run_to_end(work: Awaitable[T], discard: Callable[[T], None]) -> T:
    """`work`'s result, but `work` itself is never cancelled: a caller that gives up (a
    request's deadline) leaves it to finish on its own, and what it makes then is
    `discard`ed, its failure retrieved. A connect must be bounded by its own timeout.

    Why: asyncpg 0.32 cancelled between opening the socket and sending SSLRequest closes
    a socket whose upgrade future nobody awaits any more; the close then fails that
    future ("unexpected connection_lost() call"), an exception no one retrieves."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(lambda done: _drop(done, discard))
        raise


def _drop(done: asyncio.Future[T], discard: Callable[[T], None]) -> None:
    """A result nobody waits for any more: discarded, or its failure retrieved."""
    if done.cancelled() or done.exception() is not None:
        return
    discard(done.result())


def _terminate(conn: asyncpg.Connection[Any]) -> None:
    conn.terminate()


def host_walk_connect(target: DatabaseTarget, application_name: str) -> Any:
    """A pool `connect` that tries each host in order with libpq's per-host timeout.

    asyncpg applies one timeout to the whole host list, so a blackholed first
    host would starve the others; this walks them like libpq does.
    """

    async def connect(*_args: object, **kwargs: Any) -> asyncpg.Connection[Any]:
        failures: list[str] = []
        for (host, port), dsn in zip(target.hosts, target.host_dsns, strict=True):
            settings = (
                None if "application_name=" in dsn else {"application_name": application_name}
            )
            try:
                conn: asyncpg.Connection[Any] = await run_to_end(
                    asyncpg.connect(
                        dsn,
                        timeout=target.connect_timeout_s,
                        server_settings=settings,
                        connection_class=kwargs["connection_class"],
                        record_class=kwargs["record_class"],
                    ),
                    discard=_terminate,
                )
            except CONNECT_ERRORS as exc:
                failures.append(f"{host}:{port} {_describe(exc)}")
                continue
            if await _accepts(conn, target.session_attrs):
                return conn
            failures.append(f"{host}:{port} is not {target.session_attrs.value}")
            conn.terminate()
        raise NoNodeAvailable("; ".join(failures))

    return connect


async def _keep_session(_conn: asyncpg.Connection[Any]) -> None:
    """Pool reset: nothing. The API never changes session state (no SET, LISTEN,
    advisory locks or cursors), and asyncpg rolls back open transactions itself,
    so the default reset query would only cost a round trip per request."""


def role_of(conn: Conn) -> NodeRole:
    flag = getattr(conn.get_settings(), "in_hot_standby", None)
    return NodeRole.REPLICA if flag == "on" else NodeRole.PRIMARY


class Database:
    """Owns the write and read pools; every database access goes through here."""

    def __init__(self, settings: Settings, fence: DcsFence | None = None) -> None:
        self._settings = settings
        self._fence = fence
        self._write: Pool[asyncpg.Record] | None = None
        self._read: Pool[asyncpg.Record] | None = None
        self._gate = WriteGate()

    async def open(self) -> None:
        """Create both pools without connecting: the API starts even while the
        database tier is down, and answers 503 until it is back."""
        self._write = await self._pool(self._settings.write)
        self._read = await self._pool(self._settings.read)

    async def _pool(self, target: DatabaseTarget) -> Pool[asyncpg.Record]:
        return await asyncpg.create_pool(
            min_size=0,
            max_size=self._settings.pool_size,
            max_inactive_connection_lifetime=60.0,
            connect=host_walk_connect(target, self._settings.instance),
            reset=_keep_session,
        )

    async def close(self, timeout_s: float = 5.0) -> None:
        for pool in (self._write, self._read):
            if pool is None:
                continue
            try:
                await asyncio.wait_for(pool.close(), timeout_s)
            except TimeoutError:
                pool.terminate()
        self._write = self._read = None

    def _pools(self) -> tuple[Pool[asyncpg.Record], Pool[asyncpg.Record]]:
        if self._write is None or self._read is None:
            raise unavailable("the API is starting or stopping")
        return self._write, self._read

    async def write(self, op: Op[T]) -> Answer[T]:
        """Run one autocommit statement on the primary; returns its commit LSN.
        While writes are paused it first waits at the gate."""
        async with self._gate.write():
            write_pool, _ = self._pools()
            return await self._with_retries(write_pool, op, self._deadline(), writing=True)

    async def pause_writes(self, hold_s: float) -> PauseState:
        """Hold new writes for at most `hold_s` and let the running ones end (up to the
        write timeout): nothing is left on the primary's connections when it demotes."""
        return await self._gate.pause(hold_s, drain_s=self._settings.write_timeout_s)

    async def resume_writes(self) -> PauseState:
        """Release the held writes; the write pool's connections are replaced first, so
        the released writes connect to whichever node is primary now."""
        if self._write is not None:
            await self._write.expire_connections()
        return self._gate.resume()

    async def read(self, op: Op[T], min_lsn: str | None = None) -> Answer[T]:
        """Run a read on the local node, or on the primary if the local node has
        not replayed `min_lsn` within GEOHA_RYW_WAIT_MS."""
        write_pool, read_pool = self._pools()
        if self._fenced() is not None:
            try:
                return await self._with_retries(
                    write_pool, op, self._deadline(), writing=False, until_unfenced=True
                )
            except FenceLifted:
                pass  # the member has its quorum again (an election ended): read as usual
        if min_lsn is not None:
            answer = await self._read_caught_up(read_pool, op, min_lsn)
            if answer is not None:
                return answer
            return await self._with_retries(write_pool, op, self._deadline(), writing=False)
        return await self._with_retries(read_pool, op, self._deadline(), writing=False)

    def _fenced(self) -> str | None:
        return None if self._fence is None else self._fence.reason()

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self._settings.write_timeout_s

    async def _with_retries(
        self,
        pool: Pool[asyncpg.Record],
        op: Op[T],
        deadline: float,
        *,
        writing: bool,
        until_unfenced: bool = False,
    ) -> Answer[T]:
        """`until_unfenced`: a fenced read that finds no primary stops retrying as soon as
        the fence lifts (FenceLifted), instead of waiting for a primary until the deadline."""
        loop = asyncio.get_running_loop()
        last = "no node answered"
        for attempt in range(1000):
            try:
                async with asyncio.timeout_at(deadline):
                    return await self._once(pool, op, writing=writing)
            except TimeoutError:
                break
            except NotPlaced as exc:
                last = str(exc)
                if until_unfenced and self._fenced() is None:
                    raise FenceLifted from None
            pause = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
            if loop.time() + pause >= deadline:
                break
            await asyncio.sleep(pause)
        what = "no primary accepted the write" if writing else "no database node answered"
        raise unavailable(f"{what} within {self._settings.write_timeout_s:g}s ({last})")

    async def _once(self, pool: Pool[asyncpg.Record], op: Op[T], *, writing: bool) -> Answer[T]:
        try:
            conn = await pool.acquire()
        except ACQUIRE_ERRORS as exc:
            raise NotPlaced(_describe(exc)) from None
        try:
            return await self._run(pool, conn, op, writing=writing)
        except asyncio.CancelledError:
            if not _is_closed(conn):
                conn.terminate()  # timed out mid-query: do not wait for the server
            raise
        finally:
            await pool.release(conn)

    async def _run(
        self, pool: Pool[asyncpg.Record], conn: Conn, op: Op[T], *, writing: bool
    ) -> Answer[T]:
        try:
            value = await op(conn)
        except asyncpg.exceptions.ReadOnlySQLTransactionError:
            await pool.expire_connections()  # the node was demoted under us
            raise NotPlaced("the node became read-only") from None
        except asyncpg.exceptions.TransactionRollbackError as exc:
            if writing:
                raise
            raise NotPlaced(_describe(exc)) from None  # e.g. a recovery conflict on a replica
        except CONNECTION_ERRORS as exc:
            if not writing or (isinstance(exc, asyncpg.InterfaceError) and _is_closed(conn)):
                raise NotPlaced(_describe(exc)) from None
            raise unavailable(
                f"the connection to the primary was lost during the write; "
                f"its outcome is unknown ({_describe(exc)})"
            ) from None
        if not writing:
            return Answer(value, role_of(conn))
        return Answer(value, NodeRole.PRIMARY, await self._commit_lsn(conn))

    async def _commit_lsn(self, conn: Conn) -> str | None:
        try:
            row = await conn.fetchrow(COMMIT_LSN_SQL)
        except CONNECTION_ERRORS as exc:
            # The write is committed: answer it, without a read-your-writes token.
            log.warning("commit LSN unavailable after a committed write: %s", _describe(exc))
            return None
        if row is None:
            return None
        return commit_token(row[0], row[1], row[2])

    async def _read_caught_up(
        self, pool: Pool[asyncpg.Record], op: Op[T], min_lsn: str
    ) -> Answer[T] | None:
        """Poll the read pool's node until it has replayed `min_lsn`; `None` if the
        wait (GEOHA_RYW_WAIT_MS) ran out or the node failed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.ryw_wait_ms / 1000
        for attempt in range(100_000):
            try:
                async with asyncio.timeout_at(deadline):
                    answer = await self._once(pool, _if_caught_up(op, min_lsn), writing=False)
            except (TimeoutError, NotPlaced, ApiError):
                return None
            if answer.value is not None:
                return Answer(answer.value[0], answer.role)
            pause = RYW_POLL_S[min(attempt, len(RYW_POLL_S) - 1)]
            if loop.time() + pause >= deadline:
                return None
            await asyncio.sleep(pause)
        return None

    async def local_node(self) -> NodeRole:
        """Role of the local node (the read URI's first host), read through the read
        pool; raises 503 if the pool is not connected to that node, or if the
        region is fenced."""
        _, read_pool = self._pools()
        if (reason := self._fenced()) is not None:
            raise unavailable(reason)
        answer = await self._with_retries(read_pool, _node_facts, self._deadline(), writing=False)
        in_recovery, address, port = answer.value
        host, want_port = self._settings.read.hosts[0]
        if (address, port) != (host, want_port) and _is_ip(host):
            # The pool fell back to a remote node; reconnect (local first) from now on.
            await read_pool.expire_connections()
            raise unavailable(
                f"local node {host}:{want_port} is not reachable (served by {address}:{port})"
            )
        return NodeRole.REPLICA if in_recovery else NodeRole.PRIMARY


def _if_caught_up(op: Op[T], min_lsn: str) -> Op[tuple[T] | None]:
    async def guarded(conn: Conn) -> tuple[T] | None:
        if not await conn.fetchval(CAUGHT_UP_SQL, min_lsn):
            return None
        return (await op(conn),)

    return guarded


async def _node_facts(conn: Conn) -> tuple[bool, str, int]:
    row = await conn.fetchrow(NODE_SQL)
    if row is None:
        raise NotPlaced("no answer to the node query")
    return bool(row[0]), str(row[1]), int(row[2])


def _is_closed(conn: Conn) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:  # a closed connection is released back to the pool
        return True


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
