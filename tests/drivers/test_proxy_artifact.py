#!/usr/bin/python3
"""The release artifact of zdm-proxy (build/dist/zdm-proxy) and its Debian package.

Asserts, on the stripped binary zdm-deploy uploads and the package installs:
- it is stripped, at most 10 MB, needs no shared library but glibc's (ELF NEEDED and ldd), and
  no glibc symbol version newer than Debian 12's 2.36; `--version` prints the version and the
  commit of this checkout;
- it runs in a chroot that holds nothing but the binary and glibc's files (no /etc, no
  /usr/lib/ssl, no libstdc++): real python-driver traffic through it with PasswordAuthenticator
  on both clusters, TLS to target, LZ4 (v5 segments, their CRC32) and Snappy (v4) compression;
  the rows are read back from each cluster directly; SIGTERM ends it with exit code 0;
- the .deb (CPack): zdm-proxy, zdmctl, the systemd unit, conffiles under /etc, Depends on libc6
  and nothing else of a library; its unit passes `systemd-analyze verify` with no unknown or
  ignored settings; its example configuration is refused by the unit's --check-config until the
  clusters are filled in, and so is a password given as a list (without showing it); the
  maintainer scripts parse.

Addresses: origin 127.16.2.1, target 127.16.3.1, proxy 127.16.1.1 (ZDM_TEST_NET replaces
127.16). Needs root (chroot). Processes started here are stopped by pid at the end.
"""
import glob
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                        os.path.join(os.path.dirname(__file__), "..", "..", "build"))
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ARTIFACT = os.path.join(BUILD, "dist", "zdm-proxy")
TESTCLUSTER = os.path.join(BUILD, "testcluster", "zdm-testcluster")
NET = os.environ.get("ZDM_TEST_NET", "127.16")
ORIGIN, TARGET, PROXY_IP = f"{NET}.2.1", f"{NET}.3.1", f"{NET}.1.1"
CQL_PORT, PROXY_PORT, METRICS_PORT = 19043, 19042, 19001
MAX_BYTES = 10 * 1024 * 1024
GLIBC_DEBIAN_12 = (2, 36)
# glibc's own libraries: what may stay shared.
GLIBC_LIBS = {"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2", "libpthread.so.0", "libdl.so.2",
              "librt.so.1"}

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from certs import Pki  # noqa: E402
from harness import Checks, DriverLogCollector, wait_port  # noqa: E402

check = Checks()
procs = []


def out(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def check_binary():
    size = os.path.getsize(ARTIFACT)
    check(size <= MAX_BYTES, f"the artifact is {size / 2**20:.1f} MiB (goal <= {MAX_BYTES / 2**20:.0f} MiB)")
    sections = out("readelf", "-S", "-W", ARTIFACT)
    check(".debug_info" not in sections and ".symtab" not in sections,
          "the artifact is stripped (no .debug_info, no .symtab)")
    check(".gnu_debuglink" in sections and os.path.exists(ARTIFACT + ".debug"),
          "its debug information is beside it (zdm-proxy.debug, .gnu_debuglink)")
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out("readelf", "-d", ARTIFACT))
    check(needed and set(needed) <= GLIBC_LIBS, f"ELF NEEDED holds glibc only: {needed}")
    ldd = out("ldd", ARTIFACT)
    libs = [ln.split()[0] for ln in ldd.splitlines() if ln.strip()]
    others = [lib for lib in libs if os.path.basename(lib) not in GLIBC_LIBS and lib != "linux-vdso.so.1"]
    check(not others, f"ldd lists glibc only (others: {others})")
    versions = {tuple(int(x) for x in v.split("."))
                for v in re.findall(r"GLIBC_([0-9]+(?:\.[0-9]+)+)", out("objdump", "-T", ARTIFACT))}
    newest = max(versions)
    check(newest <= GLIBC_DEBIAN_12,
          f"newest glibc symbol version GLIBC_{'.'.join(map(str, newest))} (Debian 12 has 2.36)")
    version = out(ARTIFACT, "--version").strip()
    head = out("git", "-C", REPO, "rev-parse", "HEAD").strip()
    m = re.fullmatch(r"zdm-proxy (\d+\.\d+\.\d+) \(commit ([0-9a-f]+)(-dirty)?\)", version)
    check(m is not None and head.startswith(m.group(2)),
          f"--version names the version and this checkout's commit: {version!r} (HEAD {head[:12]})")
    # The files the chroot needs: glibc's, where ldd found them.
    return [ln.split("=>")[1].split()[0] if "=>" in ln else ln.split()[0]
            for ln in ldd.splitlines() if "/" in ln]


