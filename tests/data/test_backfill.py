#!/usr/bin/python3
"""zdm-data backfill against two 3-node stand-in clusters, with the real python-driver reading
each cluster directly to check what landed on target.

Usage: /usr/bin/python3 test_backfill.py [build dir]
Address plan: origin 127.24.1.1-3, target 127.24.2.1-3 (CQL 9042), fault admins on :19240.

1. History on origin: clustering rows, a static column, a set, a map, a frozen list, rows with
   TTLs, cells written at different times, rows with only their primary key, partitions with
   only static values, a blob table, a counter table; a few rows about to expire.
2. A backfill (rate-limited, so it overlaps) while a dual writer updates, deletes and inserts
   some of the same rows on both clusters with one timestamp per write, as the proxy does.
   Then: validate --writetime finds 0 differences; every row on target, read directly, has
   origin's values, origin's writetime for every cell and origin's remaining TTL (within 2 s);
   dual-written values and deletions won; expired rows stayed expired.
3. A backfill killed (SIGKILL) halfway and run again: it skips the ranges its checkpoint has,
   copies exactly the rows of the others, and does not touch a done range (a row changed on
   origin only inside a done range stays different, and validate names exactly that row).
   /metrics answered while it ran.
"""
import os
import re
import signal
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import datatest as dt  # noqa: E402
from cassandra.concurrent import execute_concurrent_with_args  # noqa: E402

if len(sys.argv) > 1:
    dt.set_build(sys.argv[1])
