#!/usr/bin/python3
"""Sandbox orchestration behind scripts/sandbox (see its header).

Usage: sandbox.py up|down|status [--net A.B] [--dir DIR] [--inventory FILE]

The address plan follows docs/DESIGN ("The sandbox's address plan"), under a /16 of loopback
that `--net` chooses (default 127.0, the user's sandbox): proxies NET.1.1-3, monitoring
NET.1.10, origin NET.2.1-3, target NET.3.1-3; sshd on 2222, CQL 9042, metrics 14001; node
exporters on the proxies' 9100, Prometheus NET.1.10:9090, Alertmanager NET.1.10:9093, the
dashboard page NET.0.1:3000; each test cluster's fault admin on its first node's 9180. Tests pass
a /16 of their own (e.g. --net 127.10), their own --dir and --inventory, so they never touch a
user's running sandbox.

A running sandbox is registered in /tmp/zdm-sandboxes/<net>.json (its directory, inventory and
pids). A second `up` on the same plan, or in the same directory, says so in one line and exits 3.

`up` walks the five phases of a migration (ZDM's numbering, as in its migration guide). Before the
proxies go up, tests/data/history.py writes historical rows to origin (zdm_sandbox.accounts, a month
old, some with a TTL). 1: the proxies are deployed and the application (tests/drivers/app.py) and an
updater of the historical rows write through them (dual writes); 2: `zdm-deploy migrate-data` runs
`zdm-data backfill` and `zdm-data validate` on the monitoring host while they do (the updater stops
then); 3: reads mirrored to target; 4: reads from target; 5: everything the application needs is
read directly from target (as it will read once it connects to target without the proxies).

`up` ends with a machine-readable line:
TALLY acknowledged_writes=<n> origin_rows=<n> target_rows=<n> app_errors=<n> history_rows=<n>
backfill_rows=<n> validate_differences=<n>
and exits 0 only if every check passed. Everything stays up until `down`.
"""
import argparse
import getpass
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(REPO, "build")
DEPLOY = os.path.join(BUILD, "deployer", "zdm-deploy")
TESTCLUSTER = os.path.join(BUILD, "testcluster", "zdm-testcluster")
SSH_PORT, CQL_PORT, METRICS_PORT = 2222, 9042, 14001
NODE_EXPORTER_PORT, PROMETHEUS_PORT, ALERTMANAGER_PORT, DASHBOARD_PORT = 9100, 9090, 9093, 3000
CLUSTER_ADMIN_PORT = 9180  # each test cluster's fault admin, on its first node's address
# The sandbox scrapes every 5 s (ZDM's default is 15 s) so dashboards fill within its phases.
MONITORING_VARS = ["-e", "prometheus_scrape_interval=5s", "-e", "prometheus_evaluation_interval=5s",
                   "-e", "prometheus_scrape_timeout=4s"]
PHASE_WINDOW_S = float(os.environ.get("ZDM_SANDBOX_WINDOW", "8"))
HISTORY = os.path.join(REPO, "tests", "data", "history.py")
HISTORY_ROWS = int(os.environ.get("ZDM_SANDBOX_HISTORY_ROWS", "10000"))
DATA_KEYSPACE = "zdm_sandbox"  # the application's keyspace: its table and the historical one
# Like the usual targets of a ZDM migration (Astra DB, Aiven for Apache Cassandra): authentication
# on both clusters, TLS to target. The application authenticates with target's credentials (ZDM's
# rule when both clusters want them); the proxies log in to origin with its own.
ORIGIN_CREDS = ("zdm_origin", "origin-secret")
TARGET_CREDS = ("zdm_target", "target-secret")
REGISTRY = os.environ.get("ZDM_SANDBOX_REGISTRY", "/tmp/zdm-sandboxes")

# Set by configure() from the command line (or ZDM_SANDBOX_NET / _DIR / _INVENTORY).
NET = SB = INVENTORY = KNOWN_HOSTS = APP_DIR = HISTORY_DIR = DASHBOARD = None
PROXIES, MONITORING, ORIGIN, TARGET = [], [], [], []


def configure(net, sb_dir, inventory):
    """Sets the address plan, state directory and inventory path every command uses."""
    global NET, SB, INVENTORY, KNOWN_HOSTS, APP_DIR, HISTORY_DIR, DASHBOARD, PROXIES, MONITORING, ORIGIN, TARGET
    parts = net.split(".")
    if len(parts) != 2 or parts[0] != "127" or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise SystemExit(f"sandbox: --net must be a loopback /16 such as 127.0 or 127.10 (got {net!r})")
    NET = net
    SB = os.path.abspath(sb_dir)
    INVENTORY = os.path.abspath(inventory)
    KNOWN_HOSTS = os.path.join(SB, "ssh", "known_hosts")
    APP_DIR = os.path.join(SB, "app")
    HISTORY_DIR = os.path.join(SB, "history")
    PROXIES = [(f"proxy{i}", f"{net}.1.{i}") for i in (1, 2, 3)]
    MONITORING = [("monitoring", f"{net}.1.10")]
    ORIGIN = [f"{net}.2.{i}" for i in (1, 2, 3)]
    TARGET = [f"{net}.3.{i}" for i in (1, 2, 3)]
    DASHBOARD = f"{net}.0.1"


