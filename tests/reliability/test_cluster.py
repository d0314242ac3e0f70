"""The client's contract tests again, on a real 3-master Redis Cluster; namespaces spread over shards."""

from __future__ import annotations

from typing import Any

from redis.cluster import RedisCluster

from sharedstate import SharedStore
from tests.sharedstate.test_contract import *  # noqa: F403 - the same contract, on the Cluster's fixtures
from tests.sharedstate.test_watch_gaps import (  # noqa: F401 - the same tests, on the Cluster's fixtures
    test_a_watch_keeping_up_with_a_trimmed_feed_sees_every_change,
    test_a_watch_reading_after_redis_lost_the_feed_raises_feed_trimmed,
    test_a_watch_that_fell_behind_the_trimming_raises_feed_trimmed,
)


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


def test_the_client_cache_tracks_the_node_that_holds_each_namespace(cluster_client: RedisCluster) -> None:
    from tests.deployments import wait_for

    nodes = set()
    stores = []
    for index in range(9):
        namespace = f"cached{index}"
        store = SharedStore(cluster_client, namespace, "bot")
        stores.append(store)
        store.put("config", {"n": 0})
        wait_for(lambda s=store: s.get("config") and s.cached_version("config"), 15, "a cached copy")
        nodes.add(cluster_client.get_node_from_key(store.keys.names).port)
        # a write by another connection, on the node holding the slot, reaches the cache
        cluster_client.hset(store.keys.data("config"), "n", b"\x05")
        wait_for(lambda s=store: s.get("config").data == {"n": 5}, 15, "the invalidation")
    assert len(nodes) == 3
    for store in stores:
        store.close()


def test_the_asyncio_client_cache_on_a_cluster(cluster: Any) -> None:
    import asyncio
    import time

    import redis.asyncio.cluster

    from sharedstate import AsyncSharedStore

    async def main() -> None:
        client = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=cluster[0].port)
        store = AsyncSharedStore(client, "acached", "bot")
        try:
            await store.put("config", {"n": 0})
            deadline = time.monotonic() + 15
            while store.cached_version("config") is None:
                assert time.monotonic() < deadline, "no cached copy"
                await store.get("config")
                await asyncio.sleep(0.01)
            await client.hset(store.keys.data("config"), "n", b"\x06")
            while (await store.get("config")).data != {"n": 6}:
                assert time.monotonic() < deadline, "no invalidation"
                await asyncio.sleep(0.01)
        finally:
            await store.close()
            await client.aclose()

    asyncio.run(main())
