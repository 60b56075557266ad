#!/usr/bin/python3
"""The sandbox application: a DataStax python-driver client that writes and reads through the
ZDM proxies at a steady rate, the way a production service would during a migration.

Default Cluster() settings (protocol negotiation, token-aware routing, schema metadata), all
proxies as contact points, prepared INSERTs and SELECTs. Every acknowledged write is appended to
<out>/acked.tsv (id, seq, payload); counters go to <out>/status.json every second and a final
summary to <out>/summary.json. Stops on SIGTERM/SIGINT, when <out>/stop exists, or after
--max-seconds (a bound, so a forgotten app never runs forever).
"""
import argparse
import json
import logging
import os
import random
import signal
import sys
import time
import uuid

from cassandra.cluster import Cluster

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import add_connection_args, connection_options  # noqa: E402

KEYSPACE = "zdm_sandbox"
TABLE = "events"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--contact-points", required=True, help="comma-separated proxy addresses")
    ap.add_argument("--port", type=int, default=9042)
    ap.add_argument("--rate", type=float, default=50.0, help="write+read pairs per second")
    ap.add_argument("--out", required=True, help="directory for acked.tsv, status.json, summary.json")
    ap.add_argument("--max-seconds", type=float, default=1800)
    add_connection_args(ap)
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    logging.basicConfig(
        filename=os.path.join(args.out, "driver.log"),
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))

    cluster = Cluster(contact_points=args.contact_points.split(","), port=args.port,
                      **connection_options(args))
    session = cluster.connect()
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.{TABLE} "
        "(id uuid PRIMARY KEY, seq bigint, payload text, written_at timestamp)"
    )
    insert = session.prepare(
        f"INSERT INTO {KEYSPACE}.{TABLE} (id, seq, payload, written_at) VALUES (?, ?, ?, ?)"
    )
    select = session.prepare(f"SELECT seq, payload FROM {KEYSPACE}.{TABLE} WHERE id = ?")

    counts = {
        "protocol_version": cluster.protocol_version,
        "acknowledged_writes": 0,
        "write_errors": 0,
        "reads_ok": 0,
        "read_errors": 0,
        "read_mismatches": 0,
        "errors": [],
    }
    acked = []  # (id, seq, payload), for read-your-writes checks
    acked_file = open(os.path.join(args.out, "acked.tsv"), "a", buffering=1)
    stop_file = os.path.join(args.out, "stop")
    interval = 1.0 / args.rate
    started = time.monotonic()
    next_tick = started
    last_status = 0.0
    seq = 0

    def note_error(kind, exc):
        counts[kind] += 1
        if len(counts["errors"]) < 20:
            counts["errors"].append(f"{kind}: {type(exc).__name__}: {exc}")

    def write_status(path):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dict(counts, seconds=round(time.monotonic() - started, 1)), f)
        os.replace(tmp, path)

    while not stop["now"] and not os.path.exists(stop_file):
        now = time.monotonic()
        if now - started > args.max_seconds:
            break
        if now < next_tick:
            time.sleep(next_tick - now)
        next_tick += interval
        seq += 1
        row_id = uuid.uuid4()
        payload = f"row-{seq}-{row_id.hex[:8]}"
        try:
            session.execute(insert, (row_id, seq, payload, int(time.time() * 1000)))
            counts["acknowledged_writes"] += 1
            acked.append((row_id, seq, payload))
            acked_file.write(f"{row_id}\t{seq}\t{payload}\n")
        except Exception as exc:  # the driver raised: the application saw an error
            note_error("write_errors", exc)
        if acked:
            rid, rseq, rpayload = random.choice(acked)
            try:
                row = session.execute(select, (rid,)).one()
                if row is None or row.seq != rseq or row.payload != rpayload:
                    counts["read_mismatches"] += 1
                    if len(counts["errors"]) < 20:
                        counts["errors"].append(f"read mismatch for {rid}: got {row}")
                else:
                    counts["reads_ok"] += 1
            except Exception as exc:
                note_error("read_errors", exc)
        if now - last_status >= 1.0:
            write_status(os.path.join(args.out, "status.json"))
            last_status = now

    acked_file.close()
    write_status(os.path.join(args.out, "status.json"))
    write_status(os.path.join(args.out, "summary.json"))
    cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
