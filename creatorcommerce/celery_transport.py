"""kombu's Redis transport, publishing through one ``redis.Redis`` client per channel.

kombu builds a new ``redis.Redis`` client for every publish (``Channel.conn_or_acquire``),
and redis-py 8's constructor fills a table of ~170 response callbacks each time: 28 % of
the CPU of ``Task.delay()`` (cProfile), once per buy (the payment capture). The client is
thread-safe and only wraps the channel's connection pool, so this channel keeps one per
pool and builds a new one only when kombu replaces the pool (after a reconnect). The
consuming side (the worker's asynchronous client, BRPOP) is kombu's own.

Selected by ``CELERY_BROKER_TRANSPORT`` (settings.py) for ``redis://`` broker URLs; a
``rediss://`` URL keeps kombu's stock transport, which turns TLS on from that scheme.
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _sync_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel
