#!/usr/bin/python3
"""Driver-matrix client: the DataStax python-driver (Debian python3-cassandra).

Same flags, workload and JSON output as node_client.js and gocql_client/main.go; see README.md.
Run with /usr/bin/python3 (the Python that has python3-cassandra, python3-lz4, python3-snappy).

Negotiated protocol: `cluster.protocol_version` after connect() (the control connection's
downgrades update it), cross-checked with the control connection's own `protocol_version`.
Negotiated compression: the control connection's `_compression_type` (None when the driver
fell back to no compression); every pool connection negotiates the same way from the same
SUPPORTED, so the control connection's choice is the session's.
"""
import argparse
import json
import os
import ssl
import sys
import threading
import time

EXIT_OK, EXIT_WORKLOAD, EXIT_CONNECT, EXIT_UNSUPPORTED, EXIT_USAGE = 0, 1, 2, 3, 4

START = time.monotonic()
_printed = threading.Lock()
result = {
    "driver": "python-driver (unknown version)",
    "ok": False,
    "protocol_version": None,
    "compression": None,
    "requested_protocol": None,
    "requested_compression": None,
    "phase": "setup",
    "batch_children": "prepared+simple",
    "written": [],
    "read_back_ok": 0,
    "errors": [],
    "driver_warnings": [],
    "negotiation": [],
    "elapsed_s": 0.0,
}


def emit(code):
    """Prints the one JSON object and exits; only the first caller (main or watchdog) prints."""
    if not _printed.acquire(blocking=False):
        return
    result["elapsed_s"] = round(time.monotonic() - START, 3)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the driver's threads must not keep the process alive


def fail(code, msg):
    result["errors"].append(msg)
    emit(code)


