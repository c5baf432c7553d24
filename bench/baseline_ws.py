"""The fan-out baseline: the least a WebSocket server can do on this machine.

The ``websockets`` library's ``broadcast()`` to every connected client, fed by Redis pub/sub:
no Django, no Channels, no per-socket work. Each client gets a ``snapshot`` on connect, then
every message published on the Redis channel, verbatim (the driver in run.py publishes
``{"type": "stock", "stock": {code: n}, "seq", "ts"}`` with ``ts`` = its send time, the same
shape and size as the app's ``stock`` messages).

    python bench/baseline_ws.py --port 8790 --redis redis://127.0.0.1:6379/14 \
        --channel bench:stock --sku BENCH-FAN --stock 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

import redis.asyncio as aioredis
from websockets.asyncio.server import broadcast, serve


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--channel", default="bench:stock")
    parser.add_argument("--sku", required=True)
    parser.add_argument("--stock", type=int, default=0)
    args = parser.parse_args()
    state = {"stock": {args.sku: args.stock}, "seq": 0}

    async def viewer(websocket):
        await websocket.send(json.dumps({"type": "snapshot", "stock": state["stock"], "seq": state["seq"]}))
        await websocket.wait_closed()

    redis = aioredis.from_url(args.redis)
    pubsub = redis.pubsub()
    await pubsub.subscribe(args.channel)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))

    async with serve(viewer, args.host, args.port, compression=None, max_queue=64) as server:

        async def relay() -> None:
            async for item in pubsub.listen():
                if item.get("type") != "message":
                    continue
                text = item["data"].decode()
                message = json.loads(text)
                state["stock"], state["seq"] = message.get("stock", state["stock"]), message.get("seq", state["seq"])
                broadcast(server.connections, text)

        task = asyncio.create_task(relay())
        await stop
        task.cancel()
    await pubsub.aclose()
    await redis.aclose()


if __name__ == "__main__":
    # The default asyncio loop, as daphne's Twisted reactor runs on: the baseline differs
    # from the app by the framework, not by the event loop.
    asyncio.run(main())