def plan_ports():
    """Every (address, port, what) the plan serves on."""
    ports = [(ip, SSH_PORT, f"sshd of {n}") for n, ip in PROXIES + MONITORING]
    ports += [(ip, CQL_PORT, f"zdm-proxy of {n}") for n, ip in PROXIES]
    ports += [(ip, METRICS_PORT, f"zdm-proxy metrics of {n}") for n, ip in PROXIES]
    ports += [(ip, CQL_PORT, "origin node") for ip in ORIGIN]
    ports += [(ip, CQL_PORT, "target node") for ip in TARGET]
    ports += [(ip, NODE_EXPORTER_PORT, f"node exporter of {n}") for n, ip in PROXIES]
    ports += [(ip, PROMETHEUS_PORT, "Prometheus") for _, ip in MONITORING]
    ports += [(ip, ALERTMANAGER_PORT, "Alertmanager") for _, ip in MONITORING]
    ports += [(DASHBOARD, DASHBOARD_PORT, "dashboard page")]
    ports += [(nodes[0], CLUSTER_ADMIN_PORT, f"{name} fault admin") for name, nodes in (("origin", ORIGIN), ("target", TARGET))]
    return ports


failures = []


def say(msg=""):
    print(msg, flush=True)


def check(ok, what):
    say(f"  [{'ok' if ok else 'FAIL'}] {what}")
    if not ok:
        failures.append(what)
    return ok


def pid_alive(pid):
    """True if `pid` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def start(name, argv, log):
    """Starts a background process in its own session; records its pid in SB/pids/<name>."""
    os.makedirs(os.path.join(SB, "pids"), exist_ok=True)
    with open(log, "ab") as out:
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    with open(os.path.join(SB, "pids", name), "w") as f:
        f.write(str(p.pid))
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


def run(argv, **kw):
    return subprocess.run(argv, text=True, **kw)


def deploy_cmd(verb, *extra):
    return [DEPLOY, verb, "-i", INVENTORY, "--known-hosts", KNOWN_HOSTS, *extra]


def metrics(ip):
    with urllib.request.urlopen(f"http://{ip}:{METRICS_PORT}/metrics", timeout=5) as r:
        return r.read().decode()


def read_counts():
    """Sums over the proxies: reads sent to origin / target as primary, and async mirrored reads."""
    totals = {"reads_origin": 0.0, "reads_target": 0.0, "async_reads": 0.0, "writes": 0.0}
    for _, ip in PROXIES:
        for line in metrics(ip).splitlines():
            if line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            if name.startswith("zdm_proxy_request_duration_seconds_count"):
                for t in ("reads_origin", "reads_target", "writes"):
                    if f'type="{t}"' in name:
                        totals[t] += float(value)
            elif name.startswith("zdm_async_request_duration_seconds_count"):
                totals["async_reads"] += float(value)
    return totals


def app_status():
    try:
        with open(os.path.join(APP_DIR, "status.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def deploy_status():
    r = run([DEPLOY, "status", "-i", INVENTORY, "--known-hosts", KNOWN_HOSTS, "--json"],
            capture_output=True)
    try:
        return json.loads(r.stdout)
    except ValueError:
        say(r.stdout + r.stderr)
        return []


def check_status(previous_checksums, expect):
    """`zdm-deploy status` after a deploy or rolling update: every proxy running and ready, and
    the checksum it reports is that of a configuration with the phase's settings (the sandbox
    hosts share this machine's filesystem, so the rendered file can be read back here)."""
    hosts = deploy_status()
    sums = {h.get("host"): h.get("config_sha256") for h in hosts}
    check(len(hosts) == len(PROXIES) and all(h.get("running") for h in hosts),
          f"status: zdm-proxy running on all {len(PROXIES)} hosts")
    check(all(h.get("readiness_status") == 200 for h in hosts), "status: /health/readiness 200 on every host")
    settings_ok = True
    for name, _ in PROXIES:
        path = os.path.join(SB, "hosts", name, "home", "current", "zdm-proxy.yml")
        try:
            with open(path, "rb") as f:
                content = f.read()
        except OSError:
            settings_ok = False
            continue
        text = content.decode()
        settings_ok &= hashlib.sha256(content).hexdigest() == sums.get(name)
        settings_ok &= all(f"\n{k}: {v}\n" in text for k, v in expect.items())
    check(settings_ok, "status: each host reports the checksum of its config with "
          + ", ".join(f"{k}: {v}" for k, v in expect.items()))
    if previous_checksums is not None:
        check(all(sums[h] != previous_checksums.get(h) for h in sums),
              "status: every host runs the new configuration (checksum changed)")
    return sums


def phase_window(name, expect):
    """Observes the proxies' read metrics for a while and checks where reads went."""
    before, app_before = read_counts(), app_status()
    time.sleep(PHASE_WINDOW_S)
    after, app_after = read_counts(), app_status()
    d = {k: after[k] - before[k] for k in after}
    ok_delta = app_after.get("reads_ok", 0) - app_before.get("reads_ok", 0)
    say(f"  {name}: in {PHASE_WINDOW_S:.0f} s the app did {ok_delta} reads; proxies counted "
        f"reads_origin +{d['reads_origin']:.0f}, reads_target +{d['reads_target']:.0f}, "
        f"async (mirrored) reads +{d['async_reads']:.0f}, writes +{d['writes']:.0f}")
    if expect == "origin":
        check(d["reads_origin"] > 0 and d["reads_target"] == 0 and d["async_reads"] == 0,
              "reads went to ORIGIN only")
    elif expect == "origin+async":
        check(d["reads_origin"] > 0 and d["reads_target"] == 0 and d["async_reads"] > 0,
              "reads went to ORIGIN and were mirrored to TARGET asynchronously")
    elif expect == "target":
        # System-keyspace reads (driver schema refreshes) still go to origin by design.
        check(d["reads_target"] > 0 and d["reads_origin"] <= 0.1 * d["reads_target"] and d["async_reads"] == 0,
              "reads went to TARGET (origin sees only system-keyspace reads)")
    check(d["writes"] > 0, "writes went to both clusters")


