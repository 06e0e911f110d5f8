"""Redis topologies owned by the tests: a standalone server, Sentinel, and Cluster.

Every server here is a ``redis-server`` child process started by the tests, on
loopback ports below the ephemeral range, in a temporary directory, without persistence
(``--save "" --appendonly no``). The rule this module keeps: **nothing outlives
the test run.** Each process runs in the foreground in its own process group;
teardown sends SIGTERM and then SIGKILL after a bound; an ``atexit`` hook kills
whatever is left; and on Linux each server also gets SIGKILL from the kernel if
the Python thread that started it dies (``PR_SET_PDEATHSIG``), so even a
``kill -9`` of pytest leaves no server behind. Every wait is bounded
(:data:`WAIT_TIMEOUT`); a server that does not come up fails the test with the
tail of its log. A missing ``redis-server`` or ``redis-cli`` binary is a
failure, never a skip.

Use the fixtures from a conftest (or a test module)::

    pytest_plugins = ["redis_servers"]

and then, in tests:

- ``redis_server`` (session): a standalone :class:`RedisServer`, shared by the
  whole run, so use your own keys.
- ``fresh_redis_server`` (function): a standalone :class:`RedisServer` for tests
  that stop, restart or kill it.
- ``redis_sentinel`` (session): a :class:`SentinelSetup` -- a master, a replica
  and three sentinels.
- ``fresh_redis_sentinel`` (function): a :class:`SentinelSetup` for tests that
  fail over or kill its servers.
- ``redis_cluster`` (session): a :class:`ClusterSetup` -- three masters
  covering all 16384 slots.

Example::

    def test_cache_hits_redis(redis_server: RedisServer) -> None:
        app = create_app(REDIS_URL=redis_server.url)
        redis_server.reset_stats()
        app.test_client().get("/cached")
        assert redis_server.command_counts().get("get") == 1

:meth:`RedisServer.command_counts` leaves out the commands this module sent
itself (``INFO``, ``CONFIG RESETSTAT``, readiness ``PING``), so it shows only
what the application and the test did -- including the ``HELLO`` a new
redis-py connection sends. Clients from ``client()`` must be closed
(``with server.client() as r: ...``): pytest turns the ``ResourceWarning`` of
an unclosed socket into an error.

PYTEST_DONT_REWRITE -- this marker lets the module be both imported by tests
and loaded as a plugin without pytest's "already imported" warning; it has no
``assert`` to rewrite.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import typing as t
from collections import Counter
from pathlib import Path

import loopback
import pytest
import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from types import TracebackType

__all__ = [
    "HOST",
    "WAIT_TIMEOUT",
    "ClusterSetup",
    "RedisServer",
    "RedisSetupError",
    "SentinelSetup",
    "free_ports",
    "fresh_redis_sentinel",
    "fresh_redis_server",
    "redis_cluster",
    "redis_sentinel",
    "redis_server",
]

#: The only interface the servers listen on.
HOST = "127.0.0.1"
#: Upper bound, in seconds, of every wait in this module.
WAIT_TIMEOUT = 15.0

_CLUSTER_BUS_OFFSET = 10000
#: Commands whose statistics Redis 7 keeps per subcommand (``config|resetstat``).
_CONTAINER_COMMANDS = frozenset(
    {"acl", "client", "cluster", "command", "config", "memory", "object", "sentinel"}
)
#: Sentinel timers (ms) set with ``SENTINEL DEBUG`` (Redis 7+), as config files cannot:
#: how often a sentinel pings (and retries a link to) an instance, asks its peers
#: about a down master, publishes hello messages, and reads a replica's INFO. The
#: defaults (1000, 1000, 2000, 10000) leave a freshly started sentinel with its
#: peers unreachable for ~1 s and a restarted replica unnoticed for up to 10 s.
#: Keep ``ping-period`` >= 500: a failover only promotes a replica whose INFO is
#: younger than 5 ping periods, and while the master is down sentinels read it
#: once a second; at 100 a failover aborts ("no-good-slave") about half the time.
_SENTINEL_TIMERS = {
    "ping-period": 500,
    "ask-period": 100,
    "publish-period": 200,
    "info-period": 1000,
}
#: ``cluster-node-timeout`` while a cluster forms: nodes ping a peer they have not
#: heard from in half this time, so the join that ``redis-cli --cluster create``
#: waits for takes ~1 s instead of 1-6 s with the default. Raised afterwards, so
#: a slow machine does not make nodes declare one another failed.
_CLUSTER_JOIN_NODE_TIMEOUT_MS = 1000
#: Servers with a live process, killed at interpreter exit if teardown missed them.
_RUNNING: set[RedisServer] = set()


class RedisSetupError(RuntimeError):
    """A test Redis server or topology could not be started or did not settle in time."""


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RedisSetupError(
            f"{name!r} is not on PATH; the Redis tests start their own servers and need "
            f"the Redis binaries (e.g. 'apt-get install redis-server')."
        )
    return path


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct loopback ports that are free now.

    Each port's cluster bus port (port + 10000) is free too, and both are below
    the kernel's ephemeral range (see :mod:`loopback`), so no outgoing
    connection takes them before the server binds them.
    """
    try:
        return loopback.free_ports(count, companion_offset=_CLUSTER_BUS_OFFSET)
    except loopback.PortsExhausted as error:
        raise RedisSetupError(str(error)) from error


