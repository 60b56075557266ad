#!/usr/bin/python3
"""Reads the sandbox table directly from one cluster (not through the proxy) with the python
driver and compares it with the application's acknowledged writes.

Prints one JSON object: {"rows": n, "acknowledged": n, "missing": n, "mismatched": n,
"examples": [...]}; exit code 0 when every acknowledged write is present with its payload.
"""
import argparse
import json
import logging
import os
import sys
import uuid

from cassandra.cluster import Cluster

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import add_connection_args, connection_options  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--contact-points", required=True)
    ap.add_argument("--port", type=int, default=9042)
    ap.add_argument("--acked", required=True, help="acked.tsv written by app.py")
    ap.add_argument("--keyspace", default="zdm_sandbox")
    ap.add_argument("--table", default="events")
    add_connection_args(ap)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)

    acked = {}
    with open(args.acked) as f:
        for line in f:
            rid, seq, payload = line.rstrip("\n").split("\t")
            acked[uuid.UUID(rid)] = (int(seq), payload)

    cluster = Cluster(contact_points=args.contact_points.split(","), port=args.port,
                      **connection_options(args))
    session = cluster.connect()
    rows = {}
    for r in session.execute(f"SELECT id, seq, payload FROM {args.keyspace}.{args.table}"):
        rows[r.id] = (r.seq, r.payload)
    cluster.shutdown()

    missing = [k for k in acked if k not in rows]
    mismatched = [k for k in acked if k in rows and rows[k] != acked[k]]
    out = {
        "rows": len(rows),
        "acknowledged": len(acked),
        "missing": len(missing),
        "mismatched": len(mismatched),
        "examples": [str(k) for k in (missing + mismatched)[:5]],
    }
    print(json.dumps(out))
    return 0 if not missing and not mismatched else 1


if __name__ == "__main__":
    sys.exit(main())
