#!/usr/bin/python3
"""zdm-data validate against two 3-node stand-in clusters holding the same rows with the same
write times, except for seeded differences; the real python-driver seeds them on each cluster
directly.

Usage: /usr/bin/python3 test_validate.py [build dir]
Address plan: origin 127.24.5.1-3, target 127.24.6.1-3 (CQL 9042), fault admins on :19250.

- Each seeded difference is reported exactly (kind, key, columns), as text and --json: a row
  only on origin, one only on target, a value changed (an older write on target), the same
  value with an older writetime (only with --writetime), a newer write on target, a static
  column, a map missing an entry, a counter only on origin, a counter that differs.
- --repair fixes exactly the repairable ones with origin's writetimes; the newer target write
  and the differing counter remain (exit 1); --delete-extra removes the row only on target;
  a last validate finds exactly what may not be repaired.
- --sample 50 compares half the token ranges.
- Under dual writes (the same write on both clusters), validate finds nothing: differences that
  were writes in flight agree when read again.
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import datatest as dt  # noqa: E402
from cassandra.concurrent import execute_concurrent_with_args  # noqa: E402

if len(sys.argv) > 1:
    dt.set_build(sys.argv[1])
ORIGIN = ["127.24.5.1", "127.24.5.2", "127.24.5.3"]
TARGET = ["127.24.6.1", "127.24.6.2", "127.24.6.3"]
check = dt.Checks()
WORK = dt.cleanup_dir("zdm-data-validate-")
SCHEMA = [
    "CREATE KEYSPACE vt WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    "CREATE TABLE vt.items (p int, c text, s int static, v text, n int, m map<text, text>, PRIMARY KEY (p, c))",
    "CREATE TABLE vt.cnt (id int PRIMARY KEY, n counter)",
    "CREATE TABLE vt.live (id int PRIMARY KEY, v text, n int)",
]
BASE = int(time.time() * 1e6) - 86400 * 10**6


def load(session, seeds):
    """The same rows on both clusters; `seeds` changes some for target."""
    ins = session.prepare("INSERT INTO vt.items (p, c, v, n, m) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?")
    st = session.prepare("UPDATE vt.items USING TIMESTAMP ? SET s = ? WHERE p = ?")
    rows, statics = [], []
    for p in range(300):
        statics.append((BASE + p, p * 2, p))
        for c in "abc":
            rows.append((p, c, f"v{p}{c}", p, {"k1": "x", "k2": c}, BASE + 1000 + p))
    rows, statics = seeds(rows, statics)
    execute_concurrent_with_args(session, ins, rows, concurrency=100, raise_on_first_error=True)
    execute_concurrent_with_args(session, st, statics, concurrency=100, raise_on_first_error=True)


def seed_target(rows, statics):
    out = []
    for r in rows:
        p, c = r[0], r[1]
        if (p, c) == (1, "a"):
            continue  # only on origin
        if (p, c) == (3, "b"):
            r = (p, c, "stale", r[3], r[4], r[5] - 100)  # changed: an older write
        if (p, c) == (4, "c"):
            r = r[:5] + (r[5] - 50,)  # the same values, written earlier
        if (p, c) == (7, "b"):
            r = (p, c, r[2], r[3], {"k1": "x"}, r[5])  # a map entry missing
        out.append(r)
    out.append((2, "zz", "extra", 0, None, BASE))  # only on target
    statics = [(ts - 10, 999, p) if p == 6 else (ts, s, p) for ts, s, p in statics]
    return out, statics


def report(*extra):
    rc, out, err = dt.run_data("validate", *dt.cluster_args(ORIGIN, TARGET), "-k", "vt", "-t", "items,cnt",
                               "--json", "--progress", "none", *extra)
    try:
        return rc, json.loads(out), err
    except ValueError:
        print(out, err)
        return rc, {"tables": {}}, err


def found(rep):
    """{(table, kind, key): [columns]} of a JSON report."""
    out = {}
    for table, r in rep["tables"].items():
        for d in r["differences"]:
            out[(table, d["kind"], d["key"])] = sorted(
                c["column"] + (" (writetime)" if c["writetime_only"] else "") for c in d["columns"])
    return out


def main():
    origin = dt.StandIn("origin", ORIGIN, 19250, WORK)
    target = dt.StandIn("target", TARGET, 19250, WORK)
    oc, o = dt.connect(ORIGIN)
    tc, t = dt.connect(TARGET)
    try:
        for stmt in SCHEMA:
            o.execute(stmt)
            t.execute(stmt)
        load(o, lambda r, s: (r, s))
        load(t, seed_target)
        # A newer write on target: never overwritten by a repair.
        t.execute("UPDATE vt.items USING TIMESTAMP %s SET v = 'newer' WHERE p = 5 AND c = 'a'",
                  (int(time.time() * 1e6),))
        for i in range(5):
            o.execute("UPDATE vt.cnt SET n = n + %s WHERE id = %s", (i + 10, i))
            if i != 1:
                t.execute("UPDATE vt.cnt SET n = n + %s WHERE id = %s", (i + 10 + (5 if i == 2 else 0), i))

        expect_wt = {
            ("vt.items", "only_origin", "p=1, c='a'"): [],
            ("vt.items", "only_target", "p=2, c='zz'"): [],
            ("vt.items", "differing", "p=3, c='b'"): ["n (writetime)", "v"],
            ("vt.items", "differing", "p=4, c='c'"): ["n (writetime)", "v (writetime)"],
            ("vt.items", "differing", "p=5, c='a'"): ["v"],
            ("vt.items", "differing", "p=6 (static columns)"): ["s"],
            ("vt.items", "differing", "p=7, c='b'"): ["m"],
            ("vt.cnt", "only_origin", "id=1"): [],
            ("vt.cnt", "differing", "id=2"): ["n"],
        }
        rc, rep, err = report("--writetime")
        got = found(rep)
        check(rc == 1 and got == expect_wt, f"validate --writetime reports each seeded difference exactly (exit {rc}): "
              f"missing {set(expect_wt) - set(got)}, unexpected {set(got) - set(expect_wt)}, "
              f"columns {[(k, got[k]) for k in got if k in expect_wt and got[k] != expect_wt[k]]}")
        items = rep["tables"].get("vt.items", {})
        check(items.get("origin_rows") == 900 and items.get("target_rows") == 899 + 1 and items.get("only_origin") == 1
              and items.get("only_target") == 1 and items.get("differing") == 5,
              "per-table counts: 900 rows on origin, 900 on target, 1 + 1 + 5 differences "
              f"({ {k: v for k, v in items.items() if k != 'differences'} })")
        check(rep.get("total", {}).get("remaining") == 9, f"total: 9 differences remain ({rep.get('total')})")

        rc, rep, _ = report()
        expect = {k: v for k, v in expect_wt.items() if k[2] != "p=4, c='c'"}
        expect[("vt.items", "differing", "p=3, c='b'")] = ["v"]
        check(rc == 1 and found(rep) == expect, "without --writetime the older writetime alone is not a difference")

        rc, out, err = dt.run_data("validate", *dt.cluster_args(ORIGIN, TARGET), "-k", "vt", "-t", "items,cnt",
                                   "--writetime", "--progress", "none")
        print(out, flush=True)
        check(rc == 1 and "  only on origin: p=1, c='a'" in out and "  differing: p=7, c='b': m" in out and
              "vt.items: 900 rows on origin, 900 on target: 1 only on origin, 1 only on target, 5 differing" in out,
              "the same report as text")

        rc, rep, err = report("--writetime", "--repair")
        repaired = {(tb, d["key"]): d.get("repair") for tb, r in rep["tables"].items() for d in r["differences"]}
        for k, v in sorted(repaired.items()):
            print(f"  {k}: {v}", flush=True)
        want_fixed = {("vt.items", "p=1, c='a'"), ("vt.items", "p=3, c='b'"), ("vt.items", "p=4, c='c'"),
                      ("vt.items", "p=6 (static columns)"), ("vt.items", "p=7, c='b'"), ("vt.cnt", "id=1")}
        check(rc == 1 and {k for k, v in repaired.items() if v == "repaired"} == want_fixed,
              f"--repair fixes exactly the repairable differences (exit {rc})")
        check(repaired.get(("vt.items", "p=5, c='a'"), "").startswith("not repaired: target keeps a newer write")
              and repaired.get(("vt.cnt", "id=2"), "").startswith("not repaired: counter values differ")
              and "--delete-extra" in repaired.get(("vt.items", "p=2, c='zz'"), ""),
              "the newer target write, the differing counter and the extra row are reported as not repaired")
        row = o.execute("SELECT v, writetime(v) AS w FROM vt.items WHERE p = 3 AND c = 'b'").one()
        trow = t.execute("SELECT v, writetime(v) AS w FROM vt.items WHERE p = 3 AND c = 'b'").one()
        check(row == trow, f"a repaired row carries origin's value and writetime on target ({trow})")
        check(t.execute("SELECT v FROM vt.items WHERE p = 5 AND c = 'a'").one().v == "newer",
              "the newer write on target is still there")

        rc, rep, _ = report("--writetime", "--repair", "--delete-extra")
        fixed = {(tb, d["key"]) for tb, r in rep["tables"].items() for d in r["differences"] if d.get("repair") == "repaired"}
        check(fixed == {("vt.items", "p=2, c='zz'")} and
              t.execute("SELECT v FROM vt.items WHERE p = 2 AND c = 'zz'").one() is None,
              "--delete-extra deletes the row only on target")
        rc, rep, _ = report("--writetime")
        check(rc == 1 and set(found(rep)) == {("vt.items", "differing", "p=5, c='a'"), ("vt.cnt", "differing", "id=2")},
              f"afterwards exactly what may not be repaired remains ({set(found(rep))})")

        rc, rep, _ = report("--writetime", "--sample", "50", "--seed", "3")
        items = rep["tables"].get("vt.items", {})
        check(rc in (0, 1) and rep.get("sample_percent") == 50 and 0 < items.get("ranges", 0) and
              abs(items["ranges"] * 2 - rep["total"]["ranges"]) <= 2 and items["origin_rows"] < 900,
              f"--sample 50 compares half the token ranges ({items.get('ranges')} of a table, {items.get('origin_rows')} rows)")

        # Under dual writes: nothing but writes in flight, which agree when read again.
        ins = o.prepare("INSERT INTO vt.live (id, v, n) VALUES (?, ?, ?) USING TIMESTAMP ?")
        rows = [(i, f"v{i}", i, BASE + i) for i in range(3000)]
        for s in (o, t):
            execute_concurrent_with_args(s, s.prepare(ins.query_string), rows, concurrency=100)
        writer = dt.DualWriter(o, t, [
            (3, "UPDATE vt.live USING TIMESTAMP ? SET v = ? WHERE id = ?",
             lambda r, ts: (ts, f"dw{ts}", r.randrange(3000)), "update"),
            (1, "DELETE FROM vt.live USING TIMESTAMP ? WHERE id = ?", lambda r, ts: (ts, r.randrange(3000)), "delete"),
            (1, "INSERT INTO vt.live (id, v, n) VALUES (?, ?, ?) USING TIMESTAMP ?",
             lambda r, ts: (r.randrange(3000, 4000), "new", 1, ts), "insert"),
        ], rate=400)
        writer.start()
        rc, out, err = dt.run_data("validate", *dt.cluster_args(ORIGIN, TARGET), "-k", "vt", "-t", "live",
                                   "--writetime", "--rate-rows", "1500", "--progress", "none")
        writer.stop()
        print(out, err, flush=True)
        check(rc == 0 and " 0 remaining" in out and sum(writer.counts.values()) > 300,
              f"validate while dual writes run: 0 differences (exit {rc}, {writer.counts})")
    finally:
        oc.shutdown()
        tc.shutdown()
        origin.stop()
        target.stop()
    print(check.summary())
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
