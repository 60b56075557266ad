#!/usr/bin/python3
"""zdm-data replay and journal-status against a 3-node stand-in target, on journals written here
in the format of common/journal/journal.h (the proxy's write journal); the real python-driver
reads target directly.

Usage: /usr/bin/python3 test_replay.py [build dir]
Address plan: target 127.24.7.1-3 (CQL 9042), fault admin on :19270; origin 127.24.8.1-3,
admin on :19280.

- journal-status (text and --json) and replay --dry-run count the writes to replay by table,
  the settled ones and the torn tail, and apply nothing.
- replay applies every unsettled write of two runs' writers (QUERY bodies with positional
  values, unqualified names resolved with the record's keyspace, a BATCH of query strings with
  values, a DELETE), each with its default timestamp: an older write replayed after a newer one
  changes nothing, a newer row already on target wins over an older replayed write, and settled
  writes and the record past the torn tail never reach target. Meanwhile node 1 (the first
  coordinator) answers every write "overloaded", the others 30 % of them: retried on the next
  node. Exit 4 for the torn tail, which is named.
- Applied segments are deleted except a running writer's newest and the torn one; a rerun applies
  nothing again (no journal request reaches target: its request counts by consistency); a write
  appended to the newest segment is the only one a third run applies; --accept-torn deletes the
  earlier run's torn segment (exit 0).
- A write target refuses (a table it does not have) stops the replay with exit 1 naming the file,
  seq, table and the server's message; once the table exists a rerun resumes with that write.
- replay --validate reads exactly the partitions the segment's writes touched (a bound key, a
  literal key, IN, a BATCH) from origin and target: all equal, the segment is deleted, a key from
  uuid() is counted unverifiable (not blocking); a partition origin has otherwise is reported by
  key, the segment kept (exit 1), a rerun checks it again without applying it again. A row changed
  on target afterwards: validate --keys-from-journal names the one differing partition (exit 1).
- A v5 record against a target limited to v4 is refused naming the file (exit 2); --rate holds
  the pace; SIGINT stops with exit 130 and a checkpoint at the last write applied, a rerun does
  the rest; a journal directory that does not exist is exit 2.
"""
import json
import os
import signal
import struct
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import datatest as dt  # noqa: E402

if len(sys.argv) > 1:
    dt.set_build(sys.argv[1])
TARGET = ["127.24.7.1", "127.24.7.2", "127.24.7.3"]
ORIGIN = ["127.24.8.1", "127.24.8.2", "127.24.8.3"]
check = dt.Checks()
WORK = dt.cleanup_dir("zdm-data-replay-")
SCHEMA = [
    "CREATE KEYSPACE rp WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    "CREATE TABLE rp.kv (k int PRIMARY KEY, v text, n int)",
    "CREATE TABLE rp.ev (p int, c int, v text, PRIMARY KEY (p, c))",
    "CREATE TABLE rp.ku (id uuid PRIMARY KEY, v text)",
]
T = int(time.time() * 1e6) - 3600 * 10**6  # write timestamps, µs
RUN_A, RUN_B = 1700000000000, 1700000005000  # an earlier and the current run of the proxy

# ---- the journal format (common/journal/journal.h): little-endian records, zlib's CRC-32 ----


def record(payload):
    return struct.pack("<II", len(payload), zlib.crc32(payload) & 0xffffffff) + payload


def write_rec(seq, body, table, keyspace="rp", opcode=0x07, version=4, reason=2):
    ks, tb = keyspace.encode(), table.encode()
    return record(struct.pack("<BQBBBq", 1, seq, reason, version, opcode, int(time.time() * 1000)) +
                  struct.pack("<H", len(ks)) + ks + struct.pack("<H", len(tb)) + tb +
                  struct.pack("<I", len(body)) + body)


def settled_rec(seq, how=1):
    return record(struct.pack("<BQB", 2, seq, how))


def segment(dir_, run, worker, index, records):
    path = os.path.join(dir_, f"{run:013d}-w{worker}-{index:06d}.zdmj")
    with open(path, "wb") as f:
        f.write(b"ZDMJRNL1" + b"".join(records))
    return path


