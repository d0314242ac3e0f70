"""The reliability suite: faults injected into real Redis and real processes.

Run by `make test-reliability` (and in CI, with its own time budget). The contract tests
are also run here against a real 3-master Redis Cluster: the fixtures below give them a
Cluster-backed `make_store`.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.cluster import RedisCluster

from sharedstate import SharedStore
from sharedstate.redis_server import RedisProcess

_namespaces = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.fspath):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisProcess]]:
    """Three masters on free loopback ports, joined with redis-cli --cluster create."""
    base = tmp_path_factory.mktemp("cluster")
    nodes = []
    for index in range(3):
        node = RedisProcess(
            base / str(index), extra=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
        )
        node.start()
        nodes.append(node)
    subprocess.run(
        [
            "redis-cli",
            "--cluster",
            "create",
            *(f"127.0.0.1:{node.port}" for node in nodes),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ],
        check=True,
        capture_output=True,
    )
    client = RedisCluster(host="127.0.0.1", port=nodes[0].port)
    from tests.deployments import wait_for

    wait_for(lambda: client.cluster_info().get("cluster_state") == "ok", 30, "the cluster")
    client.close()
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture
def cluster_client(cluster: list[RedisProcess]) -> Iterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=cluster[0].port)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    client.close()


@pytest.fixture
def make_store(cluster_client: RedisCluster) -> Any:
    """The contract tests' store factory, on the Cluster."""

    def make(
        namespace: str | None = None, client_name: str = "tester", sync: bool = False, **options: Any
    ) -> Any:
        return SharedStore(cluster_client, namespace or f"c{next(_namespaces)}", client_name, **options)

    make.backend = "cluster"  # type: ignore[attr-defined]
    make.flavour = "sync"  # type: ignore[attr-defined]
    return make


@pytest.fixture
def store(make_store: Any) -> Any:
    return make_store()


class _WholeCluster:
    """The cluster client, with KEYS answered by every primary (it asks one node by default)."""

    def __init__(self, client: RedisCluster) -> None:
        self.client = client

    def keys(self, pattern: str) -> list[bytes]:
        found: list[bytes] = []
        for node in self.client.get_primaries():
            found += self.client.keys(pattern, target_nodes=node)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@pytest.fixture
def raw(cluster_client: RedisCluster) -> _WholeCluster:
    return _WholeCluster(cluster_client)


@pytest.fixture
def tls_certificates(tmp_path: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1, made with openssl."""
    steps = [
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "1",
            "-subj",
            "/CN=test-ca",
        ],
        [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        [
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
        ],
    ]
    (tmp_path / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for step in steps:
        if subprocess.run(["openssl", *step], cwd=tmp_path, capture_output=True).returncode:
            pytest.skip("openssl could not make test certificates")
    return tmp_path
