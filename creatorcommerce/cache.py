"""Django's Redis cache with one connection pool and one client per process.

Django keeps cache instances per thread, and under ASGI every request's sync code runs in a
thread of its own, so each request built a fresh pool and opened a new TCP connection to
Redis (py-spy: connect() was the largest single cost of an authenticated API call).
``SharedConnectionPool`` hands every cache instance in the process the same thread-safe
pool.

Django also builds a new ``redis.Redis`` client for every cache operation, and redis-py 8's
client constructor fills a table of ~170 response callbacks each time: 710 Python calls for
one ``cache.get`` (cProfile), 3 operations per authenticated buy. ``RedisCache`` keeps one
client per pool instead (redis-py clients are thread-safe; a command takes a connection
from the pool for its duration): 168 calls per ``get``.
"""

from __future__ import annotations

import os
import threading

import redis
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

_pools: dict[tuple, redis.ConnectionPool] = {}
_lock = threading.Lock()


class SharedConnectionPool(redis.ConnectionPool):
    @classmethod
    def from_url(cls, url, **kwargs):
        key = (os.getpid(), url, tuple(sorted((name, repr(value)) for name, value in kwargs.items())))
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = super().from_url(url, **kwargs)
        return pool


_clients: dict[int, redis.Redis] = {}


class SharedClientRedisCacheClient(RedisCacheClient):
    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = _clients.get(id(pool))
        if client is None or client.connection_pool is not pool:
            with _lock:
                client = _clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with one client per pool."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient

    def count(self, key: str, timeout: int, version=None) -> int:
        """Add one to the counter at ``key`` and return it; a missing counter starts at one
        and expires ``timeout`` seconds later. One round trip (MULTI: SET NX EX, INCR;
        Redis 2.6.12+), atomic. Django's ``incr`` is EXISTS then INCRBY: two round trips,
        and a key that expires between them raises."""
        key = self.make_and_validate_key(key, version=version)
        client = self._cache.get_client(key, write=True)
        with client.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=timeout, nx=True)
            pipe.incr(key)
            _, count = pipe.execute()
        return count