def parse_args():
    class Parser(argparse.ArgumentParser):
        def error(self, message):
            fail(EXIT_USAGE, "usage: " + message)

    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("--contact-points", required=True)
    p.add_argument("--port", type=int, default=9042)
    p.add_argument("--protocol", default="default", choices=["default", "3", "4", "5", "dse1", "dse2"])
    p.add_argument("--compression", default="none", choices=["none", "lz4", "snappy"])
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--tls-ca")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--tls-server-name")
    p.add_argument("--no-verify-hostname", action="store_true")
    p.add_argument("--keyspace", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--rows", type=int, default=10)
    p.add_argument("--label", required=True)
    p.add_argument("--timeout-s", type=float, default=30.0)
    a = p.parse_args()
    if (a.username is None) != (a.password is None):
        p.error("--username and --password go together")
    if (a.tls_cert is None) != (a.tls_key is None):
        p.error("--tls-cert and --tls-key go together")
    if (a.tls_cert or a.tls_server_name or a.no_verify_hostname) and not a.tls_ca:
        p.error("TLS options need --tls-ca")
    return a


def cql_literal(s):
    return "'" + s.replace("'", "''") + "'"


def error_text(e):
    """The driver's own words: NoHostAvailable carries one error per host tried."""
    from cassandra.cluster import NoHostAvailable
    if isinstance(e, NoHostAvailable):
        per_host = "; ".join(f"{h}: {type(err).__name__}: {err}" for h, err in (e.errors or {}).items())
        return f"NoHostAvailable: {e.args[0] if e.args else ''} {{{per_host}}}"
    return f"{type(e).__name__}: {e}"


def main():
    a = parse_args()
    result["requested_protocol"] = a.protocol
    result["requested_compression"] = a.compression
    watchdog = threading.Timer(a.timeout_s, lambda: fail(
        EXIT_CONNECT if result["phase"] in ("setup", "connect") else EXIT_WORKLOAD,
        f"timeout: --timeout-s {a.timeout_s} elapsed during {result['phase']}"))
    watchdog.daemon = True
    watchdog.start()

    import logging

    class Collect(logging.Handler):
        """The driver's own WARNING+ log lines (e.g. each protocol downgrade), for the report."""
        def emit(self, record):
            msg = record.getMessage()
            if len(result["driver_warnings"]) < 50:
                result["driver_warnings"].append(f"{record.levelname} {record.name}: {msg}")
            if msg.startswith("Downgrading core protocol version"):
                result["negotiation"].append(msg.split(". ")[0])

    logging.getLogger("cassandra").addHandler(Collect(level=logging.WARNING))

    import cassandra
    from cassandra import ProtocolVersion, connection as cconn
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
    from cassandra.query import BatchStatement, BatchType, SimpleStatement

    result["driver"] = f"python-driver {cassandra.__version__}"

    kwargs = {}
    if a.protocol != "default":
        # An explicit version is used as given: the driver does not downgrade from it
        # (a PROTOCOL_ERROR fails the connect with "explicitly set client protocol_version").
        kwargs["protocol_version"] = {"3": 3, "4": 4, "5": ProtocolVersion.V5,
                                      "dse1": ProtocolVersion.DSE_V1, "dse2": ProtocolVersion.DSE_V2}[a.protocol]
    if a.compression == "none":
        kwargs["compression"] = False  # the driver's default (True) would pick lz4 when offered
    else:
        if a.compression not in cconn.locally_supported_compressions:
            pkg = {"lz4": "python3-lz4", "snappy": "python3-snappy"}[a.compression]
            fail(EXIT_UNSUPPORTED, f"unsupported: {a.compression} needs Debian {pkg}, not importable here")
        if a.compression == "snappy" and a.protocol == "5":
            # The driver would silently drop snappy under v5 (segments carry lz4 only).
            fail(EXIT_UNSUPPORTED, "unsupported: python-driver disables snappy with protocol v5 (segments are lz4-only)")
        # A string forces that algorithm: connect fails if the server's SUPPORTED lacks it.
        kwargs["compression"] = a.compression
    if a.username is not None:
        kwargs["auth_provider"] = PlainTextAuthProvider(username=a.username, password=a.password)
    if a.tls_ca:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname on
        ctx.load_verify_locations(a.tls_ca)
        if a.tls_cert:
            ctx.load_cert_chain(a.tls_cert, a.tls_key)
        ctx.check_hostname = not a.no_verify_hostname
        kwargs["ssl_context"] = ctx
        if a.tls_server_name:
            # SNI and the name checked; without it the driver checks the contact point's address.
            kwargs["ssl_options"] = {"server_hostname": a.tls_server_name}

    per_request = max(1.0, min(10.0, a.timeout_s / 2))
    cluster = Cluster(contact_points=a.contact_points.split(","), port=a.port,
                      connect_timeout=per_request, control_connection_timeout=per_request,
                      monitor_reporting_enabled=False,
                      execution_profiles={EXEC_PROFILE_DEFAULT: ExecutionProfile(
                          load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
                          request_timeout=per_request)},
                      **kwargs)
    result["phase"] = "connect"
    try:
        session = cluster.connect()
    except Exception as e:  # noqa: BLE001 - report whatever the driver raised
        fail(EXIT_CONNECT, error_text(e))

    cc = cluster.control_connection._connection
    result["protocol_version"] = cluster.protocol_version
    if cc is not None and cc.protocol_version != cluster.protocol_version:
        result["errors"].append(f"control connection speaks v{cc.protocol_version}, cluster says v{cluster.protocol_version}")
    result["compression"] = (cc._compression_type if cc is not None else None) or "none"
    if a.compression != "none" and result["compression"] != a.compression:
        result["errors"].append(f"asked for {a.compression} compression, driver negotiated {result['compression']}")

    result["phase"] = "workload"
    ks, tbl, label, n = a.keyspace, a.table, a.label, a.rows
    fq = f"{ks}.{tbl}"
    expected = {}  # id -> (seq, payload); "written" grows with it, so a timeout reports what was acknowledged

    def step(what, fn):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001
            result["errors"].append(f"{what}: {error_text(e)}")
            return None

    ok = step("create keyspace", lambda: session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = "
        "{'class':'SimpleStrategy','replication_factor':1}")) is not None
    ok = ok and step("create table", lambda: session.execute(
        f"CREATE TABLE IF NOT EXISTS {fq} (id text PRIMARY KEY, seq int, payload text)")) is not None
    if ok:
        ins = step("prepare insert", lambda: session.prepare(f"INSERT INTO {fq} (id, seq, payload) VALUES (?, ?, ?)"))
        if ins is not None:
            for i in range(n):
                rid, payload = f"{label}-p-{i}", f"p:{label}:{i}"
                if step(f"prepared insert {rid}", lambda: session.execute(ins, (rid, i, payload))) is not None:
                    expected[rid] = (i, payload)
                    result["written"].append(rid)
        for i in range(n):
            rid, payload = f"{label}-s-{i}", f"s:{label}:{i}"
            q = f"INSERT INTO {fq} (id, seq, payload) VALUES ({cql_literal(rid)}, {i}, {cql_literal(payload)})"
            if step(f"simple insert {rid}", lambda: session.execute(q)) is not None:
                expected[rid] = (i, payload)
                result["written"].append(rid)
        if ins is not None:
            b0, b1 = f"{label}-b-0", f"{label}-b-1"
            batch = BatchStatement(batch_type=BatchType.LOGGED)
            batch.add(ins, (b0, 0, f"b:{label}:0"))  # prepared child
            batch.add(SimpleStatement(f"INSERT INTO {fq} (id, seq, payload) VALUES "
                                      f"({cql_literal(b1)}, 1, {cql_literal(f'b:{label}:1')})"))  # simple child
            if step("logged batch", lambda: session.execute(batch)) is not None:
                expected[b0] = (0, f"b:{label}:0")
                expected[b1] = (1, f"b:{label}:1")
                result["written"] += [b0, b1]

    sel = step("prepare select", lambda: session.prepare(f"SELECT id, seq, payload FROM {fq} WHERE id = ?"))
    good = 0
    for rid, want in expected.items():
        got_p = step(f"prepared select {rid}", lambda: session.execute(sel, (rid,)).one()) if sel else None
        got_s = step(f"simple select {rid}", lambda: session.execute(
            f"SELECT id, seq, payload FROM {fq} WHERE id = {cql_literal(rid)}").one())
        rows = [(r.seq, r.payload) if r is not None else None for r in (got_p, got_s)]
        if rows[0] == want and rows[1] == want:
            good += 1
        else:
            result["errors"].append(f"read back {rid}: want {want}, prepared {rows[0]}, simple {rows[1]}")
    result["read_back_ok"] = good

    # Read once more at the end: a downgrade or renegotiation mid-run would show here.
    if cluster.protocol_version != result["protocol_version"]:
        result["errors"].append(f"protocol changed during the run: v{result['protocol_version']} -> v{cluster.protocol_version}")
    result["phase"] = "done"
    result["ok"] = not result["errors"] and good == len(expected) == 2 * n + 2
    try:
        cluster.shutdown()
    except Exception:  # noqa: BLE001
        pass
    emit(EXIT_OK if result["ok"] else EXIT_WORKLOAD)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001
        fail(EXIT_WORKLOAD if result["phase"] in ("workload", "done") else EXIT_CONNECT, f"{type(e).__name__}: {e}")
