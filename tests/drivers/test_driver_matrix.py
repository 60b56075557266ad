#!/usr/bin/python3
"""The driver matrix: real drivers through zdm-proxy against zdm-testcluster clusters that demand
what Cassandra demands (per-node prepared statements, authentication, TLS, compression, v5).

usage: test_driver_matrix.py BUILD_DIR [--only GROUP[,GROUP]]

Drivers: the DataStax python-driver, the Node.js cassandra-driver, gocql (tests/drivers/clients;
each does prepared and simple writes, a logged batch, and reads everything back). After every
successful run the written rows are read directly from origin and from target.

Groups (each starts its own clusters and proxy on 127.19.x.x, this test's address plan):
  versions  protocol default/3/4/5 x compression none/lz4/snappy, each driver where it speaks it;
            the clusters' logs show the compression both hops negotiated
  dse       clusters speaking DSE_V1/DSE_V2 with DseAuthenticator: negotiation up to DSE_V2
  auth      PasswordAuthenticator on origin only / target only / both (and
            forward_client_credentials_to_origin): right credentials work, wrong ones get the
            driver's authentication error and leave no connection open on the proxy
  tls       proxy->cluster one-way and mutual, client->proxy one-way and mutual; refused: an
            untrusted CA, an expired certificate, a host name mismatch, a missing client
            certificate, a missing CA file at start-up (one line naming the key and the file)
  badinput  a bad v5 segment CRC, garbage in a compressed frame, a compressed frame declaring a
            huge size: that connection is closed with an error, the proxy and others go on

Prints the matrix as a table (driver, asked version, negotiated, compression, auth, TLS, result)
and ends with "N passed, N failed" (1 passed means every check passed). Processes are stopped
by pid.
"""
import io
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(REPO, "build")
TESTCLUSTER = os.path.join(BUILD, "testcluster", "zdm-testcluster")
PROXY = os.path.join(BUILD, "proxy", "zdm-proxy")
CLIENTS = os.path.join(HERE, "clients")
ORIGIN = ["127.19.2.1", "127.19.2.2"]
TARGET = ["127.19.3.1", "127.19.3.2"]
PROXY_IP, CQL_PORT, METRICS_PORT = "127.19.1.1", 9042, 14001

sys.path.insert(0, HERE)
from certs import Pki  # noqa: E402
from harness import Checks, Processes, wait_port  # noqa: E402

check = Checks()
TABLE = []  # rows of the printed matrix
TMP = tempfile.mkdtemp(prefix="zdm-driver-matrix-")
PKI = Pki(os.path.join(TMP, "pki"))
GOCQL = os.path.join(TMP, "gocql_client")
procs = Processes(TMP)
start, stop = procs.start, procs.stop


# ------------------------------------------------------------------------------------------
# processes

def log_of(name):
    with open(os.path.join(TMP, f"{name}.log")) as f:
        return f.read().split("\n==== ")[-1]


def clusters(origin_args=(), target_args=()):
    """(Re)starts origin and target, each node with its own prepared statements."""
    for name, nodes, extra in (("origin", ORIGIN, origin_args), ("target", TARGET, target_args)):
        stop(name)
        start(name, [TESTCLUSTER, "--cluster-name", name, "--nodes", ",".join(nodes), "--port",
                     str(CQL_PORT), "--prepared-per-node", *extra])
    for ip in ORIGIN + TARGET:
        assert wait_port(ip, CQL_PORT), f"test cluster node {ip} did not start"