def _ping(port: int) -> bool:
    """Whether a server answers ``PING`` on ``port`` (not still loading, not refusing)."""
    try:
        with socket.create_connection((HOST, port), timeout=0.25) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RedisSetupError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def _load_prctl() -> Callable[..., int] | None:
    if sys.platform != "linux":
        return None
    # Resolved here, not in the child: between fork and exec only the call is safe.
    return t.cast("Callable[..., int]", ctypes.CDLL(None, use_errno=True).prctl)


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _pairs(reply: Sequence[str]) -> dict[str, str]:
    """Turn a flat RESP2 ``[key, value, key, value, ...]`` reply into a dict."""
    items = iter(reply)
    return dict(zip(items, items, strict=True))


def _stat_name(args: Sequence[str]) -> str:
    name = args[0].lower()
    if name in _CONTAINER_COMMANDS and len(args) > 1:
        return f"{name}|{args[1].lower()}"
    return name


def _sum_counts(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for one in counts:
        total.update(one)
    return dict(total)


_R = t.TypeVar("_R", bound="_Running")


class _Running:
    """Context manager protocol for anything with ``start()`` and ``stop()``."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: _R) -> _R:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RedisServer(_Running):
    """One ``redis-server`` process on a loopback port, without persistence.

    :param directory: working directory for the server's files and log; created if needed.
    :param name: label used in messages.
    :param port: port to listen on; by default a free one is chosen (and a new one is
        picked if another process grabs it before the first start).
    :param replica_of: port of a master on :data:`HOST` to replicate (``--replicaof``);
        may be changed before :meth:`restart`.
    :param cluster: run in cluster mode (``--cluster-enabled yes``).
    :param cluster_node_timeout_ms: ``cluster-node-timeout`` when ``cluster`` is set.
    :param sentinel_config: run as a sentinel with this configuration text, written to
        ``sentinel.conf`` at the first start (the sentinel rewrites it afterwards).
    :param extra_args: further ``--option value`` command-line arguments.
    """

    def __init__(
        self,
        directory: Path,
        *,
        name: str = "redis",
        port: int | None = None,
        replica_of: int | None = None,
        cluster: bool = False,
        cluster_node_timeout_ms: int = 5000,
        sentinel_config: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.directory = directory
        self.name = name
        self.replica_of = replica_of
        self.cluster = cluster
        self.cluster_node_timeout_ms = cluster_node_timeout_ms
        self.sentinel_config = sentinel_config
        self.extra_args = list(extra_args)
        self._may_change_port = port is None
        self._port = free_ports(1)[0] if port is None else port
        self._process: subprocess.Popen[bytes] | None = None
        # Commands this object sent since the server's statistics were last reset.
        self._own_calls: Counter[str] = Counter()
        self._log_start = 0

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer {self.name} {HOST}:{self._port} {state}>"

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{HOST}:{self._port}/0"

    @property
    def log_path(self) -> Path:
        """The server's log (its stdout and stderr, across restarts)."""
        return self.directory / "redis.log"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        """The last ``lines`` lines of the server's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log written)"
        return "\n".join(text.splitlines()[-lines:])

    def _command_line(self) -> list[str]:
        args = [_binary("redis-server")]
        if self.sentinel_config is not None:
            config = self.directory / "sentinel.conf"
            if not config.exists():
                config.write_text(self.sentinel_config)
            args += [str(config), "--sentinel"]
        args += ["--port", str(self._port), "--bind", HOST, "--dir", str(self.directory)]
        args += ["--daemonize", "no", "--logfile", ""]
        if self.sentinel_config is None:
            # Diskless sync without its 5 s default delay lets a replica attach at
            # once; a shutdown never waits for replicas (nothing to save anyway).
            args += ["--save", "", "--appendonly", "no", "--shutdown-timeout", "0"]
            args += ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]
        if self.replica_of is not None:
            args += ["--replicaof", HOST, str(self.replica_of)]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            args += ["--cluster-node-timeout", str(self.cluster_node_timeout_ms)]
        return args + self.extra_args

    def _spawn(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._command_line(),
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if _PRCTL is not None else None,
            )
        _RUNNING.add(self)
        self._own_calls = Counter()

    def start(self) -> None:
        """Start the server and wait (bounded) until it answers ``PING``.

        :raises RedisSetupError: if it exits or does not answer in time; the message
            shows the tail of its log.
        """
        self._launch()
        try:
            self._await_up()
        except BaseException:  # e.g. KeyboardInterrupt: leave no half-started server
            self.kill()
            raise

    def _launch(self) -> None:
        if self.running:
            raise RedisSetupError(f"{self!r} is already running")
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._spawn()

    def _await_up(self) -> None:
        for _attempt in range(3):
            if self._wait_until_up():
                self._may_change_port = False
                return
            new_log = self.log_path.read_bytes()[self._log_start :]
            if not (self._may_change_port and b"Address already in use" in new_log):
                break
            self._port = free_ports(1)[0]
            self._launch()
        returncode = self._process.returncode if self._process is not None else None
        self.kill()
        status = (
            f"exited with status {returncode}"
            if returncode is not None
            else f"did not answer PING within {WAIT_TIMEOUT:.0f} s"
        )
        raise RedisSetupError(
            f"redis-server {self.name!r} on port {self._port} {status}.\n"
            f"Log tail ({self.log_path}):\n{self.log_tail()}"
        )

    def _wait_until_up(self) -> bool:
        if self._process is None:
            return False
        deadline = time.monotonic() + WAIT_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._reaped()
                return False
            if _ping(self._port):
                self._own_calls["ping"] += 1
                return True
            time.sleep(0.01)
        return False

    def _reaped(self) -> None:
        _RUNNING.discard(self)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it has not exited after ``timeout`` s."""
        self._terminate()
        self._await_exit(timeout)

    def _terminate(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def _await_exit(self, timeout: float) -> None:
        if self._process is None:
            return
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reaped()

    def kill(self) -> None:
        """SIGKILL the server and any child it forked, as a crash would."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(WAIT_TIMEOUT)
        self._reaped()

    def restart(self) -> None:
        """Stop the server, then start it again on the same port (its data is gone)."""
        self.stop()
        self.start()

    def client(self, **kwargs: t.Any) -> redis.Redis:
        """A new ``redis.Redis`` client for db 0 (bytes replies, no retries by default).

        Keyword arguments override the client's options. Close it when done.
        """
        options: dict[str, t.Any] = {
            "socket_timeout": 5,
            "socket_connect_timeout": 5,
            "retry": Retry(NoBackoff(), 0),
            "decode_responses": False,
        }
        options.update(kwargs)
        return redis.Redis(host=HOST, port=self._port, db=0, **options)

    def execute(self, *args: str) -> t.Any:
        """Run one administrative command on a fresh RESP2 connection; return the reply.

        Replies are decoded to ``str``. The command is not reported by
        :meth:`command_counts`.
        """
        admin = redis.Redis(
            host=HOST,
            port=self._port,
            protocol=2,
            driver_info=None,  # no CLIENT SETINFO: the connection sends only ``args``
            decode_responses=True,
            socket_timeout=5,
            socket_connect_timeout=5,
            retry=Retry(NoBackoff(), 0),
        )
        with admin:
            reply = admin.execute_command(*args)  # type: ignore[no-untyped-call]
        self._own_calls[_stat_name(args)] += 1
        return reply

    def info(self, section: str) -> dict[str, t.Any]:
        """``INFO <section>``, parsed into a dict (``{"role": "master", ...}``)."""
        return t.cast("dict[str, t.Any]", self.execute("INFO", section))

    def command_counts(self) -> dict[str, int]:
        """Calls per command since the last reset, from ``INFO commandstats``.

        Keys are lower-case command names, with the subcommand for container
        commands (``get``, ``set``, ``hello``, ``config|get``). Commands this object
        sent itself are left out; those of sentinels and replicas watching the server
        (``ping``, ``info``, ``publish``, ``replconf``) are not.
        """
        own = self._own_calls.copy()  # the INFO below counts only after it returns
        stats = self.info("commandstats")
        counts: Counter[str] = Counter(
            {key.removeprefix("cmdstat_"): int(value["calls"]) for key, value in stats.items()}
        )
        counts.subtract(own)
        return {name: calls for name, calls in sorted(counts.items()) if calls > 0}

    def reset_stats(self) -> None:
        """Reset the server's statistics (``CONFIG RESETSTAT``)."""
        self.execute("CONFIG", "RESETSTAT")
        self._own_calls = Counter({"config|resetstat": 1})


def _start_all(servers: Sequence[RedisServer]) -> None:
    """Start ``servers`` side by side, so none of them finds its peers still down."""
    for server in servers:
        server._launch()
    for server in servers:
        server._await_up()


def _stop_all(servers: Sequence[RedisServer], timeout: float = 5.0) -> None:
    """Stop ``servers`` side by side: SIGTERM to all, then wait for (or kill) each."""
    for server in servers:
        server._terminate()
    for server in servers:
        server._await_exit(timeout)


class SentinelSetup(_Running):
    """A master, one replica and three sentinels watching them.

    The sentinels know one another and the replica from their written
    configuration, so the setup is usable as soon as :meth:`start` returns.

    :param directory: parent directory for the servers' directories.
    :param service: the name the sentinels monitor the master under.
    :param down_after_ms: ``sentinel down-after-milliseconds``.
    :param failover_timeout_ms: ``sentinel failover-timeout``.
    """

    def __init__(
        self,
        directory: Path,
        *,
        service: str = "flaskstack",
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 2000,
    ) -> None:
        self.directory = directory
        self.service = service
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self._master = RedisServer(directory / "server-a", name="server-a")
        self._replica = RedisServer(
            directory / "server-b", name="server-b", replica_of=self._master.port
        )
        ports = free_ports(3)
        ids = [secrets.token_hex(20) for _ in ports]
        self._sentinels = [
            RedisServer(
                directory / f"sentinel-{i + 1}",
                name=f"sentinel-{i + 1}",
                port=port,
                sentinel_config=self._sentinel_config(ids[i], list(zip(ports, ids, strict=True))),
            )
            for i, port in enumerate(ports)
        ]

    def _sentinel_config(self, my_id: str, all_sentinels: list[tuple[int, str]]) -> str:
        service = self.service
        lines = [
            f"sentinel myid {my_id}",
            f"sentinel monitor {service} {HOST} {self._master.port} 2",
            f"sentinel down-after-milliseconds {service} {self.down_after_ms}",
            f"sentinel failover-timeout {service} {self.failover_timeout_ms}",
            # Known peers skip discovery by hello messages, which takes seconds.
            f"sentinel known-replica {service} {HOST} {self._replica.port}",
        ]
        lines += [
            f"sentinel known-sentinel {service} {HOST} {port} {run_id}"
            for port, run_id in all_sentinels
            if run_id != my_id
        ]
        return "\n".join(lines) + "\n"

    @property
    def master(self) -> RedisServer:
        """The server that is master now (it changes with :meth:`failover`)."""
        return self._master

    @property
    def replica(self) -> RedisServer:
        """The other data server: a replica (or a killed former master)."""
        return self._replica

    @property
    def sentinels(self) -> list[RedisServer]:
        """The three sentinel processes."""
        return list(self._sentinels)

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/<service>/0``."""
        hosts = ",".join(f"{HOST}:{s.port}" for s in self._sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``[(host, port), ...]`` of the sentinels, as ``redis.sentinel.Sentinel`` takes."""
        return [(HOST, s.port) for s in self._sentinels]

    def start(self) -> None:
        """Start all five processes and wait (bounded) until replication and the
        sentinels have settled; on failure, stop whatever was started."""
        try:
            self._master.start()
            self._replica.start()
            _start_all(self._sentinels)
            for sentinel in self._sentinels:
                timers = (str(part) for item in _SENTINEL_TIMERS.items() for part in item)
                sentinel.execute("SENTINEL", "DEBUG", *timers)
            _wait_for(self._replica_linked, f"{self._replica.name} to sync with the master")
            _wait_for(self._sentinels_settled, "the sentinels to see the master and each other")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process."""
        _stop_all([*self._sentinels, self._replica, self._master])

    def _replica_linked(self) -> bool:
        return bool(self._replica.info("replication").get("master_link_status") == "up")

    def _master_addresses(self) -> list[tuple[str, int] | None]:
        result: list[tuple[str, int] | None] = []
        for sentinel in self._sentinels:
            reply = sentinel.execute("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            result.append((reply[0], int(reply[1])) if reply else None)
        return result

    def _sentinels_settled(self) -> bool:
        expected = (HOST, self._master.port)
        if any(address != expected for address in self._master_addresses()):
            return False
        for sentinel in self._sentinels:
            master = _pairs(sentinel.execute("SENTINEL", "MASTER", self.service))
            if master["flags"] != "master" or master["num-other-sentinels"] != "2":
                return False
            peers = [_pairs(p) for p in sentinel.execute("SENTINEL", "SENTINELS", self.service)]
            # A peer's stale "master_down" opinion from a past failover is harmless.
            if any({"s_down", "disconnected"} & set(p["flags"].split(",")) for p in peers):
                return False
            replicas = [_pairs(r) for r in sentinel.execute("SENTINEL", "REPLICAS", self.service)]
            # A sentinel promotes only a replica whose INFO it has read.
            if [(r["flags"], r["master-link-status"]) for r in replicas] != [("slave", "ok")]:
                return False
        return True

    def failover(self, *, restart_old_master: bool = True) -> None:
        """Kill the master and wait (bounded) until every sentinel names the replica
        as the new master.

        Afterwards :attr:`master` is the promoted server. With ``restart_old_master``
        the killed server is started again as a replica of the new master, and this
        waits until it has synced and the sentinels see it healthy, so the setup is
        whole again; otherwise :attr:`replica` stays down.
        """
        old, new = self._master, self._replica
        old.kill()
        expected = (HOST, new.port)
        # A failover attempt the sentinels abort is retried after twice the
        # failover timeout; on a loaded machine that can take a while.
        _wait_for(
            lambda: all(address == expected for address in self._master_addresses()),
            f"the sentinels to promote {new.name} on port {new.port}",
            timeout=2 * WAIT_TIMEOUT,
        )
        self._master, self._replica = new, old
        if restart_old_master:
            old.replica_of = new.port
            old.start()
            _wait_for(self._replica_linked, f"{old.name} to rejoin as a replica")
            _wait_for(self._sentinels_settled, "the sentinels to see the rejoined replica")


class ClusterSetup(_Running):
    """A Redis Cluster of three masters (no replicas) covering all 16384 slots.

    :param directory: parent directory for the nodes' directories.
    :param node_timeout_ms: ``cluster-node-timeout`` once the cluster is up.
    """

    def __init__(self, directory: Path, *, node_timeout_ms: int = 5000) -> None:
        self.directory = directory
        self.node_timeout_ms = node_timeout_ms
        self._nodes = [
            RedisServer(
                directory / f"node-{i}",
                name=f"node-{i}",
                cluster=True,
                cluster_node_timeout_ms=_CLUSTER_JOIN_NODE_TIMEOUT_MS,
            )
            for i in range(1, 4)
        ]

    @property
    def nodes(self) -> list[RedisServer]:
        """The three master nodes."""
        return list(self._nodes)

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3``."""
        return "redis+cluster://" + ",".join(f"{HOST}:{n.port}" for n in self._nodes)

    def start(self) -> None:
        """Start the nodes, join them with ``redis-cli --cluster create``, and wait
        (bounded) until every node reports ``cluster_state:ok`` with all slots
        assigned; on failure, stop whatever was started."""
        try:
            _start_all(self._nodes)
            self._create()
            # Forming is usually done in ~2 s, but on a loaded machine a node can
            # be flagged as failing for a while under the short joining timeout.
            _wait_for(
                self._healthy,
                "every cluster node to report cluster_state:ok",
                timeout=4 * WAIT_TIMEOUT,
            )
            for node in self._nodes:
                node.execute("CONFIG", "SET", "cluster-node-timeout", str(self.node_timeout_ms))
                node.cluster_node_timeout_ms = self.node_timeout_ms
        except BaseException:
            self.stop()
            raise

    def _create(self) -> None:
        command = [_binary("redis-cli"), "--cluster", "create"]
        command += [f"{HOST}:{node.port}" for node in self._nodes]
        command += ["--cluster-replicas", "0", "--cluster-yes"]
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=WAIT_TIMEOUT,
                check=False,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            raise RedisSetupError(f"{' '.join(command)} did not finish in time") from exc
        if result.returncode != 0:
            raise RedisSetupError(
                f"{' '.join(command)} failed with status {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )

    def _healthy(self) -> bool:
        for node in self._nodes:
            text = node.execute("CLUSTER", "INFO")
            fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
            if (
                fields.get("cluster_state") != "ok"
                or fields.get("cluster_slots_ok") != "16384"
                or fields.get("cluster_known_nodes") != str(len(self._nodes))
            ):
                return False
        return True

    def stop(self) -> None:
        """Stop every node."""
        _stop_all(self._nodes)

    def client(self, **kwargs: t.Any) -> redis.cluster.RedisCluster:
        """A new ``redis.cluster.RedisCluster`` client (bytes replies). Close it when done."""
        options: dict[str, t.Any] = {"socket_timeout": 5, "socket_connect_timeout": 5}
        options.update(kwargs)
        first = self._nodes[0]
        return redis.cluster.RedisCluster(host=HOST, port=first.port, **options)

    def command_counts(self) -> dict[str, int]:
        """:meth:`RedisServer.command_counts` summed over the nodes."""
        return _sum_counts(node.command_counts() for node in self._nodes)

    def reset_stats(self) -> None:
        """Reset the statistics of every node."""
        for node in self._nodes:
            node.reset_stats()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_RUNNING):
        server.kill()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A standalone Redis server shared by the whole test run."""
    with RedisServer(tmp_path_factory.mktemp("redis"), name="session") as server:
        yield server


@pytest.fixture
def fresh_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A standalone Redis server for one test, which may stop, restart or kill it."""
    with RedisServer(tmp_path / "redis", name="fresh") as server:
        yield server


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    """A master, a replica and three sentinels, shared by the whole test run.

    A failover here changes the setup for every later test (and a failed one breaks
    it), so tests that fail over should use ``fresh_redis_sentinel``.
    """
    with SentinelSetup(tmp_path_factory.mktemp("redis-sentinel")) as setup:
        yield setup


@pytest.fixture
def fresh_redis_sentinel(tmp_path: Path) -> Iterator[SentinelSetup]:
    """A :class:`SentinelSetup` for one test, which may fail over or break it."""
    with SentinelSetup(tmp_path / "redis-sentinel") as setup:
        yield setup


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSetup]:
    """A three-master Redis Cluster shared by the whole test run.

    A cluster that does not settle is started once more, on new ports, before
    the tests that need it fail.
    """
    cluster = ClusterSetup(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
    except RedisSetupError:
        cluster = ClusterSetup(tmp_path_factory.mktemp("redis-cluster-again"))
        cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
