#!/usr/bin/env python3
"""A check workload for redis-py: `cargo xtask check --workload 'python3 cluster-tests/examples/workload.py'`.

Writes unique keys with redis-py's RedisCluster until SIGTERM and prints one JSON line per write: what the client
said (ok, fail, unknown). With CHECK_WAIT=N > 0 it confirms each write with WAIT N on the connection that sent
the SET (redis-py's own `wait()` goes to every primary on other connections and vouches for nothing), so `ok`
means N replicas have it. The protocol and the variables: docs/check-your-client.md.
"""
import json
import os
import signal
import sys
import threading
import time

import redis
from redis.cluster import ClusterNode, RedisCluster

stop = False


def on_sigterm(_signum, _frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_sigterm)
# The checker closes stdin at the stop too, and so does a checker that dies: stop then as well.
threading.Thread(target=lambda: (sys.stdin.read(), on_sigterm(None, None)), daemon=True).start()

env = os.environ
seeds = [ClusterNode(*seed.rsplit(":", 1)) for seed in env["CHECK_SEEDS"].split(",")]
prefix, wait, wait_ms = env["CHECK_KEY_PREFIX"], int(env.get("CHECK_WAIT", "0")), int(env.get("CHECK_WAIT_MS", "500"))
options = dict(socket_timeout=1.0, socket_connect_timeout=1.0, username=env.get("CHECK_USER"), password=env.get("CHECK_PASSWORD"))
if "CHECK_TLS_CA" in env:
    options.update(ssl=True, ssl_ca_certs=env["CHECK_TLS_CA"], ssl_certfile=env["CHECK_TLS_CERT"], ssl_keyfile=env["CHECK_TLS_KEY"])
out = open(env["CHECK_OUTPUT"], "w") if "CHECK_OUTPUT" in env else sys.stdout

client = None
n = 0
while not stop:
    key, value = f"{prefix}py:{n}", str(n)
    n += 1
    start = time.time()
    try:
        if client is None:
            client = RedisCluster(startup_nodes=seeds, **options)
        if wait == 0:
            client.set(key, value)
            outcome = "ok"
        else:
            # SET and WAIT in one pipeline on the key's master's connection: WAIT vouches for that connection's writes.
            node = client.get_node_from_key(key)
            pipe = client.get_redis_connection(node).pipeline(transaction=False)
            pipe.set(key, value).execute_command("WAIT", wait, wait_ms)
            _, replicas = pipe.execute()
            outcome = "ok" if replicas >= wait else "unknown"
    except (redis.exceptions.TimeoutError, redis.exceptions.ConnectionError):
        outcome = "unknown"  # the SET may or may not have been applied
    except redis.exceptions.RedisError:
        outcome = "fail"  # an error reply (CLUSTERDOWN, MOVED after a failover...): not applied
    if outcome != "ok" and client is not None:
        try:
            client.nodes_manager.initialize()  # learn the new topology after a failover
        except redis.exceptions.RedisError:
            client = None  # no node answers: start again from the seeds
    out.write(json.dumps({"key": key, "value": value, "outcome": outcome, "start": start, "end": time.time()}) + "\n")
    if outcome != "ok":
        time.sleep(0.02)
out.flush()