def readiness():
    try:
        with urllib.request.urlopen(f"http://{PROXY_IP}:{METRICS_PORT}/health/readiness", timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def proxy(extra="", expect_ready=True, timeout=15):
    """(Re)starts the proxy with `extra` YAML lines; waits for readiness 200 (or for `timeout`)."""
    stop("proxy")
    path = os.path.join(TMP, "zdm.yml")
    with open(path, "w") as f:
        f.write(f"""origin_contact_points: {",".join(ORIGIN)}
origin_port: {CQL_PORT}
target_contact_points: {",".join(TARGET)}
target_port: {CQL_PORT}
proxy_listen_address: {PROXY_IP}
proxy_listen_port: {CQL_PORT}
metrics_address: {PROXY_IP}
metrics_port: {METRICS_PORT}
proxy_topology_addresses: {PROXY_IP}
heartbeat_retry_interval_max_ms: 1000
""" + extra)
    p = start("proxy", [PROXY, "--config", path])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and p.poll() is None:
        if readiness() == 200:
            return True
        time.sleep(0.1)
    if expect_ready:
        print(log_of("proxy")[-3000:])
    return False


def metric_values(prefix):
    with urllib.request.urlopen(f"http://{PROXY_IP}:{METRICS_PORT}/metrics", timeout=5) as r:
        text = r.read().decode()
    return [float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(prefix)]


# ------------------------------------------------------------------------------------------
# clients and verification

def client(driver, label, protocol="default", compression="none", creds=None, tls=None, rows=3):
    """Runs one driver client through the proxy; returns (exit code, its JSON report)."""
    args = ["--contact-points", PROXY_IP, "--port", str(CQL_PORT), "--protocol", protocol,
            "--compression", compression, "--keyspace", "matrix", "--table", "t", "--rows", str(rows),
            "--label", label, "--timeout-s", "30"]
    if creds:
        args += ["--username", creds[0], "--password", creds[1]]
    if tls:
        args += ["--tls-ca", PKI.path(tls["ca"], "pem")]
        if tls.get("cert"):
            args += ["--tls-cert", PKI.path(tls["cert"], "pem"), "--tls-key", PKI.path(tls["cert"], "key")]
    argv = {"python": ["/usr/bin/python3", os.path.join(CLIENTS, "python_client.py")],
            "node": ["node", os.path.join(CLIENTS, "node_client.js")],
            "gocql": [GOCQL]}[driver] + args
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    try:
        report = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        report = {"ok": False, "errors": [r.stdout[-500:] + r.stderr[-500:]]}
    return r.returncode, report


def direct_rows(nodes, ids, creds=None, tls=None):
    """{id: (seq, payload)} read directly from a cluster (not through the proxy)."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy
    kw = {"port": CQL_PORT, "protocol_version": 4, "execution_profiles": {
        EXEC_PROFILE_DEFAULT: ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy(nodes))}}
    if creds:
        kw["auth_provider"] = PlainTextAuthProvider(*creds)
    if tls:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(PKI.path(tls["ca"], "pem"))
        if tls.get("cert"):
            ctx.load_cert_chain(PKI.path(tls["cert"], "pem"), PKI.path(tls["cert"], "key"))
        kw["ssl_context"] = ctx
    c = Cluster(nodes, **kw)
    try:
        s = c.connect()
        out = {}
        for i in ids:
            row = s.execute("SELECT seq, payload FROM matrix.t WHERE id = %s", (i,)).one()
            if row:
                out[i] = (row.seq, row.payload)
        return out
    finally:
        c.shutdown()


def expected_row(label, i):
    kind, seq = i.rsplit("-", 2)[1], int(i.rsplit("-", 1)[1])
    return seq, f"{kind}:{label}:{seq}"


# What each driver cannot do (its client exits 3 for these; anything else exiting 3 fails).
def unsupported(driver, protocol, compression):
    if driver == "node":
        return protocol == "5" or compression != "none"
    if driver == "gocql":
        return protocol in ("5", "dse1", "dse2")
    return protocol == "5" and compression == "snappy"  # python: v5 segments are LZ4 only


def matrix_run(driver, protocol="default", compression="none", creds=None, tls=None,
               auth="none", tls_label="none", expect_version=None, direct=None, label=None):
    """One cell: run the driver, check its report, then the rows on both clusters."""
    label = label or f"{driver}-{protocol}-{compression}-{auth}-{tls_label}".replace("_", "")
    if unsupported(driver, protocol, compression):
        rc, rep = client(driver, label, protocol, compression, creds, tls)
        ok = rc == 3 and str(rep.get("errors", [""])[0]).startswith("unsupported:")
        check(ok, f"{label}: {driver} says it cannot do protocol {protocol} with {compression} (exit {rc})")
        TABLE.append((driver, protocol, "-", compression, auth, tls_label, "n/a (driver)" if ok else "FAIL"))
        return rc, rep
    rc, rep = client(driver, label, protocol, compression, creds, tls)
    got = rep.get("protocol_version")
    ok = rc == 0 and rep.get("ok") and (expect_version is None or got == expect_version)
    if ok and direct is not None:
        written = rep.get("written", [])
        want = {i: expected_row(label, i) for i in written}
        for name, nodes, dcreds, dtls in direct:
            have = direct_rows(nodes, written, dcreds, dtls)
            ok &= check(len(written) == 8 and have == want,
                        f"{label}: {len(written)} rows on {name}, read directly, as written")
    check(ok, f"{label}: {driver} protocol {protocol} -> v{got}, compression {compression}, auth {auth}, "
              f"TLS {tls_label} (exit {rc}{'' if ok else ', ' + str(rep.get('errors'))[:400]})")
    TABLE.append((driver, protocol, str(got), rep.get("compression") or compression, auth, tls_label,
                  "pass" if ok else "FAIL"))
    return rc, rep


def expect_refused(driver, label, what, pattern, **kw):
    """A client run that must fail to connect with an error matching `pattern`."""
    rc, rep = client(driver, label, **kw)
    errors = " ".join(rep.get("errors", []))
    ok = rc == 2 and re.search(pattern, errors, re.I) is not None
    check(ok, f"{label}: {driver} {what} refused (exit {rc}): {errors[:300]}")
    TABLE.append((driver, kw.get("protocol", "default"), "-", kw.get("compression", "none"),
                  label, "", "refused as expected" if ok else "FAIL"))


PLAIN_DIRECT = (("origin", ORIGIN, None, None), ("target", TARGET, None, None))


# ------------------------------------------------------------------------------------------
# groups

def group_versions():
    print("== versions x compression (no auth, no TLS) ==", flush=True)
    clusters()
    assert proxy(), "proxy not ready"
    expected_default = {"python": 5, "node": 4, "gocql": 4}
    for driver in ("python", "node", "gocql"):
        for protocol in ("default", "3", "4", "5"):
            if driver == "gocql" and protocol == "5":
                # gocql 1.3's "v5" is the pre-4.0 beta framing (no segments): not protocol v5.
                TABLE.append((driver, protocol, "-", "-", "none", "none", "n/a (driver)"))
                continue
            for compression in ("none", "lz4", "snappy"):
                if driver == "python" and protocol == "default" and compression == "snappy":
                    # The python-driver negotiates v5, whose segments are LZ4 only, and drops Snappy.
                    TABLE.append((driver, protocol, "5", "-", "none", "none", "n/a (v5 has no Snappy)"))
                    continue
                want = expected_default[driver] if protocol == "default" else int(protocol)
                matrix_run(driver, protocol, compression, expect_version=want, direct=PLAIN_DIRECT)
    for name in ("origin", "target"):
        log = log_of(name)
        for algo in ("lz4", "snappy"):
            n = len(re.findall(rf"STARTUP protocol 4/v4, compression {algo}", log))
            check(n > 0, f"{name}: connections from the proxy negotiated {algo} on v4 ({n})")
        n = len(re.findall(r"STARTUP protocol 5/v5, compression lz4", log))
        check(n > 0, f"{name}: connections negotiated LZ4 segments on v5 ({n})")
        compressed = sum(int(x) for x in re.findall(r"\((\d+) compressed\)", log))
        check(compressed > 0, f"{name}: compressed frames arrived from the proxy ({compressed})")


def group_dse():
    print("== DSE versions, DseAuthenticator ==", flush=True)
    dse = ["--protocol-versions", "3,4,dse1,dse2", "--authenticator", "dse", "--auth", "dse:dsepass",
           "--dse-version", "6.8.50", "--release-version", "4.0.0.6850"]
    clusters(dse, dse)
    assert proxy("origin_username: dse\norigin_password: dsepass\n"
                 "target_username: dse\ntarget_password: dsepass\n"), "proxy not ready"
    direct = (("origin", ORIGIN, ("dse", "dsepass"), None), ("target", TARGET, ("dse", "dsepass"), None))
    creds = ("dse", "dsepass")
    matrix_run("python", "default", creds=creds, auth="dse", expect_version=0x42, direct=direct)
    matrix_run("python", "dse1", creds=creds, auth="dse", expect_version=0x41, direct=direct)
    matrix_run("python", "4", "lz4", creds=creds, auth="dse", expect_version=4, direct=direct)
    matrix_run("node", "default", creds=creds, auth="dse", expect_version=0x42, direct=direct)
    matrix_run("gocql", "default", creds=creds, auth="dse", expect_version=4, direct=direct)
    # A cluster's PROTOCOL_ERROR during STARTUP reaches the client on its stream and on stream 0.
    with socket.create_connection((PROXY_IP, CQL_PORT), timeout=5) as s:
        s.sendall(frame(5, 7, 0x01, string_map({"CQL_VERSION": "3.0.0"})))
        data, closed = recv_all(s)
    streams = []
    while len(data) >= 9:
        _, _, st, op, n = struct.unpack(">BBhBI", data[:9])
        streams.append((st, op))
        data = data[9 + n:]
    check(closed and streams == [(7, 0), (0, 0)],
          f"v5 STARTUP refused by the clusters: PROTOCOL_ERROR on stream 7, then on stream 0, closed ({streams})")
    expect_refused("python", "dse-v5", "protocol v5 against clusters without it",
                   r"ProtocolError returned from server while using explicitly set client protocol_version 5",
                   protocol="5")


def no_connections_left(what):
    time.sleep(0.5)
    vals = {p: metric_values(p) for p in ("zdm_client_connections_total", "zdm_origin_connections_total",
                                          "zdm_target_connections_total")}
    check(all(v == 0 for vs in vals.values() for v in vs),
          f"{what}: no client or cluster connection left open on the proxy ({vals})")


def group_auth():
    print("== authentication ==", flush=True)
    o_creds, t_creds = ("ouser", "opass"), ("tuser", "tpass")
    cases = [
        ("origin-only", ["--auth", "ouser:opass"], [], "", o_creds),
        ("target-only", [], ["--auth", "tuser:tpass"], "", t_creds),
        # Reads mirrored to target: the async connector authenticates with the client's (target's)
        # credentials before any read is mirrored.
        ("both", ["--auth", "ouser:opass"], ["--auth", "tuser:tpass"],
         "read_mode: DUAL_ASYNC_ON_SECONDARY\n", t_creds),
        ("both-fwd-origin", ["--auth", "ouser:opass"], ["--auth", "tuser:tpass"],
         "forward_client_credentials_to_origin: true\n", o_creds),
    ]
    for name, oargs, targs, extra, client_creds in cases:
        clusters(oargs, targs)
        assert proxy("origin_username: ouser\norigin_password: opass\n"
                     "target_username: tuser\ntarget_password: tpass\n" + extra), "proxy not ready"
        direct = (("origin", ORIGIN, o_creds if oargs else None, None),
                  ("target", TARGET, t_creds if targs else None, None))
        drivers = ("python", "node", "gocql") if name == "both" else ("python",)
        for d in drivers:
            matrix_run(d, creds=client_creds, auth=name, direct=direct, label=f"{d}-auth-{name}")
            expect_refused(d, f"auth-{name}-wrong", "wrong password",
                           r"Provided username \w+ and/or password are incorrect",
                           creds=(client_creds[0], "wrong"))
        if name == "both":
            mirrored = sum(metric_values("zdm_async_request_duration_seconds_count"))
            failed = sum(metric_values("zdm_async_requests_failed_total"))
            check(mirrored > 0 and failed == 0,
                  f"auth both, DUAL_ASYNC_ON_SECONDARY: reads mirrored to target after the async handshake "
                  f"with the client's credentials ({mirrored:.0f} mirrored, {failed:.0f} failed)")
            expect_refused("python", "auth-both-origin-creds", "origin's credentials (target's expected)",
                           r"Provided username ouser and/or password are incorrect", creds=o_creds)
            expect_refused("python", "auth-both-none", "no credentials",
                           r"requires authentication|AuthenticationFailed|Authentication", creds=None)
        no_connections_left(f"auth {name}")
    # The proxy's own credentials wrong: it never becomes ready and says why.
    clusters(["--auth", "ouser:opass"], [])
    ready = proxy("origin_username: ouser\norigin_password: nope\n", expect_ready=False, timeout=4)
    log = log_of("proxy")
    check(not ready and readiness() in (503, None) and
          "ORIGIN at 127.19.2.1:9042 refused the credentials of origin_username 'ouser': Provided "
          "username ouser and/or password are incorrect" in log,
          "wrong origin_password: not ready, the log names origin_username and the cluster's answer")
    ready = proxy("", expect_ready=False, timeout=4)
    check(not ready and "ORIGIN requires authentication (org.apache.cassandra.auth.PasswordAuthenticator) "
          "but origin_username and origin_password are not set" in log_of("proxy"),
          "no origin credentials: not ready, the log says which keys are missing")


def group_tls():
    print("== TLS ==", flush=True)
    ca = PKI.ca("ca")
    PKI.ca("otherca")
    PKI.cert("origin", ca, ips=ORIGIN)
    PKI.cert("target", ca, ips=TARGET)
    PKI.cert("proxyclient", ca, client=True)
    PKI.cert("proxy", ca, ips=[PROXY_IP])
    PKI.cert("driver", ca, client=True)
    PKI.cert("expired", ca, ips=TARGET, expired=True)
    PKI.cert("wrongip", ca, ips=["127.19.9.9"])
    PKI.cert("untrusted", "otherca", ips=TARGET)
    p = PKI.path
    one_way = ["--tls-cert", p("origin", "pem"), "--tls-key", p("origin", "key")]
    mutual = ["--tls-cert", p("target", "pem"), "--tls-key", p("target", "key"),
              "--tls-ca", p(ca, "pem"), "--tls-require-client-auth"]
    clusters(one_way, mutual)
    cluster_tls = (f"origin_tls_server_ca_path: {p(ca, 'pem')}\n"
                   f"target_tls_server_ca_path: {p(ca, 'pem')}\n"
                   f"target_tls_client_cert_path: {p('proxyclient', 'pem')}\n"
                   f"target_tls_client_key_path: {p('proxyclient', 'key')}\n")
    direct = (("origin", ORIGIN, None, {"ca": ca}), ("target", TARGET, None, {"ca": ca, "cert": "driver"}))
    assert proxy(cluster_tls), "proxy not ready with TLS to both clusters"
    for d in ("python", "node", "gocql"):
        matrix_run(d, tls_label="proxy->origin one-way, ->target mutual", direct=direct,
                   label=f"{d}-tls-clusters")
    # Client -> proxy: one-way, then mutual.
    client_one_way = f"proxy_tls_cert_path: {p('proxy', 'pem')}\nproxy_tls_key_path: {p('proxy', 'key')}\n"
    assert proxy(cluster_tls + client_one_way), "proxy not ready with client TLS"
    for d in ("python", "node", "gocql"):
        matrix_run(d, tls={"ca": ca}, tls_label="client->proxy one-way + clusters", direct=direct,
                   label=f"{d}-tls-client")
    expect_refused("python", "tls-client-untrusted", "a proxy certificate from an unknown CA",
                   r"certificate verify failed", tls={"ca": "otherca"})
    expect_refused("python", "tls-client-plaintext", "plaintext to a TLS proxy",
                   r"(closed|reset|defunct|EOF|Connection)", tls=None)
    assert proxy(cluster_tls + client_one_way + f"proxy_tls_ca_path: {p(ca, 'pem')}\n"
                 "proxy_tls_require_client_auth: true\n"), "proxy not ready with mutual client TLS"
    for d in ("python", "node", "gocql"):
        matrix_run(d, tls={"ca": ca, "cert": "driver"}, tls_label="client->proxy mutual + clusters",
                   direct=direct, label=f"{d}-tls-mutual")
    for d in ("python", "gocql"):
        expect_refused(d, f"tls-mutual-nocert-{d}", "no client certificate where one is required",
                       r"certificate required|alert|handshake|EOF|reset|closed", tls={"ca": ca})
    # Refused by the proxy on its way to a cluster: each says why, readiness stays 503.
    for cert, extra, pattern, what in (
            ("untrusted", "", r"certificate verify failed \(unable to get local issuer certificate\)",
             "target certificate from an unknown CA"),
            ("expired", "", r"certificate verify failed \(certificate has expired\)", "expired target certificate"),
            ("wrongip", "", r"certificate verify failed \(IP address mismatch\)", "target certificate for another address"),
            ("wrongip", "target_tls_verify_hostname: false\n", None, "name mismatch with target_tls_verify_hostname: false")):
        clusters([], ["--tls-cert", p(cert, "pem"), "--tls-key", p(cert, "key")])
        ready = proxy(f"target_tls_server_ca_path: {p(ca, 'pem')}\n" + extra, expect_ready=pattern is None,
                      timeout=15 if pattern is None else 4)
        log = log_of("proxy")
        if pattern is None:
            check(ready, f"{what}: ready")
            TABLE.append(("proxy", "-", "-", "-", "-", what, "pass" if ready else "FAIL"))
        else:
            m = re.search(r"Failed to open control connection to TARGET using endpoint [\d.:]+: TLS handshake: .*" + pattern, log)
            check(not ready and m is not None, f"{what}: refused, not ready; the log says {m.group(0) if m else log[-600:]!r}")
            TABLE.append(("proxy", "-", "-", "-", "-", what, "refused as expected" if m and not ready else "FAIL"))
    stop("proxy")
    path = os.path.join(TMP, "missing.yml")
    with open(path, "w") as f:
        f.write(f"origin_contact_points: {ORIGIN[0]}\ntarget_contact_points: {TARGET[0]}\n"
                "target_tls_server_ca_path: /nonexistent/ca.pem\n")
    r = subprocess.run([PROXY, "--config", path], capture_output=True, text=True, timeout=20)
    check(r.returncode == 2 and "Invalid TLS configuration: target_tls_server_ca_path: cannot read "
          "/nonexistent/ca.pem: No such file or directory" in r.stderr,
          f"a missing CA file stops the start with one line naming the key and the file (exit {r.returncode})")


def recv_all(s, timeout=5):
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except socket.timeout:
        return data, False
    except ConnectionResetError:
        return data, True


def frame(version, stream, opcode, body=b"", flags=0):
    return struct.pack(">BBhBI", version, flags, stream, opcode, len(body)) + body


def string_map(m):
    out = struct.pack(">H", len(m))
    for k, v in m.items():
        out += struct.pack(">H", len(k)) + k.encode() + struct.pack(">H", len(v)) + v.encode()
    return out


def group_badinput():
    print("== bad input ==", flush=True)
    clusters()
    assert proxy(), "proxy not ready"
    from cassandra.cluster import Cluster
    from cassandra.connection import segment_codec_lz4
    good = Cluster([PROXY_IP], port=CQL_PORT)
    session = good.connect()
    session.execute("SELECT release_version FROM system.local")

    # v5 with LZ4: a segment whose header CRC is wrong.
    s = socket.create_connection((PROXY_IP, CQL_PORT))
    s.sendall(frame(5, 0, 0x01, string_map({"CQL_VERSION": "3.0.0", "COMPRESSION": "lz4"})))
    data = s.recv(9)
    check(len(data) == 9 and data[4] == 0x02, f"v5 + LZ4 handshake: READY ({data!r})")
    buf = io.BytesIO()
    segment_codec_lz4.encode(buf, frame(5, 1, 0x05))
    seg = bytearray(buf.getvalue())
    seg[5] ^= 0xFF  # a byte of the header CRC24
    s.sendall(bytes(seg))
    data, closed = recv_all(s)
    check(closed, f"bad segment CRC: the connection is closed ({data[:60]!r})")
    s.close()

    # v4 with LZ4: a compressed QUERY whose body is garbage.
    s = socket.create_connection((PROXY_IP, CQL_PORT))
    s.sendall(frame(4, 0, 0x01, string_map({"CQL_VERSION": "3.0.0", "COMPRESSION": "lz4"})))
    data = s.recv(9)
    check(len(data) == 9 and data[4] == 0x02, "v4 + LZ4 handshake: READY")
    s.sendall(frame(4, 2, 0x07, struct.pack(">I", 64) + b"\xff" * 40, flags=0x01))
    data, closed = recv_all(s)
    check(closed and b"\x00\x00\x00\x0a" in data[9:13], f"garbage LZ4 body: PROTOCOL_ERROR, then closed ({data[:80]!r})")
    s.close()

    # v4 with LZ4: a compressed frame that declares 2 GB once inflated.
    s = socket.create_connection((PROXY_IP, CQL_PORT))
    s.sendall(frame(4, 0, 0x01, string_map({"CQL_VERSION": "3.0.0", "COMPRESSION": "lz4"})))
    s.recv(9)
    s.sendall(frame(4, 3, 0x07, struct.pack(">I", 0x7FFFFFFF) + b"\x00" * 8, flags=0x01))
    data, closed = recv_all(s)
    check(closed and b"limit" in data, f"compressed frame over the size limit: refused before inflating, closed ({data[:120]!r})")
    s.close()

    rows = session.execute("SELECT release_version FROM system.local").all()
    check(len(rows) == 1, "the other client's session still works")
    log = log_of("proxy")
    for what in ("segment header CRC", "limit"):
        n = len([l for l in log.splitlines() if "Closing client" in l and what in l]) + \
            len([l for l in log.splitlines() if "Malformed" in l and what in l])
        check(n == 1, f"one log line for the '{what}' error ({n})")
    check(readiness() == 200, "proxy still ready")
    good.shutdown()


def main():
    only = None
    if "--only" in sys.argv:
        only = set(sys.argv[sys.argv.index("--only") + 1].split(","))
    r = subprocess.run([os.path.join(CLIENTS, "build-gocql.sh"), TMP], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        check(False, "gocql client builds")
        return 1
    groups = [("versions", group_versions), ("dse", group_dse), ("auth", group_auth),
              ("tls", group_tls), ("badinput", group_badinput)]
    try:
        for name, fn in groups:
            if only is None or name in only:
                t0 = time.monotonic()
                fn()
                print(f"   ({name}: {time.monotonic() - t0:.0f} s)", flush=True)
    finally:
        procs.stop_all()
        print("\n| driver | asked | negotiated | compression | auth | TLS | result |")
        print("|---|---|---|---|---|---|---|")
        for row in TABLE:
            print("| " + " | ".join(str(x) for x in row) + " |")
        if check.failures:
            print(f"\nlogs kept in {TMP}")
        else:
            shutil.rmtree(TMP, ignore_errors=True)
    print(check.summary())
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