def make_root(tmp, glibc_files):
    """A root holding the artifact, glibc's files and nothing else."""
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    shutil.copy2(ARTIFACT, os.path.join(root, "zdm-proxy"))
    for path in glibc_files:
        real = os.path.realpath(path)
        for p in {path, real}:
            dest = os.path.join(root, p.lstrip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if not os.path.exists(dest):
                shutil.copy2(real, dest)
    files = sorted(os.path.relpath(os.path.join(d, f), root)
                   for d, _, fs in os.walk(root) for f in fs)
    return root, files


def run_in_chroot(tmp, root):
    pki = Pki(os.path.join(root, "pki"))
    ca = pki.ca("ca")
    pki.cert("target", ca, ips=[TARGET])
    logs = []
    for name, ip, extra in (
            ("origin", ORIGIN, ["--auth", "zdm_origin:o-secret", "--compression", "lz4,snappy"]),
            ("target", TARGET, ["--auth", "zdm_target:t-secret", "--compression", "lz4,snappy",
                                "--tls-cert", pki.path("target", "pem"),
                                "--tls-key", pki.path("target", "key")])):
        log = open(os.path.join(tmp, f"{name}.log"), "w")
        logs.append(log)
        procs.append(subprocess.Popen([TESTCLUSTER, "--cluster-name", name, "--nodes", ip,
                                       "--port", str(CQL_PORT)] + extra, stdout=log, stderr=log))
    for ip in (ORIGIN, TARGET):
        if not wait_port(ip, CQL_PORT):
            check(False, f"test cluster {ip} started")
            return
    with open(os.path.join(root, "zdm.yml"), "w") as f:
        f.write(f"""origin_contact_points: "{ORIGIN}"
origin_port: {CQL_PORT}
origin_username: zdm_origin
origin_password: o-secret
target_contact_points: "{TARGET}"
target_port: {CQL_PORT}
target_username: zdm_target
target_password: t-secret
target_tls_server_ca_path: /pki/ca.pem
proxy_listen_address: {PROXY_IP}
proxy_listen_port: {PROXY_PORT}
metrics_address: {PROXY_IP}
metrics_port: {METRICS_PORT}
""")
    r = subprocess.run(["chroot", root, "/zdm-proxy", "--check-config", "/zdm.yml"],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"--check-config in the chroot: exit {r.returncode} {r.stdout.strip()} {r.stderr.strip()}")
    log = open(os.path.join(tmp, "proxy.log"), "w")
    proxy = subprocess.Popen(["chroot", root, "/zdm-proxy", "--config", "/zdm.yml"],
                             stdout=log, stderr=subprocess.STDOUT)
    procs.append(proxy)
    if not check(wait_port(PROXY_IP, PROXY_PORT, 30), "the proxy in the chroot listens"):
        print(open(os.path.join(tmp, "proxy.log")).read()[-3000:])
        return

    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster

    errors = DriverLogCollector()
    logging.getLogger("cassandra").addHandler(errors)
    auth = PlainTextAuthProvider("zdm_target", "t-secret")
    expected = {}
    for proto, compression, k in ((5, "lz4", 1), (4, "snappy", 2)):
        try:
            cluster = Cluster(contact_points=[PROXY_IP], port=PROXY_PORT, protocol_version=proto,
                              compression=compression, auth_provider=auth)
            session = cluster.connect()
            session.execute("CREATE KEYSPACE IF NOT EXISTS zdm_art WITH replication = "
                            "{'class': 'SimpleStrategy', 'replication_factor': 1}")
            session.execute("CREATE TABLE IF NOT EXISTS zdm_art.kv (k int, c int, v text, PRIMARY KEY (k, c))")
            ins = session.prepare("INSERT INTO zdm_art.kv (k, c, v) VALUES (?, ?, ?)")
            for c in range(100):
                # Large enough values that the compressors have something to do.
                session.execute(ins, (k, c, f"{compression}-{c}-" + "x" * 300))
                expected[(k, c)] = f"{compression}-{c}-" + "x" * 300
            got = session.execute("SELECT count(*) FROM zdm_art.kv WHERE k = %s", (k,)).one()[0]
            check(got == 100, f"v{proto} {compression}: 100 rows written and counted through the proxy ({got})")
            cluster.shutdown()
        except Exception as e:  # noqa: BLE001 - reported as the failed check
            check(False, f"v{proto} {compression} through the proxy: {type(e).__name__}: {e}")
    for name, ip, user, pw, tls in (("origin", ORIGIN, "zdm_origin", "o-secret", False),
                                    ("target", TARGET, "zdm_target", "t-secret", True)):
        kw = {"auth_provider": PlainTextAuthProvider(user, pw)}
        if tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(pki.path("ca", "pem"))
            kw["ssl_context"] = ctx
        direct = Cluster(contact_points=[ip], port=CQL_PORT, **kw)
        rows = {(r.k, r.c): r.v for r in direct.connect().execute("SELECT k, c, v FROM zdm_art.kv")}
        direct.shutdown()
        check(rows == expected, f"{name} read directly holds the {len(expected)} rows ({len(rows)})")
    check(not errors.records, f"no driver warnings or errors ({errors.records[:3]})")
    proxy.send_signal(signal.SIGTERM)
    try:
        rc = proxy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, f"SIGTERM: the proxy in the chroot exited {rc}")


