"""The Redis test infrastructure in ``redis_servers.py`` does what the tests rely on."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis
import redis.sentinel
from redis_servers import (
    HOST,
    ClusterSetup,
    RedisServer,
    RedisSetupError,
    SentinelSetup,
)

pytest_plugins = ["redis_servers"]


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def test_standalone_server_stores_and_returns_values(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    with redis_server.client() as client:
        client.set("infra:standalone", b"value")
        assert client.get("infra:standalone") == b"value"


def test_restart_serves_again_on_the_same_port(fresh_redis_server: RedisServer) -> None:
    port = fresh_redis_server.port
    with fresh_redis_server.client() as client:
        client.set("infra:restart", b"before")

    fresh_redis_server.stop()
    assert not fresh_redis_server.running
    assert not _accepts_connections(port)

    fresh_redis_server.start()
    assert fresh_redis_server.port == port
    with fresh_redis_server.client() as client:
        assert client.get("infra:restart") is None  # no persistence
        client.set("infra:restart", b"after")
        assert client.get("infra:restart") == b"after"

    fresh_redis_server.restart()
    with fresh_redis_server.client() as client:
        assert client.ping() is True


def test_killed_server_makes_clients_raise_connection_error(
    fresh_redis_server: RedisServer,
) -> None:
    with fresh_redis_server.client() as client:
        assert client.ping() is True
        fresh_redis_server.kill()
        assert not fresh_redis_server.running
        with pytest.raises(redis.ConnectionError):
            client.ping()


def test_command_counts_show_only_what_clients_sent(redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        client.ping()  # connect (HELLO) before the reset
        redis_server.reset_stats()
        assert redis_server.command_counts() == {}
        client.get("infra:counted")
        client.get("infra:counted")
        client.set("infra:counted", b"1")

    assert redis_server.command_counts() == {"get": 2, "set": 1}
    redis_server.reset_stats()
    assert redis_server.command_counts() == {}


def test_server_that_cannot_start_fails_with_its_log(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, name="broken", extra_args=["--no-such-directive", "1"])
    with pytest.raises(RedisSetupError, match=r"(?s)exited with status 1.*no-such-directive"):
        server.start()
    assert not server.running


def test_missing_binary_fails_instead_of_skipping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = RedisServer(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RedisSetupError, match="'redis-server' is not on PATH"):
        server.start()


def test_server_moves_to_another_port_if_its_port_was_taken(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    taken = server.port
    with socket.socket() as squatter:
        squatter.bind((HOST, taken))
        squatter.listen()
        with server:
            assert server.port != taken
            with server.client() as client:
                assert client.ping() is True


def test_sentinel_client_writes_to_master_and_replica_receives(
    redis_sentinel: SentinelSetup,
) -> None:
    service = redis_sentinel.service
    ports = ",".join(f"127.0.0.1:{s.port}" for s in redis_sentinel.sentinels)
    assert redis_sentinel.url == f"redis+sentinel://{ports}/{service}/0"

    with redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        redis_sentinel.sentinel_addresses, socket_timeout=5
    ) as sentinel:
        assert sentinel.discover_master(service) == (HOST, redis_sentinel.master.port)
        with sentinel.master_for(service) as master:
            master.set("infra:sentinel", b"replicated")
            assert master.wait(1, 5000) == 1
        with sentinel.slave_for(service) as replica:
            assert replica.get("infra:sentinel") == b"replicated"

    with redis_sentinel.replica.client() as direct:
        assert direct.get("infra:sentinel") == b"replicated"


def test_failover_promotes_the_replica(fresh_redis_sentinel: SentinelSetup) -> None:
    sentinels = fresh_redis_sentinel
    service = sentinels.service
    old_master = sentinels.master
    old_replica = sentinels.replica

    with (
        redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            sentinels.sentinel_addresses, socket_timeout=5
        ) as sentinel,
        sentinel.master_for(service) as master,
    ):
        master.set("infra:failover", b"before")
        assert master.wait(1, 5000) == 1

        sentinels.failover()

        assert sentinels.master is old_replica
        assert sentinels.replica is old_master
        assert sentinel.discover_master(service) == (HOST, old_replica.port)
        # The same client reconnects to the new master, which has the replicated data.
        assert master.get("infra:failover") == b"before"
        master.set("infra:failover", b"after")

    with old_replica.client() as new_master:
        assert new_master.get("infra:failover") == b"after"
        assert new_master.info("replication")["role"] == "master"
    with old_master.client() as rejoined:
        assert rejoined.info("replication")["role"] == "slave"


def test_cluster_spreads_keys_over_nodes(redis_cluster: ClusterSetup) -> None:
    ports = ",".join(f"127.0.0.1:{n.port}" for n in redis_cluster.nodes)
    assert redis_cluster.url == f"redis+cluster://{ports}"

    keys = [f"infra:cluster:{i}" for i in range(12)]
    with redis_cluster.client() as cluster:
        for key in keys:
            cluster.set(key, key.encode())
        assert [cluster.get(key) for key in keys] == [key.encode() for key in keys]
        owner = {key: cluster.get_node_from_key(key).port for key in keys}

    assert set(owner.values()) == {node.port for node in redis_cluster.nodes}
    for node in redis_cluster.nodes:
        with node.client() as client:
            for key in keys:
                if owner[key] == node.port:
                    assert client.get(key) == key.encode()


def test_cluster_command_counts_sum_over_nodes(redis_cluster: ClusterSetup) -> None:
    keys = [f"infra:counts:{i}" for i in range(6)]
    with redis_cluster.client() as cluster:
        redis_cluster.reset_stats()
        for key in keys:
            cluster.get(key)
        per_node = [node.command_counts().get("get", 0) for node in redis_cluster.nodes]

    assert sum(per_node) == len(keys)
    assert sum(1 for calls in per_node if calls) > 1
    assert redis_cluster.command_counts()["get"] == len(keys)
