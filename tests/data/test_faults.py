#!/usr/bin/python3
"""zdm-data against failing clusters and bad input. Origin asks for a password, target for a
password over TLS (as in the sandbox), both 3-node stand-ins; the fault admin injects errors.

Usage: /usr/bin/python3 test_faults.py [build dir]
Address plan: origin 127.24.3.1-3, target 127.24.4.1-3 (CQL 9042), fault admins on :19260.

- Timeouts on target's writes (15%) and origin's reads (20%), and connections of a target node
  dropped now and then: the backfill retries (and says how often, by cluster and reason), loses
  nothing, and validate finds 0 differences afterwards.
- Bad input, each one clear line on stderr and a non-zero exit: unknown keyspace, a table only
  on origin, a table defined differently on the two clusters, a bad option, wrong credentials,
  TLS expected by target but not configured, an unreachable cluster.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "drivers"))
import datatest as dt  # noqa: E402
from certs import Pki  # noqa: E402
from cassandra.concurrent import execute_concurrent_with_args  # noqa: E402

if len(sys.argv) > 1:
    dt.set_build(sys.argv[1])
ORIGIN = ["127.24.3.1", "127.24.3.2", "127.24.3.3"]
TARGET = ["127.24.4.1", "127.24.4.2", "127.24.4.3"]
O_USER, T_USER = ("o_user", "o-secret"), ("t_user", "t-secret")
check = dt.Checks()
WORK = dt.cleanup_dir("zdm-data-faults-")


def main():
    import ssl
    pki = Pki(os.path.join(WORK, "pki"))
    pki.ca("ca")
    pki.cert("target", "ca", ips=TARGET)
    ca = pki.path("ca", "pem")
    origin = dt.StandIn("origin", ORIGIN, 19260, WORK, extra=["--auth", ":".join(O_USER)])
    target = dt.StandIn("target", TARGET, 19260, WORK,
                        extra=["--auth", ":".join(T_USER), "--tls-cert", pki.path("target", "pem"),
                               "--tls-key", pki.path("target", "key")])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    oc, o = dt.connect(ORIGIN, auth_provider=dt.auth(*O_USER))
    tc, t = dt.connect(TARGET, auth_provider=dt.auth(*T_USER), ssl_context=ctx)
    access = [*dt.cluster_args(ORIGIN, TARGET), "--origin-username", O_USER[0], "--target-username", T_USER[0],
              "--target-tls-ca", ca]
    env = {"ZDM_DATA_ORIGIN_PASSWORD": O_USER[1], "ZDM_DATA_TARGET_PASSWORD": T_USER[1]}
    try:
        for s in (o, t):
            s.execute("CREATE KEYSPACE ft WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
            s.execute("CREATE TABLE ft.t (id int, c int, v text, PRIMARY KEY (id, c))")
        o.execute("CREATE TABLE ft.only_origin (id int PRIMARY KEY)")
        o.execute("CREATE TABLE ft.differs (id int PRIMARY KEY, v int)")
        t.execute("CREATE TABLE ft.differs (id int PRIMARY KEY, v text)")
        ins = o.prepare("INSERT INTO ft.t (id, c, v) VALUES (?, ?, ?) USING TIMESTAMP ?")
        execute_concurrent_with_args(o, ins, [(i // 5, i % 5, f"v{i}", 1000 + i) for i in range(8000)],
                                     concurrency=100, raise_on_first_error=True)

        target.faults({"error": {"type": "write_timeout", "fraction": 0.15, "statements": "writes"}})
        origin.faults({"error": {"type": "read_timeout", "fraction": 0.2, "statements": "reads"}})
        target.faults({"drop": {"fraction": 0.002, "statements": "writes"}}, node=2)
        rc, out, err = dt.run_data("backfill", *access, "-k", "ft", "-t", "t", "--checkpoint",
                                   os.path.join(WORK, "cp"), "--progress", "none", "--retries", "30",
                                   "--request-timeout-ms", "3000", env=env, timeout=240)
        print(out + err[-3000:], flush=True)
        target.clear_faults()
        origin.clear_faults()
        m = re.search(r"retries: (\d+) \(([^)]*)\)", out)
        reasons = m.group(2) if m else ""
        check(rc == 0, f"backfill through injected faults exits 0 (got {rc})")
        check(m and int(m.group(1)) > 100 and "target write_timeout" in reasons and "origin read_timeout" in reasons
              and "target connection_closed" in reasons,
              f"timeouts were retried, counted by cluster and reason ({m and m.group(0)})")
        check("8,000 rows" in out, "every row was read")
        count = t.execute("SELECT count(*) FROM ft.t").one()[0]
        check(count == 8000, f"nothing lost: 8000 rows on target ({count})")
        rc, out, err = dt.run_data("validate", *access, "-k", "ft", "-t", "t", "--writetime", "--progress", "none",
                                   env=env)
        check(rc == 0 and " 0 remaining" in out, f"validate --writetime after the faults: 0 differences (exit {rc})")

        def one_line(args, code, text, what, environment=env):
            rc, out, err = dt.run_data(*args, env=environment)
            lines = [l for l in err.splitlines() if l.strip()]
            check(rc == code and len(lines) == 1 and text in lines[0],
                  f"{what}: exit {code} and one line ({rc}: {lines})")

        one_line(["backfill", *access, "-k", "nope"], 2,
                 "zdm-data: keyspace 'nope' does not exist on origin (cluster 'origin')", "unknown keyspace")
        one_line(["validate", *access, "-k", "ft", "-t", "only_origin"], 2,
                 "table ft.only_origin does not exist on target (cluster 'target')", "a table only on origin")
        one_line(["backfill", *access, "-k", "ft", "-t", "differs"], 2,
                 "table ft.differs differs between origin and target: column 'v' is int on origin, text on target",
                 "a table defined differently")
        one_line(["backfill", *access, "-k", "ft", "--threads", "x"], 2, "zdm-data: ", "a bad option")
        one_line(["backfill", *access, "-k", "ft"], 3,
                 "zdm-data: origin: 127.24.3.1:9042: the credentials of user 'o_user' were refused: Provided username "
                 "o_user and/or password are incorrect",
                 "wrong origin password", {"ZDM_DATA_ORIGIN_PASSWORD": "wrong", "ZDM_DATA_TARGET_PASSWORD": T_USER[1]})
        one_line(["backfill", *dt.cluster_args(ORIGIN, TARGET), "--origin-username", O_USER[0], "--target-username",
                  T_USER[0], "-k", "ft"], 3, "target: no contact point answered (127.24.4.1:9042: the node closed the connection after STARTUP (does it expect TLS?);",
                 "target speaks TLS only, none configured")
        one_line(["backfill", "--origin", "127.24.9.9", "--target", TARGET[0], "-k", "ft", "--connect-timeout-ms", "2000"],
                 3, "origin: no contact point answered (127.24.9.9:9042: Connection refused)", "an unreachable cluster")
    finally:
        oc.shutdown()
        tc.shutdown()
        origin.stop()
        target.stop()
    print(check.summary())
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
