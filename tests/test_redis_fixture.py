"""The test set-up's Redis: it answers, it cleans only its own keys, and a private server works."""

from __future__ import annotations

import uuid

import redis

from tests.support.redis_server import PrivateRedis, answers_ping, delete_keys_with_prefix


def test_redis_answers_and_keeps_test_keys_apart(redis_client: redis.Redis, redis_prefix: str):
    redis_client.set(f"{redis_prefix}job", b"queued")
    assert redis_client.get(f"{redis_prefix}job") == b"queued"
    assert redis_prefix.startswith("meshcast-test:")


def test_cleanup_deletes_only_the_tests_own_keys(redis_url: str):
    client = redis.Redis.from_url(redis_url)
    outsider = f"not-a-test:{uuid.uuid4().hex}"
    client.set(outsider, b"keep me", ex=60)
    prefix = f"meshcast-test:{uuid.uuid4().hex}:"
    client.set(f"{prefix}a", b"1")
    client.set(f"{prefix}b", b"2")
    assert delete_keys_with_prefix(client, prefix) == 2
    assert client.get(f"{prefix}a") is None
    assert client.get(outsider) == b"keep me"
    client.delete(outsider)
    client.close()


def test_private_server_starts_answers_and_stops():
    server = PrivateRedis.start()
    try:
        assert answers_ping("127.0.0.1", server.port)
        client = redis.Redis.from_url(server.url)
        client.set("k", b"v")
        assert client.get("k") == b"v"
        client.close()
    finally:
        server.stop()
    assert not answers_ping("127.0.0.1", server.port)
    assert server.process.poll() is not None
