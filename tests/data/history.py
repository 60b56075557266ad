#!/usr/bin/python3
"""The sandbox's historical data: rows an application wrote to origin long before the migration,
and the application's later updates of them through the proxies (so the backfill copies rows
that dual writes are changing at the same time).

  history.py load   --contact-points ORIGIN [auth/TLS] --out DIR [--rows N] [--schema-only]
  history.py update --contact-points PROXIES [auth/TLS] --out DIR [--rate R] [--max-seconds S]
  history.py verify --contact-points HOSTS [auth/TLS] --out DIR

load creates zdm_sandbox.accounts (on target too, with --schema-only: a migration creates the
matching schema on target first) and writes N rows with write times 30 days old, some with a TTL; update changes
balances and adds tags until DIR/stop-history exists (or SIGTERM), recording each acknowledged
update; verify reads every row back from HOSTS (the proxies, or one cluster directly: the sandbox
reads each) and prints {"rows": n, "checked": n, "mismatched": n, "updates": n}; it exits 1 when
a row lacks its last acknowledged balance. Run with /usr/bin/python3.
"""
import argparse
import json
import logging
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "drivers"))
from harness import add_connection_args, connection_options  # noqa: E402

from cassandra.cluster import Cluster  # noqa: E402
from cassandra.concurrent import execute_concurrent_with_args  # noqa: E402

KEYSPACE, TABLE = "zdm_sandbox", "accounts"
SCHEMA = [
    f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = "
    "{'class': 'SimpleStrategy', 'replication_factor': 1}",
    f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.{TABLE} (id int PRIMARY KEY, balance bigint, owner text, "
    "tags set<text>, note text)",
]


def connect(args):
    cluster = Cluster(contact_points=args.contact_points.split(","), port=args.port, **connection_options(args))
    return cluster, cluster.connect()


def load(args):
    cluster, s = connect(args)
    for q in SCHEMA:
        s.execute(q)
    if args.schema_only:
        cluster.shutdown()
        return 0
    base = int(time.time() * 1e6) - 30 * 86400 * 10**6
    ins = s.prepare(f"INSERT INTO {KEYSPACE}.{TABLE} (id, balance, owner, tags) VALUES (?, ?, ?, ?) "
                    "USING TIMESTAMP ?")
    note = s.prepare(f"UPDATE {KEYSPACE}.{TABLE} USING TIMESTAMP ? AND TTL ? SET note = ? WHERE id = ?")
    execute_concurrent_with_args(
        s, ins, [(i, 1000 + i, f"owner-{i % 97}", {f"t{i % 5}"}, base + i) for i in range(args.rows)],
        concurrency=100, raise_on_first_error=True)
    execute_concurrent_with_args(
        s, note, [(base + 10**6 + i, 30 * 86400, f"note {i}", i) for i in range(0, args.rows, 3)],
        concurrency=100, raise_on_first_error=True)
    with open(os.path.join(args.out, "history.tsv"), "w") as f:
        for i in range(args.rows):
            f.write(f"{i}\t{1000 + i}\n")
    with open(os.path.join(args.out, "history-rows"), "w") as f:
        f.write(str(args.rows))
    cluster.shutdown()
    print(json.dumps({"rows": args.rows}))
    return 0


def update(args):
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    rows = int(open(os.path.join(args.out, "history-rows")).read())
    cluster, s = connect(args)
    upd = s.prepare(f"UPDATE {KEYSPACE}.{TABLE} SET balance = ?, tags = tags + ? WHERE id = ?")
    stop_file = os.path.join(args.out, "stop-history")
    rnd = random.Random(11)
    counts = {"updates": 0, "errors": 0}
    started = time.monotonic()
    with open(os.path.join(args.out, "history.tsv"), "a", buffering=1) as acked:
        while not stop["now"] and not os.path.exists(stop_file) and time.monotonic() - started < args.max_seconds:
            i, balance = rnd.randrange(rows), rnd.randrange(10**9)
            try:
                s.execute(upd, (balance, {"updated"}, i))
                acked.write(f"{i}\t{balance}\n")
                counts["updates"] += 1
            except Exception:  # noqa: BLE001 - counted
                counts["errors"] += 1
            if counts["updates"] % 50 == 0:
                with open(os.path.join(args.out, "history-status.json"), "w") as f:
                    json.dump(counts, f)
            time.sleep(1.0 / args.rate)
    with open(os.path.join(args.out, "history-status.json"), "w") as f:
        json.dump(counts, f)
    cluster.shutdown()
    return 0


def verify(args):
    expect = {}
    for line in open(os.path.join(args.out, "history.tsv")):
        i, balance = line.split("\t")
        expect[int(i)] = int(balance)
    lines = sum(1 for _ in open(os.path.join(args.out, "history.tsv")))
    loaded = int(open(os.path.join(args.out, "history-rows")).read())
    cluster, s = connect(args)
    got = {r.id: r.balance for r in s.execute(f"SELECT id, balance FROM {KEYSPACE}.{TABLE}")}
    cluster.shutdown()
    mismatched = [i for i, b in expect.items() if got.get(i) != b]
    print(json.dumps({"rows": len(got), "checked": len(expect), "mismatched": len(mismatched),
                      "updates": lines - loaded,
                      "examples": mismatched[:5]}))
    return 0 if not mismatched else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["load", "update", "verify"])
    ap.add_argument("--contact-points", required=True)
    ap.add_argument("--port", type=int, default=9042)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--schema-only", action="store_true")
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--max-seconds", type=float, default=1800)
    add_connection_args(ap)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    os.makedirs(args.out, exist_ok=True)
    return {"load": load, "update": update, "verify": verify}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