# ---- request bodies (native_protocol_v4.spec §4.1.4, §4.1.7; big-endian) ----


def value(v):
    if v is None:
        return struct.pack(">i", -1)
    b = v if isinstance(v, bytes) else struct.pack(">i", v) if isinstance(v, int) else v.encode()
    return struct.pack(">i", len(b)) + b


def values(vs):
    return struct.pack(">H", len(vs)) + b"".join(value(v) for v in vs)


LOCAL_QUORUM, ONE = 0x0006, 0x0001


def query(q, vs, ts, version=4):
    q = q.encode()
    flags = 0x01 | 0x20  # values, default timestamp
    head = struct.pack(">i", len(q)) + q + struct.pack(">H", LOCAL_QUORUM)
    head += struct.pack(">I", flags) if version >= 5 else struct.pack(">B", flags)
    return head + values(vs) + struct.pack(">q", ts)


def batch(children, ts):
    out = struct.pack(">BH", 0, len(children))  # logged
    for q, vs in children:
        q = q.encode()
        out += struct.pack(">Bi", 0, len(q)) + q + values(vs)
    return out + struct.pack(">HB", LOCAL_QUORUM, 0x20) + struct.pack(">q", ts)


INSERT_KV = "INSERT INTO kv (k, v, n) VALUES (?, ?, ?)"  # unqualified: the record's keyspace
INSERT_KV_Q = "INSERT INTO rp.kv (k, v, n) VALUES (?, ?, ?)"


def replay(*args, journals, timeout=120):
    jargs = [a for j in journals for a in ("--journal", j)]
    return dt.run_data("replay", *jargs, "--target", ",".join(TARGET), "--progress", "lines",
                       "--progress-interval", "1", *args, timeout=timeout)


def journal_requests(target):
    """QUERY and BATCH requests target received at LOCAL_QUORUM: the journal's bodies (the
    python-driver's own requests here are LOCAL_ONE and ONE)."""
    nodes = target._admin("GET", "/")["nodes"]
    return sum(n["consistency"].get(op, {}).get("LOCAL_QUORUM", 0) for n in nodes for op in ("QUERY", "BATCH"))


def summary(out):
    """{key: value} of the summary line 'replay: segments=.. applied=..'."""
    for line in out.splitlines():
        if line.startswith("replay: "):
            return {k: float(v) for k, v in (p.split("=") for p in line[len("replay: "):].split())}
    return {}


