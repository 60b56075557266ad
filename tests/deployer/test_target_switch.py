#!/usr/bin/python3
"""deployer_target_switch (ctest): zdm-deploy target disable|enable|status against real proxies
on real sshd hosts.

  usage: test_target_switch.py BUILD_DIR

Address plan 127.27.x.x (its own): proxies' sshd on 127.27.1.1-2:2222 (the proxies listen there
on 9042/14001), origin zdm-testcluster 127.27.2.1, target 127.27.3.1. The proxies are deployed
with a journal (proxy_journal_dir, a host variable). Checks:
- target status: both enabled, their journal directory; zdm-deploy status shows the switch and
  the journal in its table and in --json;
- target disable: both disabled (the proxies' own GET /api/v1/target says so, with the host's
  admin token), the proxies logged who asked; writes through the proxies while disabled are
  acknowledged and journaled (journal bytes and unsettled writes > 0 in target status);
  audited: one line per host, on the host and in the state directory;
- target enable: both enabled again;
- the cutover gate: rolling-update -e primary_cluster=TARGET is refused while the journals hold
  the writes (naming the proxies, nothing rolled); zdm-deploy replay applies them on each proxy
  host with --validate (exit 0, every replayed partition checked and equal with origin, the rows
  read from target directly, 0 unsettled, audited with the check counts); then the same
  rolling-update passes the gate;
- target disable with primary_cluster TARGET in the inventory (-e): refused before any host is
  contacted, saying why; with one proxy rolled to primary_cluster TARGET (the inventory still
  ORIGIN): that proxy answers 409, the command exits 2 naming it with the proxy's text, the
  other one is disabled, the audit says refused / ok;
- zdm-deploy status still exits as before and shows the switch of each proxy.
Every zdm-deploy run is bounded (timeouts); everything started here is stopped by pid at the end.
"""
import getpass
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
DEPLOY = os.path.join(BUILD, "deployer", "zdm-deploy")
TESTCLUSTER = os.path.join(BUILD, "testcluster", "zdm-testcluster")
PROXY = os.path.join(BUILD, "dist", "zdm-proxy")  # what zdm-deploy uploads (zdm-proxy-dist)
SSH_PORT, CQL_PORT, METRICS_PORT = 2222, 9042, 14001
PROXIES = [("proxy1", "127.27.1.1"), ("proxy2", "127.27.1.2")]
ORIGIN, TARGET = "127.27.2.1", "127.27.3.1"

T = tempfile.mkdtemp(prefix="zdm_target_switch.")
os.chmod(T, 0o755)
STATE = os.path.join(T, "state")
started = []  # (name, Popen) of what this test started, stopped by pid at the end
failures = []


def check(ok, what, detail=""):
    print(f"[{'ok' if ok else 'FAIL'}] {what}", flush=True)
    if not ok:
        failures.append(what)
        if detail:
            print(detail[-4000:], flush=True)
    return ok


def start(name, argv):
    log = open(os.path.join(T, name + ".log"), "ab")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    started.append((name, p))
    return p


