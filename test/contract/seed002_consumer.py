"""The minimal redis-py consumer of a candle stream (docs/contracts.md §6), bounded so a test can run it.

Env: REDIS_HOST, REDIS_PORT, INSTRUMENT_KEY, GROUP, COUNT (candles to read, then exit), and
REDIS_CLUSTER=1 to connect to a Redis Cluster (redis-py's RedisCluster; nothing else changes).
Prints one JSON line per candle: {"id", "ts_open", "close"} after checking every contract field.
"""
import json
import os
from datetime import datetime

from redis import Redis
from redis.cluster import RedisCluster
from redis.exceptions import ResponseError

redis_client = (RedisCluster if os.getenv("REDIS_CLUSTER") == "1" else Redis)(
    host=os.getenv("REDIS_HOST", "redis"),
    port=int(os.getenv("REDIS_PORT", "6379")),
    decode_responses=True,
)

instrument_key = os.getenv("INSTRUMENT_KEY", "binance:spot:BTCUSDT")
stream = f"md.candles.1m.{instrument_key}"
group = os.getenv("GROUP", "strategy.mean_reversion")
consumer = os.getenv("HOSTNAME", "local") + "-1"
want = int(os.getenv("COUNT", "3"))

FIELDS = ["schema_version", "market_id", "symbol", "instrument_key", "ts_open", "ts_close", "open", "high",
          "low", "close", "volume_base", "volume_quote", "source", "ingested_at", "ingest_id"]


def iso_ms(s):
    assert s.endswith("Z") and len(s) == 24, s
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")


try:
    redis_client.xgroup_create(name=stream, groupname=group, id="$", mkstream=True)
except ResponseError as exc:
    if "BUSYGROUP" not in str(exc):
        raise

seen = 0
while seen < want:
    events = redis_client.xreadgroup(
        groupname=group,
        consumername=consumer,
        streams={stream: ">"},
        count=200,
        block=5000,
    )
    for _, entries in events:
        for message_id, fields in entries:
            assert sorted(fields.keys()) == sorted(FIELDS), fields.keys()
            assert fields["schema_version"] == "1"
            assert fields["instrument_key"] == instrument_key
            ts_open = fields["ts_open"]
            opened = iso_ms(ts_open)
            assert (iso_ms(fields["ts_close"]) - opened).total_seconds() == 60
            epoch_ms = round((opened - datetime(1970, 1, 1)).total_seconds() * 1000)
            assert message_id == f"{epoch_ms}-0", (message_id, ts_open)
            close_price = float(fields["close"])
            assert float(fields["low"]) <= close_price <= float(fields["high"])
            float(fields["volume_base"])
            # strategy logic here
            redis_client.xack(stream, group, message_id)
            print(json.dumps({"id": message_id, "ts_open": ts_open, "close": fields["close"]}), flush=True)
            seen += 1
            if seen >= want:
                break