def write_inventory(user, key):
    def line(name, ip):
        home = os.path.join(SB, "hosts", name, "home")
        monitoring = os.path.join(SB, "hosts", name, "monitoring")
        return (f"{name} ansible_host={ip} ansible_port={SSH_PORT} ansible_user={user} "
                f"ansible_ssh_private_key_file={key} zdm_proxy_home_dir={home} "
                f"monitoring_home_dir={monitoring}")
    text = ["# Written by scripts/sandbox up; removed by scripts/sandbox down.", "[proxies]"]
    text += [line(n, ip) for n, ip in PROXIES]
    text += ["", "[monitoring]"] + [line(n, ip) for n, ip in MONITORING]
    text += ["", "[proxies:vars]",
             "origin_contact_points=" + ",".join(ORIGIN), f"origin_port={CQL_PORT}",
             f"origin_username={ORIGIN_CREDS[0]}", f"origin_password={ORIGIN_CREDS[1]}",
             "target_contact_points=" + ",".join(TARGET), f"target_port={CQL_PORT}",
             f"target_username={TARGET_CREDS[0]}", f"target_password={TARGET_CREDS[1]}",
             f"target_tls_user_dir_path={os.path.join(SB, 'pki')}", "target_tls_server_ca_filename=ca.pem", ""]
    os.makedirs(os.path.dirname(INVENTORY), exist_ok=True)
    with open(INVENTORY, "w") as f:
        f.write("\n".join(text))


def make_pki():
    """A CA and target's node certificate (IP SANs of every target node), made once per state
    directory with the openssl CLI; returns the directory."""
    pki = os.path.join(SB, "pki")
    if not os.path.exists(os.path.join(pki, "target.pem")):
        sys.path.insert(0, os.path.join(REPO, "tests", "drivers"))
        from certs import Pki
        p = Pki(pki)
        p.ca("ca")
        p.cert("target", "ca", ips=TARGET)
    return pki


def direct_access(cluster):
    """verify_rows.py / app.py flags to reach `cluster` directly (credentials, TLS)."""
    if cluster == "origin":
        return ["--username", ORIGIN_CREDS[0], "--password", ORIGIN_CREDS[1]]
    return ["--username", TARGET_CREDS[0], "--password", TARGET_CREDS[1],
            "--tls-ca", os.path.join(SB, "pki", "ca.pem")]