def wait_port(host, port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def port_busy(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def home(name):
    return os.path.join(T, "hosts", name, "home")


def deploy(*args, timeout=240):
    argv = [DEPLOY, *args]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                           start_new_session=True)
    except subprocess.TimeoutExpired as e:
        r = subprocess.CompletedProcess(argv, -1, e.stdout or "", (e.stderr or "") + f"\ntimed out after {timeout} s")
        if isinstance(r.stdout, bytes):
            r.stdout, r.stderr = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    with open(os.path.join(T, "commands.log"), "a") as f:
        f.write(f"$ {' '.join(argv)}\n--- exit {r.returncode}\n{r.stdout}{r.stderr}\n")
    return r


def readiness(ip):
    try:
        with urllib.request.urlopen(f"http://{ip}:{METRICS_PORT}/health/readiness", timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def proxy_target(name, ip):
    """GET /api/v1/target of a proxy with the deployment's token (the host's secrets file)."""
    token = open(os.path.join(home(name), "secrets", "proxy_admin_token")).read().strip()
    req = urllib.request.Request(f"http://{ip}:{METRICS_PORT}/api/v1/target",
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None
    except (OSError, ValueError):
        return None, None


def enabled(name, ip):
    """The proxy's "enabled", or None when it does not say."""
    code, state = proxy_target(name, ip)
    return state.get("enabled") if code == 200 and isinstance(state, dict) else None


def json_out(r):
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def audit_lines(path, run_marker):
    try:
        return [l for l in open(path).read().splitlines() if run_marker in l]
    except OSError:
        return []


def setup():
    for ip, port in [(ip, p) for _, ip in PROXIES for p in (SSH_PORT, CQL_PORT, METRICS_PORT)] + \
            [(ORIGIN, CQL_PORT), (TARGET, CQL_PORT)]:
        if port_busy(ip, port):
            raise SystemExit(f"deployer_target_switch: {ip}:{port} is in use (another run of this test?)")
    for path in (DEPLOY, TESTCLUSTER, PROXY):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"deployer_target_switch: not built: {path}")
    start("origin", [TESTCLUSTER, "--cluster-name", "origin", "--nodes", ORIGIN, "--port", str(CQL_PORT)])
    start("target", [TESTCLUSTER, "--cluster-name", "target", "--nodes", TARGET, "--port", str(CQL_PORT)])

    ssh = os.path.join(T, "ssh")
    os.makedirs(ssh)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{ssh}/id"], check=True, timeout=30)
    write(f"{ssh}/authorized_keys", open(f"{ssh}/id.pub").read())
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)
    known = []
    for name, ip in PROXIES:
        hdir = os.path.join(T, "hosts", name)
        os.makedirs(os.path.join(hdir, "home"))
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{hdir}/hostkey"], check=True,
                       timeout=30)
        conf = write(f"{hdir}/sshd_config", f"""Port {SSH_PORT}
ListenAddress {ip}
HostKey {hdir}/hostkey
AuthorizedKeysFile {ssh}/authorized_keys
PidFile {hdir}/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
PrintMotd no
LogLevel ERROR
SetEnv SHLVL=1
""")
        start(f"sshd-{name}", ["/usr/sbin/sshd", "-D", "-e", "-f", conf])
        known.append(f"[{ip}]:{SSH_PORT} " + " ".join(open(f"{hdir}/hostkey.pub").read().split()[:2]))
    write(f"{ssh}/known_hosts", "\n".join(known) + "\n")
    for ip in [ip for _, ip in PROXIES]:
        if not wait_port(ip, SSH_PORT, 15):
            raise SystemExit(f"deployer_target_switch: sshd on {ip}:{SSH_PORT} did not start")
    for ip in (ORIGIN, TARGET):
        if not wait_port(ip, CQL_PORT, 30):
            raise SystemExit(f"deployer_target_switch: test cluster node {ip}:{CQL_PORT} did not start")

    inv = os.path.join(T, "inv.ini")
    lines = ["[proxies]"]
    for name, ip in PROXIES:
        lines.append(f"{name} ansible_host={ip} zdm_proxy_home_dir={home(name)} "
                     f"proxy_journal_dir={home(name)}/journal")
    lines += ["", "[proxies:vars]", f"ansible_port={SSH_PORT}", f"ansible_user={getpass.getuser()}",
              f"ansible_ssh_private_key_file={ssh}/id", f"origin_contact_points={ORIGIN}",
              f"origin_port={CQL_PORT}", f"target_contact_points={TARGET}", f"target_port={CQL_PORT}",
              "pause_between_restarts_in_seconds=0"]
    write(inv, "\n".join(lines) + "\n")
    return inv, f"{ssh}/known_hosts"


def write_rows(n):
    """n INSERTs through the proxies (python-driver); the number acknowledged."""
    from cassandra.cluster import Cluster  # python3-cassandra
    from cassandra.policies import WhiteListRoundRobinPolicy
    from cassandra.cluster import ExecutionProfile, EXEC_PROFILE_DEFAULT
    ips = [ip for _, ip in PROXIES]
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy(ips), request_timeout=10)
    cluster = Cluster(ips, port=CQL_PORT, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                      connect_timeout=10, control_connection_timeout=10)
    ok = 0
    try:
        s = cluster.connect()
        for i in range(n):
            try:
                s.execute("INSERT INTO ts.kv (k, v) VALUES (%s, %s)", (f"k{i}", f"v{i}"))
                ok += 1
            except Exception as e:  # counted: the check says how many were acknowledged
                print(f"  write {i}: {e}", flush=True)
    finally:
        cluster.shutdown()
    return ok