def check_package(tmp):
    outdir = os.path.join(tmp, "deb")
    r = subprocess.run(["cpack", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", outdir],
                       capture_output=True, text=True)
    debs = glob.glob(os.path.join(outdir, "zdm-proxy_*_amd64.deb"))
    if not check(r.returncode == 0 and len(debs) == 1, f"cpack made one .deb ({debs}) {r.stderr[-500:]}"):
        return
    deb = debs[0]
    info = out("dpkg-deb", "-I", deb)
    depends = re.search(r"^ Depends: (.*)$", info, re.M)
    deps = [d.strip().split()[0] for d in depends.group(1).split(",")] if depends else []
    libs = [d for d in deps if d.startswith("lib")]
    check(libs == ["libc6"], f"Depends: {depends.group(1) if depends else None} (libraries: {libs})")
    check(re.search(r"^ Package: zdm-proxy$", info, re.M) is not None, "Package: zdm-proxy")
    listing = out("dpkg-deb", "-c", deb)
    for path in ("./usr/bin/zdm-proxy", "./usr/bin/zdmctl", "./usr/lib/systemd/system/zdm-proxy.service",
                 "./etc/zdm-proxy/zdm-proxy.yml", "./etc/default/zdm-proxy"):
        check(re.search(rf"\s{re.escape(path)}$", listing, re.M) is not None, f"the package holds {path[1:]}")
    root = os.path.join(tmp, "deb-root")
    subprocess.run(["dpkg-deb", "-R", deb, root], check=True)
    with open(os.path.join(root, "DEBIAN", "conffiles")) as f:
        check(set(f.read().split()) == {"/etc/zdm-proxy/zdm-proxy.yml", "/etc/default/zdm-proxy"},
              "conffiles: the configuration and zdmctl's settings")
    same = subprocess.run(["cmp", ARTIFACT, os.path.join(root, "usr", "bin", "zdm-proxy")]).returncode == 0
    check(os.path.exists(os.path.join(root, "usr", "share", "doc", "zdm-proxy", "operator-guide.md")),
          "the package holds the operator guide its unit points to")
    check(same, "the package's /usr/bin/zdm-proxy is the artifact")
    for script in ("postinst", "prerm", "postrm"):
        p = os.path.join(root, "DEBIAN", script)
        ok = os.access(p, os.X_OK) and subprocess.run(["sh", "-n", p]).returncode == 0
        check(ok, f"DEBIAN/{script} is executable and parses")
    unit = os.path.join(root, "usr", "lib", "systemd", "system", "zdm-proxy.service")
    # The targets the unit orders itself against, as the host's systemd has them.
    for target in glob.glob("/usr/lib/systemd/system/*.target"):
        shutil.copy2(target, os.path.dirname(unit))
    r = subprocess.run(["systemd-analyze", "verify", "--root", root, unit], capture_output=True, text=True)
    complaints = [ln for ln in (r.stdout + r.stderr).splitlines()
                  if re.search(r"Unknown|ignoring|not executable|Failed|Invalid|not safe", ln)]
    check(r.returncode == 0 and not complaints,
          f"systemd-analyze verify: exit {r.returncode}, complaints {complaints}")
    text = open(unit).read()
    for line in ("User=zdm", "Restart=on-failure", "LimitNOFILE=65536", "KillSignal=SIGTERM",
                 "ExecStartPre=/usr/bin/zdm-proxy --check-config /etc/zdm-proxy/zdm-proxy.yml"):
        check(re.search(rf"^{re.escape(line)}$", text, re.M) is not None, f"the unit says {line}")
    # The request timeout (10 s by default) bounds the drain; the stop timeout must exceed it.
    stop = int(re.search(r"^TimeoutStopSec=(\d+)$", text, re.M).group(1))
    check(stop > 10, f"TimeoutStopSec={stop} exceeds the default 10 s request timeout")
    r = subprocess.run([ARTIFACT, "--check-config", os.path.join(root, "etc", "zdm-proxy", "zdm-proxy.yml")],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "origin_contact_points" in r.stderr + r.stdout,
          f"the example configuration is refused until filled in: exit {r.returncode} "
          f"{(r.stderr + r.stdout).strip()[:200]}")
    # A value of the wrong YAML type is refused by --check-config too (it used to pass and fail at
    # start), naming file:line, the key and the type, and not showing a password.
    bad = os.path.join(tmp, "wrong-type.yml")
    with open(bad, "w") as f:
        f.write("origin_contact_points: 127.0.2.1\ntarget_contact_points: 127.0.3.1\n"
                "origin_username: zdm\norigin_password: [s3cret, other]\n")
    r = subprocess.run([ARTIFACT, "--check-config", bad], capture_output=True, text=True)
    said = (r.stderr + r.stdout).strip()
    check(r.returncode == 2 and said == f"{bad}:4: key 'origin_password': expected a string, got a sequence"
          and "s3cret" not in said, f"a password given as a list is refused: exit {r.returncode} {said[:200]}")


def main():
    if os.geteuid() != 0:
        print("SKIP: chroot needs root")
        return 0
    tmp = tempfile.mkdtemp(prefix="zdm-artifact-")
    try:
        glibc_files = check_binary()
        root, files = make_root(tmp, glibc_files)
        print(f"chroot holds: {files}")
        run_in_chroot(tmp, root)
        check_package(tmp)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    if check.failures:
        print(f"logs in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(check.summary())
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