def main():
    target = dt.StandIn("target", TARGET, 19270, WORK)
    origin = dt.StandIn("origin", ORIGIN, 19280, WORK)
    target_handle.append(target)
    tc, t = dt.connect(TARGET)
    oc, o = dt.connect(ORIGIN)
    try:
        for q in SCHEMA:
            t.execute(q)
            o.execute(q)
        kv = lambda k: t.execute(f"SELECT v, n, writetime(v) AS w FROM rp.kv WHERE k = {k}").one()  # noqa: E731
        ev = lambda p, c: t.execute(f"SELECT v FROM rp.ev WHERE p = {p} AND c = {c}").one()  # noqa: E731
        # Already on target: row 1 at T+150 (between the journal's two writes of it), row 11 older
        # than the journal's delete of it, row 12 newer than its delete, ev (1,2) newer than the
        # batch.
        t.execute(f"INSERT INTO rp.kv (k, v, n) VALUES (1, 'target', 9) USING TIMESTAMP {T + 150}")
        t.execute(f"INSERT INTO rp.kv (k, v, n) VALUES (11, 'gone', 11) USING TIMESTAMP {T + 400}")
        t.execute(f"INSERT INTO rp.kv (k, v, n) VALUES (12, 'stays', 12) USING TIMESTAMP {T + 900}")
        t.execute(f"INSERT INTO rp.ev (p, c, v) VALUES (1, 2, 'pre') USING TIMESTAMP {T + 70}")

        j1 = os.path.join(WORK, "journal")
        os.makedirs(j1)
        a1 = segment(j1, RUN_A, 0, 1, [
            write_rec(1, query(INSERT_KV, [1, "new", 1], T + 200), "rp.kv"),
            write_rec(2, query(INSERT_KV_Q, [2, "settled", 2], T + 10), "rp.kv", keyspace=""),
            write_rec(3, batch([("INSERT INTO rp.ev (p, c, v) VALUES (?, ?, ?)", [1, 1, "b1"]),
                                ("INSERT INTO ev (p, c, v) VALUES (?, ?, ?)", [1, 2, "b2"])], T + 50),
                      "rp.ev", opcode=0x0D),
            settled_rec(2),
        ])
        torn = write_rec(7, query(INSERT_KV, [7, "torn", 7], T + 10), "rp.kv")
        a2 = segment(j1, RUN_A, 0, 2, [
            write_rec(4, query(INSERT_KV, [1, "old", 0], T + 100), "rp.kv"),  # older than seq 1
            write_rec(5, query("UPDATE rp.kv SET v = ? WHERE k = ?", ["five", 5], T + 60), "rp.kv"),
            write_rec(6, query(INSERT_KV, [6, "settled", 6], T + 10), "rp.kv"),
            settled_rec(6),
            torn[:len(torn) - 5],  # a crash mid-append
        ])
        b1 = segment(j1, RUN_B, 0, 1, [
            write_rec(1, query(INSERT_KV, [10, "ten", 10], T + 300), "rp.kv"),
            write_rec(2, query("DELETE FROM rp.kv WHERE k = ?", [11], T + 500), "rp.kv"),
            write_rec(3, query("DELETE FROM rp.kv WHERE k = ?", [12], T + 500), "rp.kv"),
        ])

        rc, out, err = dt.run_data("journal-status", "--journal", j1, "--json")
        st = json.loads(out) if rc == 0 else {}
        print(out, err, flush=True)
        check(rc == 0 and st.get("segments") == 3 and st.get("writers") == 2 and st.get("pending") == 7 and
              st.get("settled") == 2 and st.get("tables") == {"rp.kv": 6, "rp.ev": 1} and
              [x["file"] for x in st.get("torn", [])] == [a2] and "runs past the end" in st["torn"][0]["what"],
              "journal-status --json: segments, writers, writes to replay by table, settled, the torn tail")
        rc, out, err = dt.run_data("journal-status", "--journal", j1)
        check(rc == 0 and "writes: 7 to replay, 2 settled, 0 replayed earlier" in out and
              "  rp.ev  1 to replay" in out and f"  {a2}: the record at byte" in out,
              "journal-status as text")
        rc, out, err = replay("--dry-run", journals=[j1])
        print(out, err, flush=True)
        check(rc == 0 and "nothing applied" in out and "  rp.kv  6 to replay" in out and
              kv(10) is None and os.path.exists(a1),
              "replay --dry-run counts by table and applies nothing")

        target.faults({"error": {"type": "overloaded", "fraction": 0.3, "statements": "writes"}})
        target.faults({"error": {"type": "overloaded", "fraction": 1.0, "statements": "writes"}}, node=1)
        rc, out, err = replay(journals=[j1])
        target.clear_faults()
        s = summary(out)
        print(out, err, flush=True)
        check(rc == 4 and s.get("applied") == 7 and s.get("skipped_settled") == 2 and s.get("torn") == 1 and
              s.get("segments") == 3 and s.get("retries", 0) > 0,
              f"replay: 7 writes applied, 2 settled skipped, 1 torn tail, retries on 'overloaded' (exit {rc}, {s})")
        check(f"torn tail in {a2}: the record at byte" in err, "the torn tail is named (file and what)")
        check("progress: " in err and "writes=" in err, "progress lines on stderr")
        r1 = kv(1)
        check(r1 is not None and (r1.v, r1.n, r1.w) == ("new", 1, T + 200),
              f"row 1: the newest write wins, the older one replayed after it changes nothing ({r1})")
        check(kv(2) is None and kv(6) is None, "settled writes are not replayed")
        check(kv(7) is None, "the write past the torn tail is not applied")
        r5, r10 = kv(5), kv(10)
        check(r5 is not None and r5.v == "five" and r5.n is None and r10 is not None and r10.v == "ten",
              f"an UPDATE and an INSERT of unqualified table name applied ({r5}, {r10})")
        check(kv(11) is None and kv(12) is not None and kv(12).v == "stays",
              "a DELETE applies at its timestamp: an older row goes, a newer one stays")
        check(ev(1, 1).v == "b1" and ev(1, 2).v == "pre",
              "a BATCH of query strings with values, at its default timestamp (a newer row kept)")
        check(not os.path.exists(a1) and os.path.exists(a2) and os.path.exists(b1) and
              os.path.exists(a2 + ".replayed") and os.path.exists(b1 + ".replayed") and
              not os.path.exists(a1 + ".replayed"),
              "the applied older segment is deleted; the torn one and the running writer's newest kept, "
              "with their checkpoints")

        # A write applied twice changes no row (timestamps), so target's request count tells.
        before = journal_requests(target)
        rc, out, err = replay(journals=[j1])
        s = summary(out)
        print(out, err, flush=True)
        check(rc == 4 and s.get("applied") == 0 and journal_requests(target) == before,
              f"a rerun applies nothing again: no request reaches target (exit {rc}, {s})")

        with open(b1, "ab") as f:  # the proxy appends to its newest segment
            f.write(write_rec(4, query(INSERT_KV, [20, "twenty", 20], T + 600), "rp.kv") + settled_rec(1))
        before = journal_requests(target)
        rc, out, err = replay(journals=[j1])
        s = summary(out)
        check(rc == 4 and s.get("applied") == 1 and kv(20) is not None and kv(20).v == "twenty" and
              journal_requests(target) == before + 1, f"a write appended since: the only one applied ({s})")

        rc, out, err = replay("--accept-torn", journals=[j1])
        s = summary(out)
        print(out, err, flush=True)
        check(rc == 0 and s.get("applied") == 0 and not os.path.exists(a2) and not os.path.exists(a2 + ".replayed")
              and os.path.exists(b1) and "accepted" in err,
              f"--accept-torn: exit 0, the earlier run's torn segment deleted ({s})")
        rc, out, _ = dt.run_data("journal-status", "--journal", j1, "--json")
        st = json.loads(out) if rc == 0 else {}
        check(st.get("segments") == 1 and st.get("pending") == 0 and st.get("torn") == [],
              f"journal-status afterwards: one segment, nothing to replay ({st})")

        # A write target refuses for good: stop there, resume once fixed.
        j2 = os.path.join(WORK, "refused")
        os.makedirs(j2)
        r1 = segment(j2, RUN_A, 3, 1, [
            write_rec(1, query(INSERT_KV, [30, "thirty", 30], T + 300), "rp.kv"),
            write_rec(2, query("INSERT INTO later (k, v) VALUES (?, ?)", [1, "x"], T + 300), "rp.later"),
            write_rec(3, query(INSERT_KV, [31, "thirty-one", 31], T + 300), "rp.kv"),
        ])
        segment(j2, RUN_A, 3, 2, [])
        rc, out, err = replay(journals=[j2])
        print(out, err, flush=True)
        check(rc == 1 and f"{r1}: seq 2 (rp.later): target: " in err and "later" in err.split("target: ", 1)[-1]
              and kv(30) is not None and kv(31) is None and os.path.exists(r1 + ".replayed"),
              "a refused write stops the replay (exit 1) naming file, seq, table and target's message")
        t.execute("CREATE TABLE rp.later (k int PRIMARY KEY, v text)")
        before = journal_requests(target)
        rc, out, err = replay(journals=[j2])
        s = summary(out)
        check(rc == 0 and s.get("applied") == 2 and s.get("skipped_replayed") == 1 and
              journal_requests(target) == before + 2 and kv(31).v == "thirty-one" and
              t.execute("SELECT v FROM rp.later WHERE k = 1").one().v == "x" and not os.path.exists(r1),
              f"the rerun resumes with the refused write, the ones before it not applied again ({s})")

        # Protocol versions: a v5 request on a target limited to v4 is refused by name.
        j3 = os.path.join(WORK, "v5")
        os.makedirs(j3)
        v5 = segment(j3, RUN_A, 0, 1, [write_rec(1, query(INSERT_KV, [40, "v5", 40], T + 300, version=5),
                                                 "rp.kv", version=5)])
        rc, out, err = replay("--target-protocol-version", "4", journals=[j3])
        check(rc == 2 and f"{v5}: seq 1 (rp.kv) is a protocol v5 request; target negotiated v4" in err,
              f"a v5 record against a v4 target is refused naming the file (exit {rc})")
        rc, out, err = replay(journals=[j3])
        check(rc == 0 and kv(40) is not None and kv(40).v == "v5", f"and applied over v5 (exit {rc})")

        # --rate: 60 writes at 100/s take about half a second (a tenth of a second of burst).
        j4 = os.path.join(WORK, "rate")
        os.makedirs(j4)
        segment(j4, RUN_A, 0, 1, [write_rec(i, query(INSERT_KV, [100 + i, "r", i], T + 300), "rp.kv")
                                  for i in range(1, 61)])
        rc, out, err = replay("--rate", "100", "--consistency", "ONE", journals=[j4])
        s = summary(out)
        check(rc == 0 and s.get("applied") == 60 and 0.45 <= s.get("seconds", 0) < 5 and kv(160) is not None,
              f"--rate 100: 60 writes in {s.get('seconds')} s")

        # Stopped by SIGINT halfway: exit 130, the checkpoint says how far; a rerun does the rest.
        j5 = os.path.join(WORK, "stopped")
        os.makedirs(j5)
        s5 = segment(j5, RUN_A, 0, 1, [write_rec(i, query(INSERT_KV, [1000 + i, "s", i], T + 300), "rp.kv")
                                       for i in range(1, 201)])
        segment(j5, RUN_A, 0, 2, [])
        log = os.path.join(WORK, "stopped.log")
        proc = dt.start_data("replay", "--journal", j5, "--target", ",".join(TARGET), "--rate", "100",
                             "--progress", "none", log=log)
        deadline = time.monotonic() + 30
        while not os.path.exists(s5 + ".replayed") and time.monotonic() < deadline:
            time.sleep(0.05)  # the first checkpoint: a second of writes applied
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(timeout=30)
        done = int(open(s5 + ".replayed").read().split()[4]) if os.path.exists(s5 + ".replayed") else -1
        check(rc == 130 and 1 <= done < 200 and kv(1000 + done) is not None and kv(1001 + done) is None,
              f"SIGINT: exit {rc}, the checkpoint at the last write applied (seq {done})")
        before = journal_requests(target)
        rc, out, err = replay(journals=[j5])
        s = summary(out)
        check(rc == 0 and s.get("applied") == 200 - done and journal_requests(target) == before + 200 - done and
              kv(1200) is not None, f"the rerun applies the other {200 - done} ({s})")

        rc, out, err = replay(journals=[os.path.join(WORK, "missing")])
        check(rc == 2 and "does not exist" in err, f"a journal directory that does not exist: exit {rc}")

        validate_section(t, o)
    finally:
        tc.shutdown()
        oc.shutdown()
        target.stop()
        origin.stop()
    print(check.summary())
    return 1 if check.failures else 0