def rows_on_target():
    """Rows of ts.kv read from the target stand-in directly (not through a proxy)."""
    from cassandra.cluster import Cluster
    cluster = Cluster([TARGET], port=CQL_PORT, connect_timeout=10, control_connection_timeout=10)
    try:
        s = cluster.connect()
        return len(list(s.execute("SELECT k FROM ts.kv", timeout=20)))
    except Exception as e:  # no table yet, target down: counted as none
        print(f"  reading target: {e}", flush=True)
        return -1
    finally:
        cluster.shutdown()


def create_schema():
    from cassandra.cluster import Cluster
    cluster = Cluster([PROXIES[0][1]], port=CQL_PORT, connect_timeout=10, control_connection_timeout=10)
    try:
        s = cluster.connect()
        s.execute("CREATE KEYSPACE IF NOT EXISTS ts WITH replication = "
                  "{'class': 'SimpleStrategy', 'replication_factor': 1}", timeout=20)
        s.execute("CREATE TABLE IF NOT EXISTS ts.kv (k text PRIMARY KEY, v text)", timeout=20)
    finally:
        cluster.shutdown()


def main():
    inventory, known_hosts = setup()
    common = ["-i", inventory, "--known-hosts", known_hosts, "--ssh-config", "none", "--state-dir", STATE]

    print("== deploy (a journal on each proxy) ==", flush=True)
    r = deploy("deploy", *common)
    if not check(r.returncode == 0, f"deploy exits 0", r.stdout + r.stderr):
        return
    check(all(readiness(ip) == 200 for _, ip in PROXIES), "both proxies ready")
    code, _ = proxy_target(*PROXIES[0])
    if not check(code == 200, f"the proxy has GET /api/v1/target (answered {code})"):
        return

    print("== target status ==", flush=True)
    r = deploy("target", "status", *common, timeout=60)
    check(r.returncode == 0 and all(f"{n}: target enabled, isolated no, journal " in r.stdout for n, _ in PROXIES),
          f"target status: both enabled, with a journal (exit {r.returncode})", r.stdout + r.stderr)
    r = deploy("target", "status", *common, "--json", timeout=60)
    j = json_out(r)
    check(j is not None and [h["host"] for h in j["hosts"]] == [n for n, _ in PROXIES]
          and all(h["target"]["journal"]["dir"] == os.path.join(home(h["host"]), "journal") for h in j["hosts"]),
          "target status --json: each proxy's journal directory", r.stdout + r.stderr)
    r = deploy("status", *common, "--json", timeout=60)
    rows = json_out(r) or []
    check(r.returncode == 0 and len(rows) == 2 and all(row["target"]["enabled"] is True for row in rows),
          f"status --json: \"target\" of each proxy, enabled (exit {r.returncode})", r.stdout + r.stderr)

    print("== schema, then target disable ==", flush=True)
    create_schema()
    t0 = time.monotonic()
    r = deploy("target", "disable", *common, timeout=60)
    took = time.monotonic() - t0
    check(r.returncode == 0 and all(f"{n}: target disabled" in r.stdout for n, _ in PROXIES),
          f"target disable: both disabled (exit {r.returncode}, {took:.1f} s)", r.stdout + r.stderr)
    for name, ip in PROXIES:
        check(enabled(name, ip) is False, f"{name}: GET /api/v1/target says disabled")
        log = open(os.path.join(home(name), "logs", "zdm-proxy.log"), errors="replace").read()
        check(f"{getpass.getuser()}@" in log and "zdm-deploy target disable" in log,
              f"{name}: the proxy logged who disabled target")
    local = audit_lines(os.path.join(STATE, "audit.log"), 'command="zdm-deploy target disable')
    check(len(local) == 2 and all(" outcome=ok target=disabled" in l for l in local),
          "the local audit log: one line per proxy, ok, disabled", "\n".join(local))
    for name, _ in PROXIES:
        on_host = audit_lines(os.path.join(home(name), "audit.log"), 'command="zdm-deploy target disable')
        check(len(on_host) == 1 and f" host={name} " in on_host[0], f"{name}: the audit line on the host")

    acked = write_rows(20)
    check(acked == 20, f"20 writes through the disabled proxies: {acked} acknowledged")
    r = deploy("target", "status", *common, "--json", timeout=60)
    j = json_out(r) or {"hosts": []}
    journal = sum(h["target"]["journal"]["bytes"] for h in j["hosts"] if h["target"])
    unsettled = sum(h["target"]["journal"]["unsettled"] for h in j["hosts"] if h["target"])
    check(journal > 0 and unsettled >= acked > 0,
          f"target status: the writes are journaled ({journal} bytes, {unsettled} unsettled)", r.stdout + r.stderr)
    r = deploy("status", *common, timeout=60)
    table = r.stdout.splitlines()
    check(len(table) == 3 and "TARGET" in table[0] and "JOURNAL" in table[0] and "UNSETTLED" in table[0]
          and all(" disabled " in l for l in table[1:]), "status: the TARGET column says disabled",
          r.stdout + r.stderr)

    print("== target enable ==", flush=True)
    r = deploy("target", "enable", *common, timeout=60)
    check(r.returncode == 0 and all(f"{n}: target enabled" in r.stdout for n, _ in PROXIES),
          f"target enable: both enabled (exit {r.returncode})", r.stdout + r.stderr)
    check(all(enabled(n, ip) is True for n, ip in PROXIES), "GET /api/v1/target: both enabled")

    print("== the cutover gate, then zdm-deploy replay ==", flush=True)
    r = deploy("rolling-update", *common, "--limit", "proxy2", "-e", "primary_cluster=TARGET")
    gated = [n for n, _ in PROXIES if f"{n} (" in r.stderr and "unsettled write" in r.stderr]
    check(r.returncode == 1 and "refusing to make TARGET the primary cluster" in r.stderr
          and "zdm-deploy replay" in r.stderr and gated and "TASK" not in r.stdout,
          f"rolling-update -e primary_cluster=TARGET refused while journals hold writes, naming "
          f"{gated} (exit {r.returncode})", r.stdout + r.stderr)
    check(all(proxy_target(n, ip)[1]["primary_cluster"] == "ORIGIN" for n, ip in PROXIES),
          "both proxies still have primary_cluster ORIGIN")
    check(rows_on_target() < acked, "target lacks the journaled writes before the replay")
    r = deploy("replay", *common, "--rate", "0", timeout=180)
    applied = sum(int(l.split("): ")[1].split(" ")[0]) for l in r.stdout.splitlines() if ": replay ok (exit 0): " in l)
    check(r.returncode == 0 and all(f"{n}: replay ok (exit 0): " in r.stdout for n, _ in PROXIES)
          and "left: 0 writes to replay" in r.stdout and applied >= acked,
          f"zdm-deploy replay: exit {r.returncode}, both ok, {applied} writes applied, 0 left",
          r.stdout + r.stderr)
    print(r.stdout, flush=True)
    # --validate by default: each proxy's replayed partitions read back from origin and target.
    counts = [re.search(r"; checked (\d+) partitions?: (\d+) equal, (\d+) differing, (\d+) unverifiable, "
                        r"(\d+) check errors?, (\d+) segments? kept", l)
              for l in r.stdout.splitlines() if ": replay ok (exit 0): " in l]
    checked = sum(int(m.group(1)) for m in counts if m)
    equal = sum(int(m.group(2)) for m in counts if m)
    check(len(counts) == 2 and all(counts) and checked == equal >= acked
          and all(m.group(3) == m.group(4) == m.group(5) == m.group(6) == "0" for m in counts if m),
          f"zdm-deploy replay validated: {checked} partitions checked, {equal} equal with origin, "
          f"0 differing, 0 kept", r.stdout + r.stderr)
    check(all(os.access(os.path.join(home(n), "zdm-data", "zdm-data"), os.X_OK) for n, _ in PROXIES),
          "zdm-data uploaded to <home>/zdm-data/ on each proxy host")
    local = audit_lines(os.path.join(STATE, "audit.log"), 'command="zdm-deploy replay')
    check(len(local) == 2 and all(" outcome=ok applied=" in l and " checked=" in l
                                  and " differing=0 " in l and " kept_unconfirmed=0" in l for l in local),
          "the local audit log: one replay line per proxy, with the check counts", "\n".join(local))
    n_target = rows_on_target()
    check(n_target == acked, f"the {acked} journaled rows are on target ({n_target})")
    r = deploy("target", "status", *common, "--json", timeout=60)
    j = json_out(r) or {"hosts": []}
    check(all(h["target"] and h["target"]["journal"]["unsettled"] == 0 for h in j["hosts"]),
          "target status: 0 unsettled on both proxies", r.stdout + r.stderr)

    print("== refused: primary_cluster TARGET ==", flush=True)
    r = deploy("target", "disable", *common, "-e", "primary_cluster=TARGET", timeout=60)
    check(r.returncode == 1 and "primary_cluster is TARGET" in r.stderr and "source of truth" in r.stderr
          and r.stdout == "", f"with -e primary_cluster=TARGET: refused before any host (exit {r.returncode})",
          r.stdout + r.stderr)
    check(all(enabled(n, ip) is True for n, ip in PROXIES), "both proxies still enabled")

    r = deploy("rolling-update", *common, "--limit", "proxy2", "-e", "primary_cluster=TARGET")
    if check(r.returncode == 0 and "refusing" not in r.stderr,
             f"after the replay the gate lets it through: proxy2 rolled to primary_cluster TARGET "
             f"(exit {r.returncode})",
             r.stdout + r.stderr):
        r = deploy("target", "disable", *common, timeout=60)
        out = r.stdout + r.stderr
        check(r.returncode == 2 and "proxy1: target disabled" in r.stdout
              and "proxy2: refused (409): " in r.stdout and "proxy2 (refused)" in r.stderr,
              f"target disable: proxy2 refuses (409, its text shown), proxy1 disabled, exit 2 "
              f"(exit {r.returncode})", out)
        print("\n".join(l for l in r.stdout.splitlines() if "proxy2" in l), flush=True)
        local = audit_lines(os.path.join(STATE, "audit.log"), 'command="zdm-deploy target disable')[2:]
        check(any(" host=proxy1 " in l and " outcome=ok target=disabled" in l for l in local)
              and any(" host=proxy2 " in l and " outcome=refused" in l for l in local),
              "the audit log: proxy1 ok, proxy2 refused", "\n".join(local))
        r = deploy("target", "enable", *common, "--limit", "proxy1", timeout=60)
        check(r.returncode == 0 and "proxy1: target enabled" in r.stdout,
              f"target enable --limit proxy1 (exit {r.returncode})", r.stdout + r.stderr)

    print("== teardown ==", flush=True)
    r = deploy("teardown", *common, "--yes")
    check(r.returncode == 0, "teardown --yes exits 0", r.stdout + r.stderr)
    check(not any(os.path.exists(os.path.join(home(n), "journal")) for n, _ in PROXIES)
          and "is kept" not in r.stdout,
          "teardown removed the journals: nothing left to replay", r.stdout + r.stderr)


def cleanup():
    # Proxies (and their supervisors) that a failed run left behind, by their pid files.
    for name, _ in PROXIES:
        for suffix in ("", ".child"):
            try:
                pid = int(open(os.path.join(home(name), "run", "zdm-proxy.pid" + suffix)).read().strip())
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if T.encode() in f.read() or suffix:
                        os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
    for name, p in reversed(started):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


if __name__ == "__main__":
    t0 = time.monotonic()
    try:
        main()
    except SystemExit as e:
        check(False, str(e))
    except Exception as e:  # a crash of the script still stops what it started
        check(False, f"{type(e).__name__}: {e}")
    finally:
        cleanup()
    print(f"\ndeployer_target_switch: {time.monotonic() - t0:.1f} s; logs in {T}" if failures else
          f"\ndeployer_target_switch: all checks passed ({time.monotonic() - t0:.1f} s)")
    if not failures:
        shutil.rmtree(T, ignore_errors=True)
    sys.exit(1 if failures else 0)
