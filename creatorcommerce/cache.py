"""One Redis connection pool per process for Django's cache.

Django keeps cache instances per thread, and under ASGI every request's sync code runs in a
thread of its own, so each request built a fresh pool and opened a new TCP connection to
Redis (py-spy: connect() was the largest single cost of an authenticated API call). This
pool class hands every cache instance in the process the same thread-safe pool.
"""

from __future__ import annotations

import os
import threading

import redis

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