ORIGIN = ["127.24.1.1", "127.24.1.2", "127.24.1.3"]
TARGET = ["127.24.2.1", "127.24.2.2", "127.24.2.3"]
METRICS = "127.24.1.1:19241"
check = dt.Checks()
WORK = dt.cleanup_dir("zdm-data-backfill-")
SCHEMA = [
    "CREATE KEYSPACE dt WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    "CREATE TABLE dt.events (p int, c int, s text static, v text, n bigint, tags set<text>, "
    "attrs map<text, int>, fl frozen<list<int>>, PRIMARY KEY (p, c)) WITH CLUSTERING ORDER BY (c DESC)",
    "CREATE TABLE dt.kv (k text PRIMARY KEY, v blob)",
    "CREATE TABLE dt.hits (id int, day int, n counter, PRIMARY KEY (id, day))",
    "CREATE TABLE dt.big (id int PRIMARY KEY, a text, b bigint)",
]
EVENTS = ("p, c, s, v, n, tags, attrs, fl, writetime(s) AS ws, ttl(s) AS ts, writetime(v) AS wv, "
          "ttl(v) AS tv, writetime(n) AS wn, ttl(n) AS tn, writetime(fl) AS wfl, ttl(fl) AS tfl")


def load_history(s, base):
    """Rows written long before the proxies went up; returns the count of rows."""
    ins = s.prepare("INSERT INTO dt.events (p, c, v, n, tags, attrs, fl) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "USING TIMESTAMP ? AND TTL ?")
    rows = []
    for p in range(1500):
        for c in range(4):
            tags = {f"t{p % 7}", f"u{c}"} if c else None
            attrs = {"a": p, "b": c} if c % 2 == 0 else None
            rows.append((p, c, f"v{p}.{c}", p * 10 + c, tags, attrs, [p, c], base + p * 10 + c,
                         3600 if c == 1 else 0))
    execute_concurrent_with_args(s, ins, rows, concurrency=100, raise_on_first_error=True)
    statics = s.prepare("UPDATE dt.events USING TIMESTAMP ? AND TTL ? SET s = ? WHERE p = ?")
    execute_concurrent_with_args(
        s, statics, [(base + 5 + p, 1800 if p % 3 == 0 else 0, f"s{p}", p) for p in range(1600) if p % 5],
        concurrency=100, raise_on_first_error=True)
    # Cells written later than their rows, some with a TTL of their own.
    upd_n = s.prepare("UPDATE dt.events USING TIMESTAMP ? SET n = ? WHERE p = ? AND c = ?")
    execute_concurrent_with_args(s, upd_n, [(base + 500000 + p, -p, p, 2) for p in range(1500)],
                                 concurrency=100, raise_on_first_error=True)
    upd_v = s.prepare("UPDATE dt.events USING TIMESTAMP ? AND TTL 7200 SET v = ? WHERE p = ? AND c = ?")
    execute_concurrent_with_args(s, upd_v, [(base + 900000 + p, f"late{p}", p, 3) for p in range(0, 1500, 2)],
                                 concurrency=100, raise_on_first_error=True)
    # Rows that are only a primary key (a row marker).
    marker = s.prepare("INSERT INTO dt.events (p, c) VALUES (?, ?) USING TIMESTAMP ?")
    execute_concurrent_with_args(s, marker, [(p, 9, base + p) for p in range(0, 1500, 50)],
                                 concurrency=50, raise_on_first_error=True)
    kv = s.prepare("INSERT INTO dt.kv (k, v) VALUES (?, ?) USING TIMESTAMP ? AND TTL ?")
    execute_concurrent_with_args(
        s, kv, [(f"k{i}", bytes([i % 256]) * (100 + i * 3), base + i, 0 if i % 4 else 3000) for i in range(500)],
        concurrency=100, raise_on_first_error=True)
    hits = s.prepare("UPDATE dt.hits SET n = n + ? WHERE id = ? AND day = ?")
    execute_concurrent_with_args(s, hits, [(i * 3 + 1, i, i % 7) for i in range(300)],
                                 concurrency=100, raise_on_first_error=True)
    return 1500 * 4 + 30


def dual_writer(o, t):
    def pick_row(r):
        return r.randrange(1500), r.randrange(4)

    stmts = [
        (5, "UPDATE dt.events USING TIMESTAMP ? SET v = ? WHERE p = ? AND c = ?",
         lambda r, ts: (ts, f"dw{ts}", *pick_row(r)), "update v"),
        (2, "UPDATE dt.events USING TIMESTAMP ? SET tags = tags + ? WHERE p = ? AND c = ?",
         lambda r, ts: (ts, {f"dw{ts % 1000}"}, *pick_row(r)), "add to a set"),
        (1, "DELETE attrs['a'] FROM dt.events USING TIMESTAMP ? WHERE p = ? AND c = ?",
         lambda r, ts: (ts, *pick_row(r)), "delete a map key"),
        (2, "DELETE FROM dt.events USING TIMESTAMP ? WHERE p = ? AND c = ?",
         lambda r, ts: (ts, *pick_row(r)), "delete a row"),
        (2, "UPDATE dt.events USING TIMESTAMP ? SET s = ? WHERE p = ?",
         lambda r, ts: (ts, f"ds{ts}", r.randrange(1600)), "update a static"),
        (2, "INSERT INTO dt.events (p, c, v, n) VALUES (?, ?, ?, ?) USING TIMESTAMP ?",
         lambda r, ts: (r.randrange(5000, 6000), r.randrange(4), "new", 1, ts), "insert a new row"),
        (1, "INSERT INTO dt.kv (k, v) VALUES (?, ?) USING TIMESTAMP ?",
         lambda r, ts: (f"k{r.randrange(600)}", b"dual", ts), "upsert a blob"),
    ]
    return dt.DualWriter(o, t, stmts, rate=250)


def events_by_key(session):
    return {(r.p, r.c): r for r in session.execute(f"SELECT {EVENTS} FROM dt.events")}


def compare_events(origin, target):
    """Origin's and target's rows, read directly: values, writetimes, TTLs."""
    o, t = events_by_key(origin), events_by_key(target)
    check(set(o) == set(t), f"dt.events: the same {len(o)} rows (incl. static-only partitions) on "
          f"both clusters (target {len(t)}; missing {list(set(o) - set(t))[:3]}, extra {list(set(t) - set(o))[:3]})")
    values = writetimes = ttls = 0
    bad_values, bad_wt, bad_ttl = [], [], []
    for k in set(o) & set(t):
        a, b = o[k], t[k]
        for col in ("s", "v", "n", "tags", "attrs", "fl"):
            values += 1
            if getattr(a, col) != getattr(b, col):
                bad_values.append((k, col, getattr(a, col), getattr(b, col)))
        for wcol, tcol in (("ws", "ts"), ("wv", "tv"), ("wn", "tn"), ("wfl", "tfl")):
            if getattr(a, wcol) is not None:
                writetimes += 1
                if getattr(a, wcol) != getattr(b, wcol):
                    bad_wt.append((k, wcol, getattr(a, wcol), getattr(b, wcol)))
            ta, tb = getattr(a, tcol), getattr(b, tcol)
            if ta is not None or tb is not None:
                ttls += 1
                if ta is None or tb is None or abs(ta - tb) > 2:
                    bad_ttl.append((k, tcol, ta, tb))
    check(not bad_values, f"dt.events: {values} values identical on target ({bad_values[:3]})")
    check(not bad_wt and writetimes > 10000,
          f"dt.events: {writetimes} cells carry origin's writetime on target ({bad_wt[:3]})")
    check(not bad_ttl and ttls > 3000,
          f"dt.events: {ttls} cells with a TTL have origin's remaining TTL on target, within 2 s ({bad_ttl[:3]})")
    return o, t


def main():
    origin = dt.StandIn("origin", ORIGIN, 19240, WORK)
    target = dt.StandIn("target", TARGET, 19240, WORK)
    oc, o = dt.connect(ORIGIN)
    tc, t = dt.connect(TARGET)
    try:
        for stmt in SCHEMA:
            o.execute(stmt)
            t.execute(stmt)
        base = int(time.time() * 1e6) - 10 * 86400 * 10**6
        historical = load_history(o, base)
        # Rows about to expire: written 10 s before their TTL runs out.
        exp = o.prepare("INSERT INTO dt.events (p, c, v) VALUES (?, 0, 'expiring') USING TTL 10")
        execute_concurrent_with_args(o, exp, [(p,) for p in range(1600, 1650)], concurrency=50)
        expiring_at = time.time() + 10
        print(f"origin: {historical} historical rows in dt.events, 500 in dt.kv, 300 counters, "
              f"50 rows expiring in 10 s", flush=True)

        # --- 2. backfill under dual writes ---
        writer = dual_writer(o, t)
        writer.start()
        time.sleep(0.5)
        cp = os.path.join(WORK, "events.checkpoint")
        rc, out, err = dt.run_data("backfill", *dt.cluster_args(ORIGIN, TARGET), "-k", "dt", "-t", "events,kv,hits",
                                   "--checkpoint", cp, "--rate-rows", "2000", "--progress", "lines",
                                   "--progress-interval", "1", "--threads", "2")
        time.sleep(0.5)
        writer.stop()
        print(out + err, flush=True)
        check(rc == 0, f"backfill under dual writes exits 0 (got {rc})")
        check(not writer.errors, f"the dual writer saw no errors ({writer.errors[:2]})")
        check(sum(writer.counts.values()) > 300,
              f"dual writes ran throughout the backfill: {writer.counts}")
        check(re.search(r"progress: \d+% rows=\d+", err) is not None, "plain progress lines while it ran")
        m = re.search(r"backfill: ([\d,]+) rows", out)
        copied = int(m.group(1).replace(",", "")) if m else -1
        check(copied >= historical + 500 + 300, f"every origin row was read ({copied})")

        # The rows about to expire were copied with what was left of their TTL.
        q = "SELECT p, c, ttl(v) AS tv FROM dt.events WHERE p >= 1600 AND p < 1650 ALLOW FILTERING"
        exp_t = {(r.p, r.c): r.tv for r in t.execute(q) if r.c == 0}
        exp_o = {(r.p, r.c): r.tv for r in o.execute(q) if r.c == 0}
        check(exp_t and all(k in exp_o and abs(exp_t[k] - exp_o[k]) <= 1 for k in exp_t),
              f"{len(exp_t)} of {len(exp_o)} rows about to expire are on target with origin's remaining TTL "
              f"({sorted(set(exp_t.values()))} s)")
        rc, out, err = dt.run_data("validate", *dt.cluster_args(ORIGIN, TARGET), "-k", "dt", "-t", "events,kv,hits",
                                   "--writetime", "--progress", "none")
        print(out + err, flush=True)
        check(rc == 0 and "0 differences" in out and "0 remaining" in out,
              f"validate --writetime: 0 differences, exit 0 (got {rc})")
        print(f"waiting {max(0.0, expiring_at + 1.5 - time.time()):.1f} s for the rows about to expire", flush=True)

        time.sleep(max(0.0, expiring_at + 1.5 - time.time()))
        left = [r for r in t.execute(q) if r.c == 0]
        left_o = [r for r in o.execute(q) if r.c == 0]
        check(not left and not left_o, f"rows that expired on origin expired on target too ({len(left)} left)")

        ev_o, ev_t = compare_events(o, t)
        updated = [k for k, r in ev_o.items() if (r.v or "").startswith("dw")]
        check(updated and all(ev_t[k].v == ev_o[k].v for k in updated),
              f"{len(updated)} rows the dual writer updated during the backfill keep the dual write on target")
        deleted = writer.counts.get("delete a row", 0)
        check(deleted > 0 and set(ev_t) == set(ev_o), f"{deleted} rows deleted by dual writes stay deleted on target")
        kv_o = {r.k: r for r in o.execute("SELECT k, v, writetime(v) AS w, ttl(v) AS tt FROM dt.kv")}
        kv_t = {r.k: r for r in t.execute("SELECT k, v, writetime(v) AS w, ttl(v) AS tt FROM dt.kv")}
        check(set(kv_o) == set(kv_t) and all(kv_o[k].v == kv_t[k].v and kv_o[k].w == kv_t[k].w and
                                             abs((kv_o[k].tt or 0) - (kv_t[k].tt or 0)) <= 2 for k in kv_o),
              f"dt.kv: {len(kv_o)} blobs with origin's writetime and TTL on target")
        hits_o = {(r.id, r.day): r.n for r in o.execute("SELECT id, day, n FROM dt.hits")}
        hits_t = {(r.id, r.day): r.n for r in t.execute("SELECT id, day, n FROM dt.hits")}
        check(hits_o == hits_t and len(hits_o) == 300, f"dt.hits: {len(hits_o)} counters equal on target")

        # --- 3. killed halfway, run again ---
        ins = o.prepare("INSERT INTO dt.big (id, a, b) VALUES (?, ?, ?) USING TIMESTAMP ?")
        execute_concurrent_with_args(o, ins, [(i, "x" * 40, i, base + i) for i in range(20000)],
                                     concurrency=200, raise_on_first_error=True)
        cp = os.path.join(WORK, "big.checkpoint")
        log = os.path.join(WORK, "big-1.log")
        args = ["backfill", *dt.cluster_args(ORIGIN, TARGET), "-k", "dt", "-t", "big", "--checkpoint", cp,
                "--progress", "none"]
        proc = dt.start_data(*args, "--rate-rows", "4000", "--metrics", METRICS, log=log)
        deadline = time.time() + 30
        lines = 0
        metrics_ok = False
        while time.time() < deadline:
            time.sleep(0.3)
            if not metrics_ok:
                try:
                    with urllib.request.urlopen(f"http://{METRICS}/metrics", timeout=2) as r:
                        text = r.read().decode()
                    metrics_ok = 'zdm_data_rows_read_total{cluster="origin"}' in text and "zdm_data_ranges " in text
                except OSError:
                    pass
            lines = sum(1 for _ in open(cp)) - 1 if os.path.exists(cp) else 0
            if lines >= 100:
                break
        check(metrics_ok, f"/metrics on {METRICS} served zdm_data_* while the backfill ran")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done_ranges = []
        done_rows = 0
        for line in open(cp).read().splitlines()[1:]:
            f = line.split()
            if len(f) == 6:
                done_ranges.append((int(f[2]), int(f[3])))
                done_rows += int(f[4])
        print(f"killed after {len(done_ranges)} ranges ({done_rows} rows) were recorded", flush=True)
        check(0 < len(done_ranges) and done_rows < 20000, "the first run was killed halfway")
        # Change two rows on origin only: one in a done range, one in a range still to copy.
        tokens = {r.id: r.t for r in o.execute("SELECT id, token(id) AS t FROM dt.big")}

        def done(tok):
            return any(a < tok <= b for a, b in done_ranges)

        in_done = next(i for i in range(20000) if done(tokens[i]))
        in_rest = next(i for i in range(20000) if not done(tokens[i]))
        late = int(time.time() * 1e6)
        for i in (in_done, in_rest):
            o.execute("UPDATE dt.big USING TIMESTAMP %s SET a = 'changed' WHERE id = %s", (late, i))
        rc, out, err = dt.run_data(*args)
        print(out + err, flush=True)
        m = re.search(r"(\d+) to copy, (\d+) already done", out)
        check(rc == 0 and m and int(m.group(2)) > 0, f"the re-run skips the ranges the checkpoint has ({m and m.group(0)})")
        m = re.search(r"backfill: ([\d,]+) rows", out)
        again = int(m.group(1).replace(",", "")) if m else -1
        check(again == 20000 - done_rows, f"the re-run copies exactly the rows of the other ranges ({again} = 20000 - {done_rows})")
        rc, out, err = dt.run_data("validate", *dt.cluster_args(ORIGIN, TARGET), "-k", "dt", "-t", "big", "--json",
                                   "--progress", "none")
        import json
        rep = json.loads(out)["tables"]["dt.big"]
        diffs = [d["key"] for d in rep["differences"]]
        check(rc == 1 and diffs == [f"id={in_done}"] and rep["differing"] == 1 and rep["only_origin"] == 0,
              f"a done range was not copied again: validate names exactly the row changed in it ({diffs}), "
              f"and the row changed in a range still to copy was copied")
        check(t.execute("SELECT a FROM dt.big WHERE id = %s", (in_rest,)).one().a == "changed",
              "the change in a range the re-run copied is on target")
    finally:
        oc.shutdown()
        tc.shutdown()
        origin.stop()
        target.stop()
    print(check.summary())
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