def start_hosts():
    """One sshd per host on its own loopback address, its own host key and base directory."""
    user = getpass.getuser()
    ssh_dir = os.path.join(SB, "ssh")
    os.makedirs(ssh_dir, exist_ok=True)
    key = os.path.join(ssh_dir, "id_ed25519")
    if not os.path.exists(key):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "zdm-sandbox", "-f", key], check=True)
    shutil.copy(key + ".pub", os.path.join(ssh_dir, "authorized_keys"))
    os.chmod(os.path.join(ssh_dir, "authorized_keys"), 0o644)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)
    known = []
    for name, ip in PROXIES + MONITORING:
        hdir = os.path.join(SB, "hosts", name)
        os.makedirs(os.path.join(hdir, "home"), exist_ok=True)
        hostkey = os.path.join(hdir, "ssh_host_ed25519_key")
        if not os.path.exists(hostkey):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostkey], check=True)
        conf = os.path.join(hdir, "sshd_config")
        # SetEnv SHLVL=1: bash skips ~/.bashrc for the commands sshd runs, as on a stock Debian
        # host (whose .bashrc returns at once when not interactive), whatever this machine's is.
        with open(conf, "w") as f:
            f.write(f"""Port {SSH_PORT}
ListenAddress {ip}
HostKey {hostkey}
AuthorizedKeysFile {os.path.join(ssh_dir, 'authorized_keys')}
PidFile {os.path.join(hdir, 'sshd.pid')}
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
        start(f"sshd-{name}", ["/usr/sbin/sshd", "-D", "-e", "-f", conf], os.path.join(hdir, "sshd.log"))
        with open(hostkey + ".pub") as f:
            known.append(f"[{ip}]:{SSH_PORT} " + " ".join(f.read().split()[:2]))
    with open(KNOWN_HOSTS, "w") as f:
        f.write("\n".join(known) + "\n")
    for name, ip in PROXIES + MONITORING:
        if not wait_port(ip, SSH_PORT, 15):
            raise SystemExit(f"sandbox: sshd for {name} did not start on {ip}:{SSH_PORT} "
                             f"(see {os.path.join(SB, 'hosts', name, 'sshd.log')})")
    return user, key


def deploy_monitoring():
    """Prometheus, Alertmanager and the node exporters through zdm-deploy, then the dashboard page."""
    say("\n== Monitoring: Prometheus, Alertmanager, node exporters; the dashboard page ==")
    say(f"$ zdm-deploy deploy-monitoring -i {rel(INVENTORY)} {' '.join(MONITORING_VARS)}")
    r = run([DEPLOY, "deploy-monitoring", "-i", INVENTORY, "--known-hosts", KNOWN_HOSTS, *MONITORING_VARS],
            capture_output=True)
    with open(os.path.join(SB, "deploy.log"), "a") as f:
        f.write(r.stdout + r.stderr)
    for l in r.stdout.splitlines():
        if " : ok=" in l:
            say("  " + l.strip())
    if not check(r.returncode == 0, f"deploy-monitoring finished (exit {r.returncode})"):
        say(r.stdout[-3000:] + r.stderr[-3000:])
        return False
    start("dashboard", [DEPLOY, "dashboard", "-i", INVENTORY, "--listen", f"{DASHBOARD}:{DASHBOARD_PORT}",
                        *MONITORING_VARS], os.path.join(SB, "logs", "dashboard.log"))
    return check(wait_port(DASHBOARD, DASHBOARD_PORT, 15),
                 f"dashboard page on http://{DASHBOARD}:{DASHBOARD_PORT}/ (see {rel(SB)}/logs/dashboard.log)")


def rolling_update(title, extra):
    say(f"\n== {title} ==")
    say(f"$ zdm-deploy rolling-update -i {rel(INVENTORY)} {' '.join(extra)}")
    t0, errors_before = time.monotonic(), app_errors_now()
    r = run(deploy_cmd("rolling-update", *extra), capture_output=True)
    took = time.monotonic() - t0
    with open(os.path.join(SB, "deploy.log"), "a") as f:
        f.write(r.stdout + r.stderr)
    recap = [l for l in r.stdout.splitlines() if " : ok=" in l]
    for l in recap:
        say("  " + l.strip())
    # The hand-over (docs/rolling-updates.md): no client error at any pause.
    say(f"  took {took:.1f} s; the application saw {app_errors_now() - errors_before} errors during it")
    return check(r.returncode == 0, f"rolling update finished (exit {r.returncode})")


def app_errors_now():
    st = app_status()
    return st.get("write_errors", 0) + st.get("read_errors", 0) + st.get("read_mismatches", 0)


def load_history():
    """Before the proxies: the historical rows on origin, the same schema (empty) on target."""
    say("\n== Historical data: what the application wrote to origin before the migration ==")
    shutil.rmtree(HISTORY_DIR, ignore_errors=True)
    os.makedirs(HISTORY_DIR)
    t = time.monotonic()
    for name, nodes, extra in (("origin", ORIGIN, ["--rows", str(HISTORY_ROWS)]), ("target", TARGET, ["--schema-only"])):
        r = run(["/usr/bin/python3", HISTORY, "load", "--contact-points", ",".join(nodes), "--port", str(CQL_PORT),
                 "--out", HISTORY_DIR, *extra, *direct_access(name)], capture_output=True, timeout=300)
        if not check(r.returncode == 0, f"history.py load on {name} (exit {r.returncode})"):
            say(r.stdout[-3000:] + r.stderr[-3000:])
            return False
    say(f"  origin: {HISTORY_ROWS} rows in {DATA_KEYSPACE}.accounts written 30 days ago (a third with a note "
        f"that expires in 30 days), in {time.monotonic() - t:.0f} s; target: the same schema, no rows")
    return True


def stop_recorded(name, stop_file):
    """Asks a process `up` started to stop (its stop file) and waits for it; True once it ended."""
    open(stop_file, "w").close()
    pid = int(open(os.path.join(SB, "pids", name)).read())
    deadline = time.monotonic() + 30
    while pid_alive(pid) and time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    if not pid_alive(pid):
        os.remove(os.path.join(SB, "pids", name))  # it ended: no longer part of the sandbox
        return True
    return False


def migrate_data():
    """Phase 2: `zdm-deploy migrate-data` on the monitoring host (zdm-data backfill, then
    validate) while the application and the history updater write through the proxies. Returns
    {"rows", "differences"} from zdm-data's own summary lines (-1 when missing)."""
    say("\n== Phase 2: migrate and validate the existing data (zdm-data on the monitoring host, "
        "while the application dual-writes) ==")
    # --writetime: validate also compares each cell's writetime (the backfill kept origin's).
    extra = ["-e", f"zdm_data_keyspace={DATA_KEYSPACE}", "-e", "zdm_data_validate_args=--writetime"]
    say(f"$ zdm-deploy migrate-data -i {rel(INVENTORY)} {' '.join(extra)}")
    r = run([DEPLOY, "migrate-data", "-i", INVENTORY, "--known-hosts", KNOWN_HOSTS, *extra], capture_output=True)
    with open(os.path.join(SB, "deploy.log"), "a") as f:
        f.write(r.stdout + r.stderr)
    # zdm-data's output reaches the play's output as its debug tasks' message lists.
    text = r.stdout.replace('\\"', '"')
    found = re.findall(r'"((?:zdm-data (?:backfill|validate):|backfill:|validate:|[\w.]+: [\d,]+ rows on origin)[^"]*)"', text)
    for l in found:
        say("  " + l)
    for l in r.stdout.splitlines():
        if " : ok=" in l:
            say("  " + l.strip())
    res = {"rows": -1, "differences": -1}
    m = re.search(r'backfill: ([\d,]+) rows \(([\d.]+) MB\) in ([\d.]+) s: ([\d,]+) rows/s, ([\d.]+) MB/s', text)
    if m:
        res["rows"] = int(m.group(1).replace(",", ""))
    v = re.search(r'validate: ([\d,]+) rows compared in [\d.]+ s \(([\d,]+) rows/s, [\d.]+ MB/s from origin\): '
                  r'(\d+) differences .*?; (\d+) remaining', text)
    if v:
        res["differences"] = int(v.group(3))
    ok = check(r.returncode == 0, f"migrate-data finished (exit {r.returncode})")
    if not ok:
        say(r.stdout[-3000:] + r.stderr[-3000:])
    check(m is not None and res["rows"] >= HISTORY_ROWS,
          f"backfill copied every historical row ({res['rows']} rows, {HISTORY_ROWS} historical)")
    check(v is not None and res["differences"] == 0 and int(v.group(4)) == 0,
          f"validate: origin and target agree ({res['differences']} differences)")
    return res


def verify_history(name, nodes):
    """history.py verify read directly from one cluster: every historical row, each with the
    balance of its last acknowledged update."""
    r = run(["/usr/bin/python3", HISTORY, "verify", "--contact-points", ",".join(nodes), "--port", str(CQL_PORT),
             "--out", HISTORY_DIR, *direct_access(name)], capture_output=True, timeout=300)
    try:
        res = json.loads(r.stdout)
    except ValueError:
        res = {"rows": -1, "checked": -1, "mismatched": -1, "updates": -1}
        say(r.stdout + r.stderr)
    say(f"  {name} (read directly from {nodes[0]}): {res['rows']} historical rows, {res['updates']} later updates "
        f"through the proxies, {res['mismatched']} rows not as last written")
    check(r.returncode == 0 and res["rows"] == HISTORY_ROWS and res["mismatched"] == 0,
          f"every historical row is on {name} with its last update")
    return res


# The binaries the phases run (scripts/sandbox builds exactly these targets).
NEEDED_BINARIES = {"zdm-proxy-dist": os.path.join(BUILD, "dist", "zdm-proxy"), "zdm-testcluster": TESTCLUSTER,
                   "zdm-deploy": DEPLOY, "zdm-data": os.path.join(BUILD, "data", "zdm-data")}


def up():
    clash = collision()
    if clash:
        say(clash)
        return 3
    missing = [t for t, path in NEEDED_BINARIES.items() if not os.access(path, os.X_OK)]
    if missing:
        say(f"sandbox: not built: {', '.join(missing)} (scripts/build {' '.join(missing)})")
        return 2
    # Nothing of an earlier run is alive: clear its state, its monitoring data included (an
    # earlier run's samples and alerts are not this sandbox's).
    shutil.rmtree(os.path.join(SB, "pids"), ignore_errors=True)
    for name, _ in PROXIES + MONITORING:
        shutil.rmtree(os.path.join(SB, "hosts", name, "monitoring"), ignore_errors=True)
        shutil.rmtree(os.path.join(SB, "hosts", name, "home", "zdm-data"), ignore_errors=True)  # its checkpoint
    os.makedirs(os.path.join(SB, "logs"), exist_ok=True)
    register()
    t0 = time.monotonic()
    say("== Clusters ==")
    pki = make_pki()
    common = ["--port", str(CQL_PORT), "--prepared-per-node"]
    start("origin", [TESTCLUSTER, "--cluster-name", "origin", "--nodes", ",".join(ORIGIN), *common,
                     "--auth", ":".join(ORIGIN_CREDS), "--admin", f"{ORIGIN[0]}:{CLUSTER_ADMIN_PORT}"],
          os.path.join(SB, "logs", "origin.log"))
    start("target", [TESTCLUSTER, "--cluster-name", "target", "--nodes", ",".join(TARGET), *common,
                     "--auth", ":".join(TARGET_CREDS), "--tls-cert", os.path.join(pki, "target.pem"),
                     "--tls-key", os.path.join(pki, "target.key"), "--admin", f"{TARGET[0]}:{CLUSTER_ADMIN_PORT}"],
          os.path.join(SB, "logs", "target.log"))
    for ip in ORIGIN + TARGET:
        if not wait_port(ip, CQL_PORT):
            raise SystemExit(f"sandbox: test cluster node {ip}:{CQL_PORT} did not start (see {SB}/logs)")
    say(f"  origin nodes {', '.join(ORIGIN)}: PasswordAuthenticator (user {ORIGIN_CREDS[0]})")
    say(f"  target nodes {', '.join(TARGET)}: PasswordAuthenticator (user {TARGET_CREDS[0]}), TLS only "
        f"(CA {rel(os.path.join(pki, 'ca.pem'))})")
    say(f"  zdm-testcluster, CQL {CQL_PORT}, protocol v3-v5, LZ4/Snappy, each node with its own prepared statements")
    if not load_history():
        return finish()

    say("\n== Hosts ==")
    user, key = start_hosts()
    write_inventory(user, key)
    say(f"  sshd on {', '.join(ip for _, ip in PROXIES + MONITORING)} port {SSH_PORT}; inventory {rel(INVENTORY)}")

    say("\n== Phase 1: deploy the proxies (primary ORIGIN, read mode PRIMARY_ONLY) ==")
    say(f"$ zdm-deploy deploy -i {rel(INVENTORY)}")
    r = run(deploy_cmd("deploy"), capture_output=True)
    with open(os.path.join(SB, "deploy.log"), "a") as f:
        f.write(r.stdout + r.stderr)
    for l in r.stdout.splitlines():
        if " : ok=" in l:
            say("  " + l.strip())
    if not check(r.returncode == 0, f"deploy finished (exit {r.returncode})"):
        say(r.stdout[-3000:] + r.stderr[-3000:])
        return finish()
    sums = check_status(None, {"primary_cluster": "ORIGIN", "read_mode": "PRIMARY_ONLY"})

    # After the proxies (as ZDM's automation orders it): nothing to alert on while they start.
    if not deploy_monitoring():
        return finish()

    say("\n== Phase 1: the application writes through the proxies (python-driver, all three as contact points) ==")
    say("  every write lands on both clusters; the historical rows are on origin only until phase 2, and the "
        "application updates some of them")
    shutil.rmtree(APP_DIR, ignore_errors=True)
    os.makedirs(APP_DIR)
    start("app", ["/usr/bin/python3", os.path.join(REPO, "tests", "drivers", "app.py"),
                  "--contact-points", ",".join(ip for _, ip in PROXIES), "--port", str(CQL_PORT),
                  "--rate", os.environ.get("ZDM_SANDBOX_RATE", "40"), "--out", APP_DIR,
                  "--username", TARGET_CREDS[0], "--password", TARGET_CREDS[1]],
          os.path.join(APP_DIR, "app.log"))
    deadline = time.monotonic() + 60
    while app_status().get("acknowledged_writes", 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    st = app_status()
    if not check(st.get("acknowledged_writes", 0) > 0, "application connected and writing"):
        say(open(os.path.join(APP_DIR, "app.log")).read()[-3000:])
        return finish()
    say(f"  protocol v{st.get('protocol_version')}, writing and reading at a steady rate")
    start("history", ["/usr/bin/python3", HISTORY, "update", "--contact-points", ",".join(ip for _, ip in PROXIES),
                      "--port", str(CQL_PORT), "--out", HISTORY_DIR, "--rate", "20",
                      "--username", TARGET_CREDS[0], "--password", TARGET_CREDS[1]],
          os.path.join(HISTORY_DIR, "update.log"))
    phase_window("PRIMARY_ONLY", "origin")
    data = migrate_data()
    # The updater's part is done (its updates raced the backfill); the later phases carry the
    # application's traffic alone, as before.
    stop_recorded("history", os.path.join(HISTORY_DIR, "stop-history"))
    h = json.load(open(os.path.join(HISTORY_DIR, "history-status.json"))) if os.path.exists(
        os.path.join(HISTORY_DIR, "history-status.json")) else {}
    check(h.get("updates", 0) > 0 and h.get("errors", 1) == 0,
          f"historical rows updated through the proxies meanwhile ({h.get('updates', 0)} updates, "
          f"{h.get('errors', '?')} errors)")

    # No pause between the proxies here (the hand-over makes it safe); ZDM's default (10 s) at
    # phase 4.
    if rolling_update("Phase 3: read mirroring (read_mode DUAL_ASYNC_ON_SECONDARY), no pause between proxies",
                      ["-e", "read_mode=DUAL_ASYNC_ON_SECONDARY", "-e", "pause_between_restarts_in_seconds=0"]):
        sums = check_status(sums, {"primary_cluster": "ORIGIN", "read_mode": "DUAL_ASYNC_ON_SECONDARY"})
        phase_window("DUAL_ASYNC_ON_SECONDARY", "origin+async")
    st = app_status()
    say(f"  app so far: {st.get('acknowledged_writes')} writes acknowledged, "
        f"{st.get('write_errors', 0) + st.get('read_errors', 0) + st.get('read_mismatches', 0)} errors")

    if rolling_update("Phase 4: cutover reads (primary_cluster TARGET, read_mode PRIMARY_ONLY), the default pause (10 s)",
                      ["-e", "primary_cluster=TARGET", "-e", "read_mode=PRIMARY_ONLY"]):
        check_status(sums, {"primary_cluster": "TARGET", "read_mode": "PRIMARY_ONLY"})
        phase_window("primary TARGET", "target")

    say("\n== Phase 5: target holds everything (read directly, as the application will once it "
        "connects to target without the proxies) ==")
    stop_recorded("app", os.path.join(APP_DIR, "stop"))
    with open(os.path.join(APP_DIR, "summary.json")) as f:
        summary = json.load(f)
    app_errors = summary["write_errors"] + summary["read_errors"] + summary["read_mismatches"]
    say(f"  application: {summary['acknowledged_writes']} writes acknowledged, {summary['reads_ok']} reads "
        f"verified, {summary['write_errors']} write errors, {summary['read_errors']} read errors, "
        f"{summary['read_mismatches']} read mismatches")
    for e in summary.get("errors", [])[:5]:
        say(f"    {e}")
    check(app_errors == 0, "application saw no errors")
    rows = {}
    for name, nodes in (("origin", ORIGIN), ("target", TARGET)):
        r = run(["/usr/bin/python3", os.path.join(REPO, "tests", "drivers", "verify_rows.py"),
                 "--contact-points", ",".join(nodes), "--port", str(CQL_PORT),
                 "--acked", os.path.join(APP_DIR, "acked.tsv"), *direct_access(name)], capture_output=True)
        try:
            res = json.loads(r.stdout)
        except ValueError:
            res = {"rows": -1, "missing": -1, "mismatched": -1}
            say(r.stdout + r.stderr)
        rows[name] = res["rows"]
        say(f"  {name} (read directly from {nodes[0]}): {res['rows']} rows, "
            f"{res['missing']} acknowledged writes missing, {res['mismatched']} mismatched")
        check(res["missing"] == 0 and res["mismatched"] == 0, f"every acknowledged write is on {name}")
    history = {name: verify_history(name, nodes) for name, nodes in (("target", TARGET), ("origin", ORIGIN))}
    say(f"\n  took {time.monotonic() - t0:.0f} s. Everything is still running:")
    say(f"    logs:    build/deployer/zdm-deploy logs -i {rel(INVENTORY)} [-f] [--limit proxy1]"
        f" --known-hosts {rel(KNOWN_HOSTS)}")
    say(f"    status:  scripts/sandbox status{plan_flags()}   (processes, ports, then zdm-deploy status)")
    say(f"    metrics: curl http://{PROXIES[0][1]}:{METRICS_PORT}/metrics   readiness: /health/readiness")
    say(f"    dashboards:   http://{DASHBOARD}:{DASHBOARD_PORT}/   (ZDM Proxy, Migration, Proxy hosts)")
    say(f"    Prometheus:   http://{MONITORING[0][1]}:{PROMETHEUS_PORT}/   Alertmanager: "
        f"http://{MONITORING[0][1]}:{ALERTMANAGER_PORT}/")
    say(f"    faults:  curl -X POST http://{TARGET[0]}:{CLUSTER_ADMIN_PORT}/nodes/{TARGET[1]}/stop   (then .../start; "
        f"GET /nodes; origin's admin on {ORIGIN[0]})")
    say(f"    cqlsh-style access: /usr/bin/python3 with cassandra.cluster.Cluster(['{PROXIES[0][1]}'])")
    say(f"    stop:    scripts/sandbox down{plan_flags()}")
    return finish(summary["acknowledged_writes"], rows.get("origin", -1), rows.get("target", -1), app_errors,
                  history["target"]["rows"], data["rows"], data["differences"])


def finish(acked=0, origin_rows=-1, target_rows=-1, app_errors=-1, history_rows=-1, backfill_rows=-1,
           differences=-1):
    if failures:
        say(f"\nsandbox: {len(failures)} check(s) failed: " + "; ".join(failures))
    say(f"TALLY acknowledged_writes={acked} origin_rows={origin_rows} target_rows={target_rows} "
        f"app_errors={app_errors} history_rows={history_rows} backfill_rows={backfill_rows} "
        f"validate_differences={differences}")
    return 1 if failures else 0


def rel(path):
    """`path` relative to the repository when it is inside it (for commands shown to the user)."""
    r = os.path.relpath(path, REPO)
    return path if r.startswith("..") else r


def plan_flags():
    """The flags that select this sandbox again ("" for the user's default one)."""
    flags = ""
    if NET != DEFAULTS["net"]:
        flags += f" --net {NET}"
    if SB != os.path.abspath(DEFAULTS["dir"]):
        flags += f" --dir {rel(SB)}"
    if INVENTORY != os.path.abspath(DEFAULTS["inventory"]):
        flags += f" --inventory {rel(INVENTORY)}"
    return flags


def registry_file(net=None):
    return os.path.join(REGISTRY, f"{net or NET}.json")


def register():
    """Records this sandbox as the owner of its address plan (read by collision())."""
    os.makedirs(REGISTRY, exist_ok=True)
    with open(registry_file(), "w") as f:
        json.dump({"net": NET, "dir": SB, "inventory": INVENTORY, "repo": REPO,
                   "started_by_pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}, f)


def recorded_processes(sb_dir):
    """[(name, pid, alive)] of a sandbox directory: what `up` started, the proxies and the
    monitoring programs with their supervisors (their pid files on each host)."""
    procs = []
    pids_dir = os.path.join(sb_dir, "pids")
    if os.path.isdir(pids_dir):
        for name in sorted(os.listdir(pids_dir)):
            try:
                pid = int(open(os.path.join(pids_dir, name)).read().strip())
            except (OSError, ValueError):
                continue
            procs.append((name, pid, pid_alive(pid)))
    hosts_dir = os.path.join(sb_dir, "hosts")
    if os.path.isdir(hosts_dir):
        for host in sorted(os.listdir(hosts_dir)):
            # The proxy runs under zdm-supervise (zdm_service_manager process): the supervisor's
            # pid file, and the proxy's (.child).
            pidfile = os.path.join(hosts_dir, host, "home", "run", "zdm-proxy.pid")
            for suffix, label in (("", f"zdm-supervise(zdm-proxy)@{host}"), (".child", f"zdm-proxy@{host}")):
                try:
                    pid = int(open(pidfile + suffix).read().strip())
                    procs.append((label, pid, pid_alive(pid)))
                except (OSError, ValueError):
                    pass
            # The monitoring stack: each zdm-supervise and the program it runs (.pid.child).
            run_dir = os.path.join(hosts_dir, host, "monitoring", "run")
            for name in sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else []:
                service, _, kind = name.partition(".pid")
                try:
                    pid = int(open(os.path.join(run_dir, name)).read().strip())
                except (OSError, ValueError):
                    continue
                label = f"{service}@{host}" if kind == ".child" else f"zdm-supervise({service})@{host}"
                procs.append((label, pid, pid_alive(pid)))
    return procs


def port_open(host, port, timeout=0.3):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_holder(host, port):
    """'pid N (command line)' of the process listening on host:port, if `ss` can tell."""
    r = run(["ss", "-Hltnp", f"src {host}:{port}"], capture_output=True)
    for part in r.stdout.split("pid=")[1:]:
        pid = part.split(",")[0]
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()
        except OSError:
            cmd = "?"
        return f"pid {pid} ({cmd[:100]})"
    return "a process this user cannot see"


def collision():
    """One line saying why `up` must not start here, or None."""
    alive = [(n, p) for n, p, a in recorded_processes(SB) if a]
    if alive:
        return (f"sandbox: already running in {rel(SB)} ({len(alive)} processes: "
                + ", ".join(f"{n}={p}" for n, p in alive) + f"); stop it with: scripts/sandbox down{plan_flags()}")
    try:
        other = json.load(open(registry_file()))
    except (OSError, ValueError):
        other = None
    if other and other.get("dir") != SB and any(a for _, _, a in recorded_processes(other.get("dir", ""))):
        flags = f" --net {NET}" if NET != DEFAULTS["net"] else ""
        if other["dir"] != os.path.join(other.get("repo", ""), "build", "sandbox"):
            flags += f" --dir {other['dir']}"
        return (f"sandbox: the address plan {NET}.x.x is used by the sandbox running in {other['dir']} "
                f"(started {other.get('started', '?')}); stop it with: "
                f"{os.path.join(other.get('repo', REPO), 'scripts', 'sandbox')} down{flags}")
    for ip, port, what in plan_ports():
        if port_open(ip, port):
            return (f"sandbox: {ip}:{port} (the {what}) is already in use by {port_holder(ip, port)}; "
                    f"stop it, or choose another address plan with --net")
    return None


def down(quiet=False):
    """Stops what `up` started, by recorded pid: app, proxies (via their pid files), sshd, clusters."""
    stopped = []
    procs = recorded_processes(SB)
    supervised = {n.split("(", 1)[1].replace(")", "") for n, _, _ in procs if n.startswith("zdm-supervise(")}
    for name, pid, alive in procs:
        if alive:
            if name not in supervised:  # a supervised program is stopped by its supervisor
                os.kill(pid, signal.SIGTERM)
            stopped.append((name, pid))
    shutil.rmtree(os.path.join(SB, "pids"), ignore_errors=True)
    deadline = time.monotonic() + 15
    for name, pid in stopped:
        while pid_alive(pid) and time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    if os.path.exists(INVENTORY):
        os.remove(INVENTORY)
    try:
        if json.load(open(registry_file())).get("dir") == SB:
            os.remove(registry_file())
    except (OSError, ValueError):
        pass
    if not quiet:
        say(f"sandbox: stopped {len(stopped)} processes"
            + (": " + ", ".join(f"{n} (pid {p})" for n, p in stopped) if stopped else ""))
    return 0


def status():
    """The truth about this sandbox: each recorded process by pid, each port of the plan, each
    proxy's readiness; then `zdm-deploy status` when the hosts answer. Exit 0 when everything
    runs, 1 when nothing does, 2 when only part of it does."""
    procs = recorded_processes(SB)
    ports = [(ip, port, what, port_open(ip, port)) for ip, port, what in plan_ports()]
    if not any(a for _, _, a in procs) and not any(o for *_, o in ports):
        say(f"sandbox: not running in {rel(SB)}: no recorded process is alive and no port of "
            f"{NET}.x.x answers (scripts/sandbox up{plan_flags()} starts it)")
        return 1
    say(f"sandbox in {rel(SB)}, address plan {NET}.x.x:")
    for name, pid, alive in procs:
        say(f"  process {name:<24} pid {pid:<8} {'running' if alive else 'NOT RUNNING'}")
    if not procs:
        say(f"  no processes recorded in {rel(SB)}: the ports below are served by processes "
            "started elsewhere")
    for ip, port, what, is_open in ports:
        extra = ""
        if port == METRICS_PORT and is_open:
            try:
                with urllib.request.urlopen(f"http://{ip}:{port}/health/readiness", timeout=2) as r:
                    extra = f"  readiness {r.status}"
            except urllib.error.HTTPError as e:
                extra = f"  readiness {e.code}"
            except OSError as e:
                extra = f"  readiness unknown ({e})"
        say(f"  port    {ip + ':' + str(port):<24} {'answers' if is_open else 'CLOSED':<8} {what}{extra}")
    healthy = procs and all(a for _, _, a in procs) and all(o for *_, o in ports)
    if os.path.exists(INVENTORY) and all(o for ip, port, _, o in ports if port == SSH_PORT):
        say(f"$ zdm-deploy status -i {rel(INVENTORY)}")
        sys.stdout.flush()
        run([DEPLOY, "status", "-i", INVENTORY, "--known-hosts", KNOWN_HOSTS])
    say(f"sandbox: {'running' if healthy else 'PARTLY running'}")
    return 0 if healthy else 2


DEFAULTS = {"net": "127.0", "dir": os.path.join(BUILD, "sandbox"),
            "inventory": os.path.join(REPO, "inventory", "sandbox.ini")}


def main(argv):
    ap = argparse.ArgumentParser(prog="scripts/sandbox", description="The zdm sandbox (see README).")
    ap.add_argument("command", nargs="?", default="up", choices=["up", "down", "status", "check"],
                    help="check: exit 3 with one line if `up` would collide with something running")
    ap.add_argument("--net", default=os.environ.get("ZDM_SANDBOX_NET", DEFAULTS["net"]),
                    help="loopback /16 of the address plan (default 127.0)")
    ap.add_argument("--dir", default=os.environ.get("ZDM_SANDBOX_DIR", DEFAULTS["dir"]),
                    help="state directory (default build/sandbox)")
    ap.add_argument("--inventory", default=os.environ.get("ZDM_SANDBOX_INVENTORY", DEFAULTS["inventory"]),
                    help="inventory file written by up (default inventory/sandbox.ini)")
    args = ap.parse_args(argv)
    configure(args.net, args.dir, args.inventory)
    return {"up": up, "down": down, "status": status, "check": check_free}[args.command]()


def check_free():
    clash = collision()
    if clash:
        say(clash)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