def validate_section(t, o):
    """replay --validate and validate --keys-from-journal against origin (the proxy wrote the
    journal's writes there)."""
    origin_args = ["--origin", ",".join(ORIGIN)]
    # What origin has: the journal's writes applied (values compared, not writetimes).
    for q in ["INSERT INTO rp.kv (k, v, n) VALUES (500, 'a', 1)",
              "INSERT INTO rp.kv (k, v) VALUES (501, 'b')",
              "INSERT INTO rp.ev (p, c, v) VALUES (7, 1, 'x')",
              "INSERT INTO rp.ev (p, c, v) VALUES (7, 2, 'y')",
              "INSERT INTO rp.kv (k, v, n) VALUES (503, 'c', 3)"]:
        o.execute(q)
    j6 = os.path.join(WORK, "validated")
    os.makedirs(j6)
    v1 = segment(j6, RUN_A, 0, 1, [
        write_rec(1, query(INSERT_KV, [500, "a", 1], T + 300), "rp.kv"),
        write_rec(2, query("UPDATE rp.kv USING TTL 0 AND TIMESTAMP ? SET v = ? WHERE k = 501",
                           [struct.pack(">q", T + 300), "b"], T + 300), "rp.kv"),
        write_rec(3, batch([("INSERT INTO rp.ev (p, c, v) VALUES (7, ?, ?)", [1, "x"]),
                            ("INSERT INTO ev (p, c, v) VALUES (7, 2, 'y')", []),
                            ("DELETE FROM rp.ev WHERE p IN (8, ?)", [9])], T + 300), "rp.ev", opcode=0x0D),
        write_rec(4, query("INSERT INTO rp.ku (id, v) VALUES (uuid(), ?)", ["u"], T + 300), "rp.ku"),
    ])
    v2 = segment(j6, RUN_A, 0, 2, [write_rec(5, query(INSERT_KV, [503, "c", 3], T + 300), "rp.kv")])
    rc, out, err = replay("--validate", *origin_args, journals=[j6])
    s = summary(out)
    print(out, err, flush=True)
    check(rc == 0 and s.get("applied") == 5 and s.get("checked") == 6 and s.get("equal") == 6 and
          s.get("differing") == 0 and s.get("unverifiable") == 1 and s.get("check_errors") == 0,
          f"replay --validate: the 6 partitions touched all equal, the uuid() key unverifiable (exit {rc}, {s})")
    check("unverifiable: 1 x rp.ku: partition key 'id' from a function call (uuid())" in out,
          "the unverifiable write is listed by reason")
    check(not os.path.exists(v1) and os.path.exists(v2) and os.path.exists(v2 + ".replayed"),
          "the confirmed segment deleted (the running writer's newest kept, with its checkpoint)")

    # A row changed on target after the replay: the standalone check names its partition.
    t.execute("UPDATE rp.kv SET n = 99 WHERE k = 503")
    rc, out, err = dt.run_data("validate", "--keys-from-journal", j6, *origin_args, "--target",
                               ",".join(TARGET), timeout=120)
    s = summary(out.replace("validate: ", "replay: "))
    print(out, err, flush=True)
    check(rc == 1 and s.get("checked") == 1 and s.get("differing") == 1 and
          "differing partition: rp.kv k=503: 1 row differing (n)" in out and "99" not in out,
          f"validate --keys-from-journal: 1 differing partition named by key, no value (exit {rc}, {s})")

    # Origin has another version of a partition the journal writes: the segment is kept, exit 1;
    # a rerun checks it again without applying it again; once alike, it goes.
    o.execute("INSERT INTO rp.kv (k, v, n) VALUES (510, 'origin', 10)")
    j7 = os.path.join(WORK, "differing")
    os.makedirs(j7)
    d1 = segment(j7, RUN_A, 1, 1, [write_rec(1, query(INSERT_KV, [510, "journal", 10], T + 300), "rp.kv")])
    segment(j7, RUN_A, 1, 2, [])
    rc, out, err = replay("--validate", *origin_args, journals=[j7])
    s = summary(out)
    print(out, err, flush=True)
    check(rc == 1 and s.get("differing") == 1 and os.path.exists(d1) and os.path.exists(d1 + ".replayed") and
          "differing partition: rp.kv k=510: 1 row differing (v)" in out and "journal" not in out,
          f"a differing partition keeps its segment, exit 1 ({s})")
    before = journal_requests(target_handle[0])
    rc, out, err = replay("--validate", *origin_args, journals=[j7])
    s = summary(out)
    check(rc == 1 and s.get("applied") == 0 and s.get("skipped_replayed") == 1 and s.get("differing") == 1 and
          journal_requests(target_handle[0]) == before,
          f"the rerun checks it again, applies nothing again ({s})")
    o.execute("INSERT INTO rp.kv (k, v, n) VALUES (510, 'journal', 10)")
    rc, out, err = replay("--validate", *origin_args, journals=[j7])
    s = summary(out)
    check(rc == 0 and s.get("equal") == 1 and not os.path.exists(d1),
          f"once alike, the segment is deleted ({s})")


target_handle = []


if __name__ == "__main__":
    sys.exit(main())
