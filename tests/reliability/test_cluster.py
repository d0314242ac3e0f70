"""The client's contract tests again, on a real 3-master Redis Cluster; namespaces spread over shards."""

from __future__ import annotations

from typing import Any

from redis.cluster import RedisCluster

from sharedstate import SharedStore
from tests.sharedstate.test_contract import *  # noqa: F403 - the same contract, on the Cluster's fixtures


def test_namespaces_spread_over_the_shards_and_each_write_stays_in_one_slot(
    cluster_client: RedisCluster, raw: Any
) -> None:
    nodes = set()
    for index in range(12):
        namespace = f"bot{index}"
        store = SharedStore(cluster_client, namespace, "bot")
        store.put("config", {"n": index})
        store.merge("config", {"m": index})
        store.update("counter", lambda d: {**d, "n": d.get("n", 0) + 1})
        store.delete("counter")
        assert store.get("config").data == {"n": index, "m": index}
        assert [c.op for c in store.history("counter")] == ["delete", "put"]
        keys = raw.keys(f"ss:{{{namespace}}}:*")
        assert len(keys) >= 5  # data, meta, names, feed, history, ...
        slots = {cluster_client.keyslot(key) for key in keys}
        assert len(slots) == 1  # every key of the namespace in one slot: scripts are atomic
        nodes.add(cluster_client.get_node_from_key(f"ss:{{{namespace}}}:names").port)
    assert len(nodes) == 3
