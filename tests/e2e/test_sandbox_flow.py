#!/usr/bin/python3
"""End-to-end: the README's main job. Runs `scripts/sandbox up` (clusters, sshd hosts, deploy,
python-driver app, rolling updates PRIMARY_ONLY → DUAL_ASYNC_ON_SECONDARY with no pause between
proxies → primary TARGET with the default pause, each handed over: 0 application errors),
then checks independently of the sandbox's own checks:
- exit code 0 and every phase check line is [ok] (routing from the proxies' metrics, config
  checksums from `zdm-deploy status` after each rolling update);
- the TALLY line: app_errors=0, acknowledged writes > 0, both clusters hold at least them;
- every acknowledged write read directly from origin and from target (verify_rows.py);
- re-running the last rolling update changes nothing (recap changed=0) and restarts nothing
  (pids, releases and config checksums unchanged);
- phase 2, the existing data: the sandbox printed zdm-data backfill's figures (rows, MB, rows/s,
  MB/s) and validate's (rows compared, rows/s, 0 differences, 0 remaining), and the TALLY says
  so; then every historical row, read directly from target and from origin, is the same on both:
  values, each cell's writetime (the owner cells' month-old ones kept by the backfill, the
  balance cells' newer ones from the dual writes that updated them meanwhile) and the note
  cells' remaining TTL (same expiry on both, within 5 s);
- a rolling update whose config cannot become ready (origin contact point with no node) fails on
  the first host, which is switched back to its previous release; later hosts are not touched;
  every host then runs its previous release and config and is ready, and a python-driver
  application writing through all three proxies during the failed update sees no error and
  every write it was acknowledged is on both clusters;
- the fleet commands (fleet_commands(), below): a new binary deployed to the running fleet and
  a rolling-restart, both at pause 0 under traffic with 0 errors, a SIGKILLed proxy back and
  ready, stop/start, Ctrl-C during a rolling-restart, an SSH connection killed mid-activation, rollback (and --to), the lock, --check --diff, a bad value on proxy2 refused
  by --check-config before anything stops, --list-hosts, --version, the audit line, inventory
  and vars mistakes; at the end logs, collect-logs (no secret in the archive), teardown --yes
  and a deploy after it;
- `scripts/sandbox status` lists exactly the 9 processes found by pid (6 sshd and
  cluster processes, 3 proxies), and a second `up` on the
  same address plan is refused in one line (exit 3) without disturbing the running one;
- the monitoring stack the sandbox deployed (monitoring_phase(), below): re-running
  deploy-monitoring changes nothing and restarts nothing; a configuration change reloads
  Prometheus (same process), a command-line change restarts Prometheus only; then, in
  DUAL_ASYNC_ON_SECONDARY under the python-driver application's traffic, every query of every
  panel of the three shipped dashboards and every query of the migration guides (a lab's and ZDM's)
  returns data from the real Prometheus, except the queries empty by design while nothing fails
  (listed: EMPTY_BY_DESIGN); the dashboard page in headless chromium draws every other panel (in
  the DOM and in the screenshot's pixels); a stopped target node (the test cluster's fault admin;
  replication factor 1, so its partitions become unavailable) lights up the failure queries and
  the ZdmWritesFailing alert reaches Alertmanager;
- `scripts/sandbox down` stops every process the sandbox started.

The test runs its sandbox on an address plan of its own (127.10.x.x), with its own state
directory and inventory, so a user's sandbox (127.0.x.x, build/sandbox, inventory/sandbox.ini)
may run at the same time. To prove it, the test listens on the user plan's ports that are free
(dummy listeners) and checks that nothing connected to them; where the user's sandbox is up, its
proxies must still answer /health/readiness 200 afterwards.
"""
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from PIL import Image  # python3-pil

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import sandbox  # noqa: E402  (the sandbox's credentials and direct-access flags)
NET = os.environ.get("ZDM_E2E_NET", "127.10")  # this test's own address plan (the user's sandbox uses 127.0)
SB = os.environ.get("ZDM_E2E_DIR", os.path.join(REPO, "build", "e2e-sandbox"))
INVENTORY = os.path.join(SB, "inventory.ini")
SANDBOX = ["/usr/bin/python3", os.path.join(REPO, "scripts", "sandbox.py")]
PLAN = ["--net", NET, "--dir", SB, "--inventory", INVENTORY]
DEPLOY = os.path.join(REPO, "build", "deployer", "zdm-deploy")
KNOWN_HOSTS = os.path.join(SB, "ssh", "known_hosts")
PROXY_IPS = [f"{NET}.1.{i}" for i in (1, 2, 3)]
sandbox.configure(NET, SB, INVENTORY)
ORIGIN_NODES = ",".join(f"{NET}.2.{i}" for i in (1, 2, 3))
TARGET_NODES = ",".join(f"{NET}.3.{i}" for i in (1, 2, 3))
# The user's sandbox plan (scripts/sandbox up without flags): ports the test must never touch.
USER_PLAN = [("127.0.1.1", 2222), ("127.0.1.1", 9042), ("127.0.1.1", 14001), ("127.0.2.1", 9042),
             ("127.0.3.1", 9042), ("127.0.1.10", 2222), ("127.0.1.1", 9100), ("127.0.1.10", 9090),
             ("127.0.1.10", 9093), ("127.0.0.1", 3000), ("127.0.2.1", 9180), ("127.0.3.1", 9180)]
failures = []


class DummyListeners:
    """Listens on the user plan's free ports and counts connections made to them."""

    def __init__(self):
        self.socks, self.busy, self.accepted, self.accepted_on = [], [], 0, []
        for addr in USER_PLAN:
            s = socket.socket()
            try:
                s.bind(addr)
                s.listen(16)
                s.settimeout(0.2)
                self.socks.append(s)
            except OSError:
                s.close()
                self.busy.append(addr)  # the user's sandbox (or something else) holds it
        self.stop = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop:
            for s in self.socks:
                try:
                    c, _ = s.accept()
                    self.accepted += 1
                    self.accepted_on.append(s.getsockname())
                    c.close()
                except OSError:
                    pass

    def close(self):
        self.stop = True
        self.thread.join()
        for s in self.socks:
            s.close()


def user_readiness():
    """{proxy address: HTTP status of /health/readiness} of the user's sandbox proxies that listen."""
    out = {}
    for ip in ("127.0.1.1", "127.0.1.2", "127.0.1.3"):
        try:
            with urllib.request.urlopen(f"http://{ip}:14001/health/readiness", timeout=3) as r:
                out[ip] = r.status
        except urllib.error.HTTPError as e:
            out[ip] = e.code
        except OSError:
            pass
    return out


def check(ok, what):
    print(f"[{'ok' if ok else 'FAIL'}] {what}", flush=True)
    if not ok:
        failures.append(what)


def status():
    """`zdm-deploy status --json` → {host: entry}."""
    r = subprocess.run([DEPLOY, "status", "-i", INVENTORY, "--known-hosts", KNOWN_HOSTS, "--json"],
                       capture_output=True, text=True, timeout=120)
    try:
        return {e["host"]: e for e in json.loads(r.stdout)}
    except (ValueError, KeyError, TypeError):
        print(r.stdout, r.stderr)
        return {}


def verify_on_both(acked_file, what):
    """Checks acked_file's writes on origin and on target, read directly; returns both results."""
    results = []
    for name, nodes in (("origin", ORIGIN_NODES), ("target", TARGET_NODES)):
        r = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "tests", "drivers", "verify_rows.py"),
                            "--contact-points", nodes, "--acked", acked_file, *sandbox.direct_access(name)],
                           capture_output=True, text=True, timeout=120)
        res = json.loads(r.stdout) if r.stdout.strip() else {}
        check(r.returncode == 0 and res.get("missing") == 0 and res.get("mismatched") == 0,
              f"{name}, read directly: every {what} present ({res})")
        results.append(res)
    return results


def task_results(lines, task):
    """The result lines ("ok: [host]", ...) under every TASK header that starts with `task`."""
    out, inside = [], False
    for l in lines:
        if l.startswith(("TASK [", "PLAY [", "PLAY RECAP")):
            inside = l.startswith(f"TASK [{task}")
        elif inside:
            out.append(l)
    return out


def idempotent_rerun():
    """The sandbox's last rolling update again, nothing changed: ok, not changed; no restart."""
    print("== idempotent re-run of the last rolling update ==", flush=True)
    before = status()
    r = subprocess.run([DEPLOY, "rolling-update", "-i", INVENTORY, "--known-hosts", KNOWN_HOSTS,
                        "-e", "primary_cluster=TARGET", "-e", "read_mode=PRIMARY_ONLY"],
                       capture_output=True, text=True, timeout=300)
    recap = [l for l in r.stdout.splitlines() if " : ok=" in l]
    print("\n".join(recap), r.stderr[-2000:], flush=True)
    check(r.returncode == 0 and len(recap) == 3 and all(" changed=0 " in l and " failed=0 " in l for l in recap),
          f"re-running the rolling update changes nothing (exit {r.returncode}: {recap})")
    after = status()
    check(len(after) == 3 and all(after[h].get("pid") == b.get("pid") and after[h].get("release") == b.get("release")
                                  and after[h].get("config_sha256") == b.get("config_sha256")
                                  for h, b in before.items() if h in after),
          "re-running restarts nothing (pids, releases and config checksums unchanged)")


def historical_rows():
    """Reads zdm_sandbox.accounts directly from origin and from target and compares every row:
    values, writetimes and remaining TTL (see the header)."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster
    import ssl
    loaded = int(open(os.path.join(SB, "history", "history-rows")).read())
    query = ("SELECT id, balance, writetime(balance), owner, writetime(owner), note, writetime(note), ttl(note), "
             "tags FROM zdm_sandbox.accounts")
    got = {}
    for name, nodes, creds in (("origin", ORIGIN_NODES, sandbox.ORIGIN_CREDS), ("target", TARGET_NODES, sandbox.TARGET_CREDS)):
        kw = {"auth_provider": PlainTextAuthProvider(*creds)}
        if name == "target":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(os.path.join(SB, "pki", "ca.pem"))
            kw["ssl_context"] = ctx
        cluster = Cluster(nodes.split(","), port=9042, **kw)
        got[name] = {r.id: r for r in cluster.connect().execute(query, timeout=60)}
        cluster.shutdown()
    o, t = got["origin"], got["target"]
    check(len(o) == loaded and len(t) == loaded and set(o) == set(t),
          f"historical rows read directly: {len(o)} on origin, {len(t)} on target, {loaded} loaded")
    month_ago = (time.time() - 29 * 86400) * 1e6
    same_values = [i for i in o if i in t and (o[i].balance, o[i].owner, o[i].note, o[i].tags) != (t[i].balance, t[i].owner, t[i].note, t[i].tags)]
    same_wt = [i for i in o if i in t and (o[i][2], o[i][4], o[i][6]) != (t[i][2], t[i][4], t[i][6])]
    old_owner = sum(1 for r in t.values() if r[4] < month_ago)
    updated = sum(1 for r in t.values() if r[2] > month_ago)
    with_ttl = [i for i in o if o[i].note is not None]
    ttl_off = [i for i in with_ttl if i in t and (t[i][7] is None or abs(t[i][7] - o[i][7]) > 5)]
    check(not same_values, f"target's historical rows have origin's values ({len(same_values)} differ: {same_values[:5]})")
    check(not same_wt and old_owner == loaded,
          f"target's cells have origin's writetimes: owner a month old on all {old_owner}, balance newer on the "
          f"{updated} rows updated through the proxies ({len(same_wt)} differ: {same_wt[:5]})")
    check(updated > 0, f"some historical rows were updated through the proxies during the migration ({updated})")
    check(len(with_ttl) >= loaded // 3 and not ttl_off,
          f"the {len(with_ttl)} notes with a TTL expire at the same time on target (remaining TTL within 5 s of "
          f"origin's; {len(ttl_off)} off: {ttl_off[:5]})")


def failed_rolling_update():
    print(f"== failed rolling update: origin_contact_points={NET}.2.200 (no node there) ==", flush=True)
    before = status()
    check(len(before) == 3 and all(e.get("readiness_status") == 200 for e in before.values()),
          "before: three proxies ready")
    app_dir = os.path.join(SB, "app-failed-update")
    shutil.rmtree(app_dir, ignore_errors=True)  # a stale stop file or acked.tsv from an earlier run
    os.makedirs(app_dir)
    with open(os.path.join(app_dir, "app.err"), "w") as err:
        app = subprocess.Popen(["/usr/bin/python3", os.path.join(REPO, "tests", "drivers", "app.py"),
                                "--contact-points", ",".join(PROXY_IPS), "--rate", "40",
                                "--username", sandbox.TARGET_CREDS[0], "--password", sandbox.TARGET_CREDS[1],
                                "--out", app_dir, "--max-seconds", "300"],
                               stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if json.load(open(os.path.join(app_dir, "status.json"))).get("acknowledged_writes", 0) > 0:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        r = subprocess.run([DEPLOY, "rolling-update", "-i", INVENTORY, "--known-hosts", KNOWN_HOSTS,
                            "-e", f"origin_contact_points={NET}.2.200", "-e", "readiness_retries=5",
                            "-e", "pause_between_restarts_in_seconds=1"],
                           capture_output=True, text=True, timeout=300)
        print(r.stdout[-6000:], r.stderr[-2000:], flush=True)
        time.sleep(3)  # traffic after the rollback, proxy1 included once the driver reconnects
    finally:
        open(os.path.join(app_dir, "stop"), "w").close()
        try:
            app.wait(timeout=60)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
    out = r.stdout.splitlines()
    check(r.returncode == 2, f"failed rolling update exits 2 (got {r.returncode})")
    # The configuration passes --check-config (an address is an address): the new release is
    # started on proxy1 and is not ready within readiness_retries x 1 s.
    check(any(l.startswith("failed: [proxy1] => non-zero return code 3: release ")
              and " not ready within 5s (readiness 503 " in l for l in out),
          "proxy1 failed its readiness check")
    prev = before.get("proxy1", {}).get("release", "?")
    check(any(l.startswith(f"failed: [proxy1] => rolling-update stopped on proxy1 ({PROXY_IPS[0]}): release ")
              and l.endswith(f"rolled back to {prev} (ready); hosts after it were not touched") for l in out),
          f"proxy1 rolled back to its previous release {prev}")
    check(any(l.startswith("proxy1 : ") and " failed=1 " in l and " rescued=1 " in l for l in out),
          "recap: proxy1 failed=1 rescued=1")
    # proxy2 and proxy3 were prepared (a release directory, checked by the new binary) but their
    # proxies were never stopped (their pids, below).
    for h in ("proxy2", "proxy3"):
        check(any(l.startswith(f"{h} : ") and " failed=0 " in l and " rescued=0 " in l for l in out),
              f"recap: {h} did not fail")
        check(not [l for l in task_results(out, "Activate the release") + task_results(out, "Start the release")
                   if l.startswith((f"ok: [{h}]", f"changed: [{h}]", f"failed: [{h}]"))],
              f"{h}: its release was not activated")
    after = status()
    for h, b in sorted(before.items()):
        a = after.get(h, {})
        check(a.get("running") is True and a.get("readiness_status") == 200
              and a.get("release") == b.get("release") and a.get("config_sha256") == b.get("config_sha256"),
              f"after: {h} ready on its previous release {b.get('release')} and config {b.get('config_sha256', '')[:12]}")
    check(after.get("proxy1", {}).get("pid") != before.get("proxy1", {}).get("pid"), "after: proxy1 was restarted")
    for h in ("proxy2", "proxy3"):
        check(after.get(h, {}).get("pid") == before.get(h, {}).get("pid"), f"after: {h} kept its process")
    summary = json.load(open(os.path.join(app_dir, "summary.json")))
    errors = summary["write_errors"] + summary["read_errors"] + summary["read_mismatches"]
    check(summary["acknowledged_writes"] > 0 and errors == 0,
          f"application during the failed update: {summary['acknowledged_writes']} writes acknowledged, "
          f"{errors} errors {summary.get('errors', [])[:3]}")
    verify_on_both(os.path.join(app_dir, "acked.tsv"), "write acknowledged during the failed update")


# ---- the fleet commands -------------------------------------------------------------------

def deploy(*args, timeout=300, state_dir=None):
    """zdm-deploy ARGS on this sandbox's inventory → CompletedProcess."""
    cmd = [DEPLOY, args[0], "-i", INVENTORY, "--known-hosts", KNOWN_HOSTS, *args[1:]]
    if state_dir:
        cmd += ["--state-dir", state_dir]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def admin_state(ip):
    """GET /admin/state of a proxy (the deployment's token from the host's secrets)."""
    host = f"proxy{PROXY_IPS.index(ip) + 1}"
    token = open(os.path.join(SB, "hosts", host, "home", "secrets", "proxy_admin_token")).read().strip()
    req = urllib.request.Request(f"http://{ip}:14001/admin/state", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def readiness(ip):
    try:
        with urllib.request.urlopen(f"http://{ip}:14001/health/readiness", timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def fleet_commands():
    """rolling-restart at pause 0 under traffic (0 errors), a SIGKILLed proxy supervised back,
    stop/start with the hand-over, rollback and rollback --to, the lock (local and on the hosts),
    --check --diff changing nothing, --list-hosts, --version, the audit trail, and the inventory
    and vars mistakes refused or reported."""
    print("== fleet commands ==", flush=True)
    app_dir = os.path.join(SB, "app-fleet")
    shutil.rmtree(app_dir, ignore_errors=True)
    os.makedirs(app_dir)
    with open(os.path.join(app_dir, "app.err"), "w") as err:
        app = subprocess.Popen(["/usr/bin/python3", os.path.join(REPO, "tests", "drivers", "app.py"),
                                "--contact-points", ",".join(PROXY_IPS), "--rate", "40",
                                "--username", sandbox.TARGET_CREDS[0], "--password", sandbox.TARGET_CREDS[1],
                                "--out", app_dir, "--max-seconds", "400"],
                               stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if json.load(open(os.path.join(app_dir, "status.json"))).get("acknowledged_writes", 0) > 0:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        # A new zdm-proxy binary (another checksum) on the running fleet: uploaded once per host,
        # rolled out host by host.
        new_binary = os.path.join(SB, "zdm-proxy-new")
        shutil.copyfile(os.path.join(REPO, "build", "dist", "zdm-proxy"), new_binary)
        with open(new_binary, "ab") as f:
            f.write(b"\nanother build\n")
        os.chmod(new_binary, 0o755)
        before = status()
        t0 = time.monotonic()
        r = deploy("deploy", "-e", f"zdm_proxy_binary={new_binary}", "-e", "pause_between_restarts_in_seconds=0")
        took = time.monotonic() - t0
        after = status()
        check(r.returncode == 0 and all(after.get(h, {}).get("release") != b.get("release")
                                        and after.get(h, {}).get("readiness_status") == 200
                                        for h, b in before.items()),
              f"deploy of a new binary on the running fleet: every proxy on a new release and ready "
              f"(exit {r.returncode}, {took:.1f} s) " + r.stdout[-1500:] * (r.returncode != 0))
        print(f"[info] deploy of a new binary to 3 running proxies at pause 0 under traffic: {took:.1f} s", flush=True)

        before = status()
        t0 = time.monotonic()
        r = deploy("rolling-restart", "-e", "pause_between_restarts_in_seconds=0")
        took = time.monotonic() - t0
        after = status()
        check(r.returncode == 0 and all(after.get(h, {}).get("pid") != b.get("pid")
                                        and after.get(h, {}).get("readiness_status") == 200
                                        for h, b in before.items()),
              f"rolling-restart at pause 0: every proxy restarted and ready (exit {r.returncode}, {took:.1f} s) "
              + r.stdout[-1500:] * (r.returncode != 0))
        print(f"[info] rolling-restart of 3 proxies at pause 0 under traffic: {took:.1f} s", flush=True)

        # A proxy killed outright: zdm-supervise starts it again.
        child = os.path.join(SB, "hosts", "proxy2", "home", "run", "zdm-proxy.pid.child")
        old = int(open(child).read())
        t0 = time.monotonic()
        os.kill(old, 9)
        back = None
        while time.monotonic() - t0 < 30:
            try:
                new = int(open(child).read())
            except (OSError, ValueError):
                new = old
            if new != old and alive(new) and readiness(PROXY_IPS[1]) == 200:
                back = time.monotonic() - t0
                break
            time.sleep(0.1)
        check(back is not None, f"a SIGKILLed proxy is back and ready ({back and round(back, 1)} s)")
        print(f"[info] SIGKILLed proxy back and ready in {back and round(back, 1)} s", flush=True)

        # stop / start one proxy: the others leave it out (and say it is back).
        r = deploy("stop", "--limit", "proxy2")
        st = status()
        check(r.returncode == 0 and st.get("proxy2", {}).get("running") is False
              and admin_state(PROXY_IPS[0]).get("leaving") == [PROXY_IPS[1]],
              f"stop --limit proxy2: stopped, proxy1 leaves it out (exit {r.returncode})")
        r = deploy("start", "--limit", "proxy2")
        st = status()
        check(r.returncode == 0 and st.get("proxy2", {}).get("running") is True
              and st.get("proxy2", {}).get("readiness_status") == 200
              and admin_state(PROXY_IPS[0]).get("leaving") == [],
              f"start --limit proxy2: running and ready, back in proxy1's topology (exit {r.returncode})")
    finally:
        open(os.path.join(app_dir, "stop"), "w").close()
        try:
            app.wait(timeout=60)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
    summary = json.load(open(os.path.join(app_dir, "summary.json")))
    errors = summary["write_errors"] + summary["read_errors"] + summary["read_mismatches"]
    check(summary["acknowledged_writes"] > 0 and errors == 0,
          f"application during a new binary's deploy and a rolling-restart at pause 0, kill, stop/start: "
          f"{summary['acknowledged_writes']} "
          f"writes acknowledged, {errors} errors {summary.get('errors', [])[:3]}")
    verify_on_both(os.path.join(app_dir, "acked.tsv"), "write acknowledged during the fleet commands")

    interrupt_and_ssh_drop()

    # rollback: each host to its previous release, then --to the one it ran.
    before = status()
    r = deploy("rollback", "-e", "pause_between_restarts_in_seconds=0")
    mid = status()
    check(r.returncode == 0 and all(mid.get(h, {}).get("release") == b.get("previous_release")
                                    and mid.get(h, {}).get("readiness_status") == 200 for h, b in before.items()),
          f"rollback: every host on its previous release and ready (exit {r.returncode})")
    back_to = before["proxy1"]["release"].split("-")[0]
    r = deploy("rollback", "--to", back_to, "-e", "pause_between_restarts_in_seconds=0")
    after = status()
    check(r.returncode == 0 and all(after.get(h, {}).get("release") == b.get("release")
                                    and after.get(h, {}).get("config_sha256") == b.get("config_sha256")
                                    and after.get(h, {}).get("readiness_status") == 200 for h, b in before.items()),
          f"rollback --to {back_to}: every host back on it, ready (exit {r.returncode})")

    # The lock: held by hand, then by a run; another workstation (its own state dir) is refused
    # by the hosts' locks.
    r = deploy("lock", "acquire", "-m", "e2e maintenance")
    refused = deploy("rolling-restart")
    check(r.returncode == 0 and refused.returncode == 1 and "e2e maintenance" in refused.stdout + refused.stderr,
          f"lock acquire: a run is refused naming the holder (exit {refused.returncode})")
    r = deploy("lock", "release")
    check(r.returncode == 0, "lock release")
    first = subprocess.Popen([DEPLOY, "rolling-restart", "-i", INVENTORY, "--known-hosts", KNOWN_HOSTS],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(3)
    second = deploy("rolling-restart", state_dir=os.path.join(SB, "other-workstation"))
    out_first, _ = first.communicate(timeout=300)
    check(first.returncode == 0 and second.returncode != 0 and "locked by" in second.stdout + second.stderr,
          f"two concurrent runs: the second is refused by the hosts' locks (exits {first.returncode}, {second.returncode})")

    # --check --diff: what would change, nothing changed.
    before = status()
    releases = sorted(os.listdir(os.path.join(SB, "hosts", "proxy1", "home", "releases")))
    # (primary TARGET with mirrored reads: a configuration no release on the hosts has)
    r = deploy("rolling-update", "--check", "--diff", "-e", "primary_cluster=TARGET",
               "-e", "read_mode=DUAL_ASYNC_ON_SECONDARY")
    after = status()
    check(r.returncode == 0 and "+read_mode: DUAL_ASYNC_ON_SECONDARY" in r.stdout
          and "changed: [proxy1] => would restart (handed over) proxy1 on release " in r.stdout
          and sandbox.TARGET_CREDS[1] not in r.stdout + r.stderr
          and sorted(os.listdir(os.path.join(SB, "hosts", "proxy1", "home", "releases"))) == releases
          and all(after.get(h, {}).get("pid") == b.get("pid") for h, b in before.items()),
          f"--check --diff shows the config change, no secret, and changes nothing (exit {r.returncode})")

    # A value the proxy refuses, on proxy2 only: found by the new binary on the host before any
    # proxy stops.
    bad = os.path.join(SB, "bad-proxy2.ini")
    with open(bad, "w") as f:
        f.write(re.sub(r"^(proxy2 .*)$", r"\1 heartbeat_interval_ms=soon", open(INVENTORY).read(), flags=re.M))
    before = status()
    r = subprocess.run([DEPLOY, "rolling-update", "-i", bad, "--known-hosts", KNOWN_HOSTS,
                        "-e", "read_mode=DUAL_ASYNC_ON_SECONDARY"], capture_output=True, text=True, timeout=300)
    after = status()
    check(r.returncode == 2 and any(l.startswith("failed: [proxy2] => non-zero return code 2: ")
                                    and "key 'heartbeat_interval_ms': expected an integer, got 'soon'" in l
                                    for l in r.stdout.splitlines())
          and all(after.get(h, {}).get("pid") == b.get("pid") and after.get(h, {}).get("release") == b.get("release")
                  for h, b in before.items()),
          f"a bad value on proxy2 is refused by --check-config before any proxy stops (exit {r.returncode})")

    r = deploy("rolling-update", "--list-hosts")
    check(r.returncode == 0 and all(f"      proxy{i}\n" in r.stdout for i in (1, 2, 3)), "--list-hosts")
    r = subprocess.run([DEPLOY, "--version"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and re.match(r"zdm-deploy \d+\.\d+\.\d+ \(commit [0-9a-f]{12}", r.stdout),
          f"--version ({r.stdout.strip()})")
    audit = open(os.path.join(SB, "hosts", "proxy1", "home", "audit.log")).read().splitlines()
    check(audit and re.search(r"user=\S+ machine=\S+ run=\S+ command=\"zdm-deploy [^\"]*\" host=proxy1 "
                              r"release=\S+ config_sha256=[0-9a-f]{64} outcome=\w+$", audit[-1]),
          f"audit line on the host ({audit[-1] if audit else ''})")

    # Inventory and vars mistakes.
    typo = os.path.join(SB, "typo.ini")
    with open(typo, "w") as f:
        f.write(open(INVENTORY).read().replace("[proxies]", "[proxys]"))
    r = subprocess.run([DEPLOY, "deploy", "-i", typo, "--known-hosts", KNOWN_HOSTS],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode != 0 and "did you mean [proxys]" in r.stdout + r.stderr,
          f"a misspelled [proxies] group is an error (exit {r.returncode})")
    vault = os.path.join(SB, "vault.yml")
    with open(vault, "w") as f:
        f.write("$ANSIBLE_VAULT;1.1;AES256\n6162636465\n")
    r = deploy("deploy", "-e", f"@{vault}")
    check(r.returncode != 0 and "encrypted with Ansible Vault" in r.stdout + r.stderr,
          f"a vault file without --vault-password-file is refused clearly (exit {r.returncode})")
    r = deploy("deploy", "--check", "-e", "zdm_proxy_image=datastax/zdm-proxy:2.1", "-e", "origin_contct_points=x")
    check("not supported: zdm_proxy_image" in r.stdout + r.stderr
          and "did you mean 'origin_contact_points'" in r.stdout + r.stderr,
          "ZDM variables not supported are reported, typos get a did-you-mean")


def run_until_task(args, task):
    """Starts zdm-deploy ARGS; returns (process, output file) once TASK's header is printed."""
    out = os.path.join(SB, "run-until.out")
    f = open(out, "w")
    p = subprocess.Popen([DEPLOY, args[0], "-i", INVENTORY, "--known-hosts", KNOWN_HOSTS, *args[1:]],
                         stdout=f, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and f"TASK [{task}" not in open(out).read():
        time.sleep(0.05)
    return p, out


def interrupt_and_ssh_drop():
    """Ctrl-C during a rolling-restart finishes the host in progress and touches no other; an SSH
    connection killed during the activation is recovered (reconnect, same activation, once)."""
    before = status()
    p, out = run_until_task(["rolling-restart", "-e", "pause_between_restarts_in_seconds=0"], "Activate the release")
    p.send_signal(2)
    p.wait(timeout=300)
    text = open(out).read()
    after = status()
    check(p.returncode == 99 and "[interrupted] the hosts in progress are done; not touched: proxy2, proxy3" in text
          and "PLAY RECAP" in text and after["proxy1"].get("pid") != before["proxy1"].get("pid")
          and after["proxy1"].get("readiness_status") == 200
          and all(after[h].get("pid") == before[h].get("pid") for h in ("proxy2", "proxy3"))
          and admin_state(PROXY_IPS[1]).get("leaving") == [],
          f"Ctrl-C: proxy1 finished and handed back, proxy2/3 untouched, recap, exit 99 (got {p.returncode})")

    master = int(open(os.path.join(SB, "pids", "sshd-proxy1")).read())
    log = os.path.join(SB, "hosts", "proxy1", "home", "logs", "zdm-proxy.log")
    p, out = run_until_task(["rolling-restart", "-e", "pause_between_restarts_in_seconds=0"], "Activate the release")
    time.sleep(0.3)
    sessions = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    for pid in sessions:  # the sshd processes serving zdm-deploy's connection to proxy1
        os.kill(int(pid), 9)
    p.wait(timeout=300)
    text = open(out).read()
    run_ids = re.findall(r"zdmctl: activation (\S+): \S+ -> ", open(log).read())
    st = status()
    check(sessions and p.returncode == 0 and "connection lost" in text
          and len(st) == 3 and all(e.get("readiness_status") == 200 for e in st.values())
          and run_ids and run_ids.count(run_ids[-1]) == 1,
          f"SSH connection to proxy1 killed during its activation: reconnected, the activation ran once, "
          f"the run finished (exit {p.returncode}, killed {sessions})")


def logs_and_teardown():
    """logs, collect-logs (secrets redacted), then teardown --yes (phase 5) and a fresh deploy."""
    print("== logs, collect-logs, teardown ==", flush=True)
    r = deploy("logs", "-n", "5")
    lines = r.stdout.splitlines()
    check(r.returncode == 0 and all(any(l.startswith(f"[proxy{i}] ") for l in lines) for i in (1, 2, 3)),
          f"logs: every proxy's lines, host-prefixed (exit {r.returncode})")
    out_dir = os.path.join(SB, "collected")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    r = subprocess.run([DEPLOY, "collect-logs", "-i", INVENTORY, "--known-hosts", KNOWN_HOSTS],
                       capture_output=True, text=True, timeout=300, cwd=out_dir)
    archives = [os.path.join(dp, f) for dp, _, fs in os.walk(out_dir) for f in fs if f.endswith(".tar.gz")]
    secrets = [sandbox.ORIGIN_CREDS[1], sandbox.TARGET_CREDS[1],
               open(os.path.join(SB, "hosts", "proxy1", "home", "secrets", "proxy_admin_token")).read().strip()]
    leaked, names = [], []
    if len(archives) == 1:
        import tarfile
        with tarfile.open(archives[0]) as tar:
            for m in tar.getmembers():
                if m.isfile():
                    names.append(m.name)
                    data = tar.extractfile(m).read().decode(errors="replace")
                    leaked += [m.name for sec in secrets if sec in data]
    check(r.returncode == 0 and len(archives) == 1 and not leaked
          and all(any(n.endswith(f"/proxy{i}/zdm-proxy.log") for n in names) for i in (1, 2, 3))
          and all(any(n.endswith(f"/proxy{i}/zdm-proxy.yml") for n in names) for i in (1, 2, 3)),
          f"collect-logs: one archive with every proxy's log and config, no secret (exit {r.returncode}, leaked {leaked})")
    r = deploy("teardown")
    check(r.returncode == 5 and "--yes" in r.stderr, "teardown without --yes is refused")
    r = deploy("teardown", "--yes")
    st = status()
    home = os.path.join(SB, "hosts", "proxy1", "home")
    check(r.returncode == 0 and all(readiness(ip) == 0 for ip in PROXY_IPS)
          and sorted(os.listdir(home)) == ["audit.log", "logs"],
          f"teardown --yes: no proxy answers, only logs/ and audit.log left (exit {r.returncode}, {sorted(os.listdir(home))})")
    check(all(e.get("state") == "not deployed" or e.get("running") is False for e in st.values()),
          f"status after teardown: not deployed ({[e.get('state') for e in st.values()]})")
    r = deploy("deploy")
    st = status()
    check(r.returncode == 0 and len(st) == 3 and all(e.get("readiness_status") == 200 for e in st.values()),
          f"deploy after teardown: three proxies ready (exit {r.returncode})")


# ---- the monitoring stack -----------------------------------------------------------------

MONITORING_IP = f"{NET}.1.10"
PROMETHEUS, ALERTMANAGER = f"http://{MONITORING_IP}:9090", f"http://{MONITORING_IP}:9093"
PAGE = f"http://{NET}.0.1:3000"
TARGET_ADMIN, STOPPED_NODE = f"http://{NET}.3.1:9180", f"{NET}.3.2"
DASHBOARDS = os.path.join(REPO, "monitoring", "grafana", "dashboards")
SCREENSHOTS = os.path.join(SB, "screenshots")
MONITORING_VARS = ["-e", "prometheus_scrape_interval=5s", "-e", "prometheus_evaluation_interval=5s",
                   "-e", "prometheus_scrape_timeout=4s"]  # as scripts/sandbox.py deploys it
UIDS = ("zdm-proxy", "zdm-migration", "zdm-proxy-hosts")

# Panels whose queries are empty by design while nothing fails: they keep only the series above
# zero of a failure breakdown, or list firing alerts. Every other panel must show data. The
# sandbox runs target_failure_mode fail without read_compare: nothing is journaled (a failing
# target fails the write) and no mirrored read is compared, so those two panels stay empty
# (tests/drivers/test_target_protection.py fills their series).
EMPTY_BY_DESIGN = {
    ("zdm-proxy", "Origin errors by node"), ("zdm-proxy", "Target errors by node"),
    ("zdm-proxy", "Async errors by node"), ("zdm-proxy", "Failed connection attempts by node"),
    ("zdm-proxy", "Errors the proxies answered themselves"),
    ("zdm-migration", "Mirrored read errors by error"), ("zdm-migration", "Firing alerts"),
    ("zdm-migration", "Writes target is missing, by table"),
    ("zdm-migration", "Mirrored reads that differ, by table (read_compare)"),
}
# A stopped target node (replication factor 1: its partitions unavailable at consistency ONE)
# must fill these (non-empty) and make these non-zero. Origin stays healthy, so "Origin errors
# by node" stays empty; "Failed connection attempts by node" fills only if a driver reconnects
# to a proxy that picks the stopped node, and the proxies answer errors themselves only if a
# request was lost with the node's connections: neither is required.
FAULT_NONEMPTY = {("zdm-proxy", "Target errors by node"), ("zdm-proxy", "Async errors by node"),
                  ("zdm-migration", "Mirrored read errors by error"), ("zdm-migration", "Firing alerts")}
MAYBE_AFTER_FAULT = {("zdm-proxy", "Failed connection attempts by node"),
                     ("zdm-proxy", "Errors the proxies answered themselves")}
FAULT_NONZERO = {("zdm-proxy", "Failed writes by cluster"), ("zdm-proxy", "Failed writes by instance"),
                 ("zdm-proxy", "Failed writes since start"), ("zdm-migration", "Dual-write failure ratio"),
                 ("zdm-migration", "Mirrored read error ratio")}
# Zero while nothing fails: asserted zero in the healthy window.
ZERO_WHILE_HEALTHY = {("zdm-proxy", "Failed writes by cluster"), ("zdm-proxy", "Failed writes by instance"),
                      ("zdm-migration", "Dual-write failure ratio")}

# The Prometheus queries of a migration lab and the names ZDM's migration guide (and the lab's
# curl commands) tell operators to watch, some as exported aliases (proxy/metrics.cpp).
GUIDE_QUERIES = [
    ("migration lab", "rate(zdm_proxy_request_duration_seconds_count[5m])"),
    ("migration lab", "zdm_proxy_failed_writes_total"),
    ("migration lab", "histogram_quantile(0.95, rate(zdm_proxy_request_duration_seconds_bucket[5m]))"),
    ("migration lab", "zdm_proxy_inflight_requests_total"),
    ("ZDM's migration guide", "zdm_proxy_requests_total"),
    ("ZDM's migration guide", "zdm_proxy_errors_total"),
    ("ZDM's migration guide", "zdm_proxy_requests_duration_seconds_bucket"),
    ("ZDM's migration guide", "zdm_proxy_origin_requests_total"),
    ("ZDM's migration guide", "zdm_proxy_target_requests_total"),
    ("migration lab (curl | grep)", "zdm_origin_requests_total"),
    ("ZDM's migration guide, as a rate", "rate(zdm_proxy_requests_total[5m])"),
    ("ZDM's migration guide, as a quantile", "histogram_quantile(0.99, sum by (le) (rate(zdm_proxy_requests_duration_seconds_bucket[5m])))"),
]


def http_json(url, method="GET", timeout=30):
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def prom_range(expr, start, end, step=5):
    """[(labels, [finite values])] of a range query; raises on a query error."""
    q = urllib.parse.urlencode({"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": step})
    d = http_json(f"{PROMETHEUS}/api/v1/query_range?{q}")
    out = []
    for series in d["data"]["result"]:
        values = [float(v) for _, v in series["values"] if math.isfinite(float(v))]
        if values:
            out.append((series["metric"], values))
    return out


def prom_instant(expr):
    d = http_json(f"{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    return [(r["metric"], float(r["value"][1])) for r in d["data"]["result"] if math.isfinite(float(r["value"][1]))]


def panel_queries():
    """[(uid, panel title, legend, PromQL)] of every target of every panel, variables set to All
    and $__rate_interval to 1m (what Grafana uses for a 15 s scrape)."""
    out = []
    for uid in UIDS:
        d = json.load(open(os.path.join(DASHBOARDS, f"{uid}.json")))
        for p in d["panels"]:
            for t in p.get("targets", []):
                expr = t["expr"].replace("$__rate_interval", "1m")
                for v in d["templating"]["list"]:
                    expr = expr.replace("$" + v["name"], v.get("allValue") or ".*")
                out.append((uid, p["title"], t["legendFormat"], expr))
    return out


def evaluate(queries, start, end):
    """{(uid, title): [(legend, [(labels, values)])]} for every panel query over [start, end]."""
    result = {}
    for uid, title, legend, expr in queries:
        try:
            series = prom_range(expr, start, end)
        except Exception as e:  # noqa: BLE001 - reported as a failed check
            check(False, f"{uid} / {title} / {legend}: query error {e}: {expr}")
            series = []
        result.setdefault((uid, title), []).append((legend, series))
    return result


def deploy_monitoring(*extra):
    r = subprocess.run([DEPLOY, "deploy-monitoring", "-i", INVENTORY, "--known-hosts", KNOWN_HOSTS,
                        *MONITORING_VARS, *extra], capture_output=True, text=True, timeout=300)
    recap = [l for l in r.stdout.splitlines() if " : ok=" in l]
    if r.returncode != 0:
        print(r.stdout[-4000:], r.stderr[-2000:])
    return r.returncode, recap


def program_pids():
    """{program@host: pid} of the supervised monitoring programs."""
    out = {}
    for h in os.listdir(os.path.join(SB, "hosts")):
        out.update({k: v for k, v in monitoring_pids(h).items() if not k.startswith("zdm-supervise(")})
    return out


def redeploy_monitoring():
    """Idempotence, then reload (configuration) and restart (command line) of Prometheus only."""
    print("== monitoring: deploy-monitoring again, then a configuration change, then a command-line change ==",
          flush=True)
    before = program_pids()
    rc, recap = deploy_monitoring()
    check(rc == 0 and len(recap) == 4 and all(" changed=0 " in l and " failed=0 " in l for l in recap),
          f"deploy-monitoring again: exit 0, nothing changed on the 4 hosts ({recap})")
    check(program_pids() == before and len(before) == 5,
          f"...and nothing restarted: the same 5 processes ({sorted(before)})")

    rc, recap = deploy_monitoring("-e", "prometheus_environment_label_prefix=zdm-e2e-")
    after = program_pids()
    loaded = http_json(f"{PROMETHEUS}/api/v1/status/config")["data"]["yaml"]
    check(rc == 0 and "environment: zdm-e2e-monitoring" in loaded and after == before,
          "a configuration change (external label) is checked and reloaded: Prometheus serves it, same process")

    rc, recap = deploy_monitoring("-e", "prometheus_environment_label_prefix=zdm-e2e-",
                                  "-e", "prometheus_retention_time=10d")
    restarted_at = time.time()
    after = program_pids()
    flags = http_json(f"{PROMETHEUS}/api/v1/status/flags")["data"]
    changed = sorted(k for k in after if after[k] != before.get(k))
    check(rc == 0 and flags.get("storage.tsdb.retention.time") == "10d" and changed == ["prometheus@monitoring"],
          f"a command-line change (retention 10d) restarts Prometheus and nothing else (restarted: {changed}; "
          f"retention {flags.get('storage.tsdb.retention.time')})")
    # Every target scraped again by the new process before the proxies restart: its staleness
    # tracking starts from these scrapes.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        fresh = prom_instant(f"timestamp(up) > {restarted_at:.3f}")
        if len(fresh) == 8:
            break
        time.sleep(1)


def page_check(uid, range_s, name, expect_empty, maybe_empty=frozenset()):
    """The dashboard page in chromium: states in the DOM, then the screenshot's pixels. Panels of
    expect_empty must say "No data", those of maybe_empty may; every other panel must have drawn
    a series. Returns the page's panels."""
    shot = os.path.join(SCREENSHOTS, f"{name}.png")
    url = f"{PAGE}/?d={uid}&range={range_s}&refresh=0"
    r = subprocess.run(["node", os.path.join(REPO, "tests", "e2e", "dashboard_page.mjs"), url, shot],
                       capture_output=True, text=True, timeout=180, cwd=os.path.join(REPO, "tests", "e2e"))
    try:
        page = json.loads(r.stdout)
    except ValueError:
        check(False, f"page {uid}: chromium run failed: {r.stdout[-2000:]} {r.stderr[-2000:]}")
        return []
    panels = page["panels"]
    check(not page["errors"] and not page.get("pageError"), f"page {uid}: no error loading it ({page['errors'][:3]})")
    drawn = [p for p in panels if p["state"] == "ok" and p["series"] > 0]
    empty = {p["title"] for p in panels if p["state"] == "empty"}
    want_empty = {t for u, t in expect_empty if u == uid}
    may = {t for u, t in maybe_empty if u == uid}
    check(len(drawn) + len(empty) == len(panels) and want_empty <= empty <= want_empty | may,
          f"page {uid}: {len(drawn)} of {len(panels)} panels drew series; empty: {sorted(empty)} "
          f"(expected empty: {sorted(want_empty)}); others: "
          f"{[(p['title'], p['state'], p['text'][:80]) for p in panels if p['state'] not in ('ok', 'empty')]}")
    img = Image.open(shot).convert("RGB")

    def colorful(box):  # series lines and fills are saturated; grid, axes and text are grey
        crop = img.crop((box["x"], box["y"], box["x"] + box["w"], box["y"] + box["h"]))
        return sum(1 for r_, g, b in crop.getdata() if max(r_, g, b) - min(r_, g, b) > 60)

    def inked(box):  # anything but the panel's background (#181b1f)
        crop = img.crop((box["x"], box["y"] + 24, box["x"] + box["w"], box["y"] + box["h"]))
        return sum(1 for r_, g, b in crop.getdata() if abs(r_ - 24) + abs(g - 27) + abs(b - 31) > 60)

    blank = []
    for p in drawn:
        if p["type"] == "timeseries":
            if not p["canvas"] or colorful(p["canvas"]) < 30:
                blank.append(p["title"])
        elif inked(p["rect"]) < 30:
            blank.append(p["title"])
    check(not blank, f"page {uid}: the screenshot shows every drawn panel's series (blank: {blank}); {shot}")
    return panels


def monitoring_phase(t_start):
    redeploy_monitoring()
    print("== monitoring: read mirroring again (primary ORIGIN, DUAL_ASYNC_ON_SECONDARY) under traffic ==", flush=True)
    r = subprocess.run([DEPLOY, "rolling-update", "-i", INVENTORY, "--known-hosts", KNOWN_HOSTS,
                        "-e", "primary_cluster=ORIGIN", "-e", "read_mode=DUAL_ASYNC_ON_SECONDARY",
                        "-e", "pause_between_restarts_in_seconds=1"], capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, f"rolling update to primary ORIGIN, DUAL_ASYNC_ON_SECONDARY (exit {r.returncode})")
    app_dir = os.path.join(SB, "app-monitoring")
    shutil.rmtree(app_dir, ignore_errors=True)
    os.makedirs(app_dir)
    with open(os.path.join(app_dir, "app.err"), "w") as err:
        app = subprocess.Popen(["/usr/bin/python3", os.path.join(REPO, "tests", "drivers", "app.py"),
                                "--contact-points", ",".join(PROXY_IPS), "--rate", "40",
                                "--username", sandbox.TARGET_CREDS[0], "--password", sandbox.TARGET_CREDS[1],
                                "--out", app_dir, "--max-seconds", "600"],
                               stdout=subprocess.DEVNULL, stderr=err)
    os.makedirs(SCREENSHOTS, exist_ok=True)
    try:
        time.sleep(45)  # a minute of 5 s scrapes for the rate windows, with every proxy mirroring
        # Each proxy's newest zdm_proxy_info series (the one before its restart may still be in
        # the 5-minute lookback).
        info = prom_instant('topk by (instance) (1, timestamp(zdm_proxy_info{job="zdm_proxy"}))')
        check(len(info) == 3 and all(m["read_mode"] == "DUAL_ASYNC_ON_SECONDARY" and m["primary_cluster"] == "ORIGIN"
                                     for m, _ in info),
              f"zdm_proxy_info: the three proxies in DUAL_ASYNC_ON_SECONDARY, primary ORIGIN ({[m for m, _ in info]})")
        targets = http_json(f"{PROMETHEUS}/api/v1/targets")["data"]["activeTargets"]
        jobs = sorted((t["labels"]["job"], t["health"]) for t in targets)
        check(sorted(j for j, _ in jobs) == ["alertmanager", "node", "node", "node", "prometheus",
                                             "zdm_proxy", "zdm_proxy", "zdm_proxy"]
              and all(h == "up" for _, h in jobs), f"Prometheus scrapes every target of the inventory: {jobs}")

        now = time.time()
        queries = panel_queries()
        whole = evaluate(queries, t_start, now)      # the sandbox's whole run, as a dashboard shows it
        recent = evaluate(queries, now - 90, now)    # the healthy DUAL_ASYNC_ON_SECONDARY window
        with_data = empty = 0
        for (uid, title), results in sorted(whole.items()):
            if (uid, title) in EMPTY_BY_DESIGN:
                series = [s for _, ss in recent[(uid, title)] for s in ss]
                check(not series, f"{uid} / {title}: empty by design while nothing fails ({len(series)} series)")
                empty += 1
                continue
            for legend, series in results:
                ok = bool(series)
                with_data += ok
                check(ok, f"{uid} / {title} / {legend}: returns data ({len(series)} series)")
        print(f"[info] {with_data} panel queries returned data, {empty} panels empty by design "
              f"({len(queries)} queries in {len(whole)} panels)", flush=True)
        for key in ZERO_WHILE_HEALTHY:
            values = [v for _, ss in recent[key] for _, vs in ss for v in vs]
            check(values and max(values) == 0, f"{key[0]} / {key[1]}: zero while nothing fails")
        for source, expr in GUIDE_QUERIES:
            res = prom_instant(expr)
            check(bool(res), f"{source}: `{expr}` returns data ({len(res)} series)")
        text = urllib.request.urlopen(f"http://{PROXY_IPS[0]}:14001/metrics", timeout=5).read().decode()
        for name in ("zdm_proxy_requests_total", "zdm_proxy_errors_total", "zdm_proxy_requests_duration_seconds_bucket",
                     "zdm_proxy_origin_requests_total", "zdm_proxy_target_requests_total", "zdm_origin_requests_total"):
            check(any(l.startswith(name + "{") for l in text.splitlines()),
                  f"curl /metrics | grep {name} (the guides' command) finds it")

        # The page's shortest range that holds the whole run (its phase 4 served reads_target).
        range_s = next(r for r in (300, 600, 900, 1800, 3600) if r >= time.time() - t_start + 60 or r == 3600)
        for uid in UIDS:
            page_check(uid, range_s, uid, EMPTY_BY_DESIGN)

        print(f"== monitoring: fault: target node {STOPPED_NODE} stopped (test cluster fault admin) ==", flush=True)
        nodes = http_json(f"{TARGET_ADMIN}/nodes/{STOPPED_NODE}/stop", method="POST")
        check({"address": STOPPED_NODE, "up": False} in nodes, f"target node {STOPPED_NODE} stopped")
        t_fault = time.time()
        deadline = time.monotonic() + 120
        alert, missing = None, None
        while time.monotonic() < deadline:
            now = time.time()
            after = evaluate([q for q in queries if (q[0], q[1]) in FAULT_NONEMPTY | FAULT_NONZERO],
                             t_fault - 5, now)
            missing = [k for k in FAULT_NONEMPTY if not any(ss for _, ss in after[k])]
            missing += [k for k in FAULT_NONZERO if not any(v != 0 for _, ss in after[k] for _, vs in ss for v in vs)]
            alerts = http_json(f"{ALERTMANAGER}/api/v2/alerts")
            alert = next((a for a in alerts if a["labels"].get("alertname") == "ZdmWritesFailing"
                          and a["labels"].get("failed_on") == "target"), None)
            if not missing and alert:
                break
            time.sleep(5)
        check(not missing, f"the stopped target node fills the failure panels ({sorted(FAULT_NONEMPTY | FAULT_NONZERO)}; "
                           f"still empty or zero: {missing})")
        check(alert is not None and alert["status"]["state"] == "active",
              f"ZdmWritesFailing (failed_on=target) reached Alertmanager after {time.time() - t_fault:.0f} s: "
              f"{alert and {k: alert['labels'][k] for k in ('instance', 'severity')}} "
              f"{alert and alert['annotations'].get('summary')}")
        errors = prom_instant('sum by (error) (zdm_target_requests_failed_total{job="zdm_proxy"}) > 0')
        check(any(m.get("error") == "unavailable" for m, _ in errors),
              f"target nodes answered UNAVAILABLE, as Cassandra's coordinators do ({errors})")
        check(prom_instant('sum(zdm_proxy_failed_writes_total{failed_on="target"}) > 0')
              and prom_instant('sum(zdm_proxy_errors_total{type="writes",cluster="target"}) > 0'),
              "the lab's zdm_proxy_failed_writes_total and the guide's zdm_proxy_errors_total count them")
        time.sleep(20)  # a few points of the alert's series on the page, not just its first one
        for uid in ("zdm-proxy", "zdm-migration"):
            page_check(uid, range_s, f"{uid}-target-node-stopped", EMPTY_BY_DESIGN - FAULT_NONEMPTY - MAYBE_AFTER_FAULT,
                       maybe_empty=MAYBE_AFTER_FAULT)
    finally:
        open(os.path.join(app_dir, "stop"), "w").close()
        try:
            app.wait(timeout=60)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
        try:
            http_json(f"{TARGET_ADMIN}/nodes/{STOPPED_NODE}/start", method="POST")
        except OSError:
            pass
    print(f"[info] screenshots: {SCREENSHOTS}", flush=True)


def recorded_pids():
    """{name: pid} of what the sandbox recorded: SB/pids/* and each proxy host's pid file."""
    out = {}
    pids_dir = os.path.join(SB, "pids")
    if os.path.isdir(pids_dir):
        for n in os.listdir(pids_dir):
            out[n] = int(open(os.path.join(pids_dir, n)).read())
    hosts = os.path.join(SB, "hosts")
    for h in sorted(os.listdir(hosts)) if os.path.isdir(hosts) else []:
        # The proxy under zdm-supervise: the supervisor's pid file and the proxy's (.child).
        pidfile = os.path.join(hosts, h, "home", "run", "zdm-proxy.pid")
        for suffix, label in (("", f"zdm-supervise(zdm-proxy)@{h}"), (".child", f"zdm-proxy@{h}")):
            try:
                out[label] = int(open(pidfile + suffix).read())
            except (OSError, ValueError):
                pass
        out.update(monitoring_pids(h))
    return out


def monitoring_pids(host):
    """{name: pid} of the monitoring programs on a host and their supervisors (their pid files)."""
    out = {}
    run_dir = os.path.join(SB, "hosts", host, "monitoring", "run")
    for name in sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else []:
        service, _, kind = name.partition(".pid")
        try:
            pid = int(open(os.path.join(run_dir, name)).read())
        except (OSError, ValueError):
            continue
        out[f"{service}@{host}" if kind == ".child" else f"zdm-supervise({service})@{host}"] = pid
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def status_and_collisions():
    """`status` matches the processes found by pid; a second `up` on the plan is refused."""
    r = subprocess.run(SANDBOX + ["status"] + PLAN, capture_output=True, text=True, timeout=120)
    print(r.stdout[-4000:], r.stderr[-2000:])
    listed = dict(re.findall(r"^  process (\S+)\s+pid (\d+)\s+running$", r.stdout, re.M))
    found = {n: str(p) for n, p in recorded_pids().items() if alive(p)}
    check(r.returncode == 0 and "sandbox: running" in r.stdout, f"sandbox status exits 0, 'running' (got {r.returncode})")
    # origin, target, 4 sshd, 3 proxies; the dashboard page; Prometheus, Alertmanager and 3 node
    # exporters; each proxy and monitoring program with its zdm-supervise.
    check(listed == found and len(found) == 23,
          f"sandbox status lists exactly the {len(found)} processes found by pid ({sorted(listed.items())})")
    check("CLOSED" not in r.stdout and "NOT RUNNING" not in r.stdout, "sandbox status: every port answers")
    other_dir = SB + "-second"
    for what, extra in (("same directory", PLAN), ("same address plan, another directory",
                        ["--net", NET, "--dir", other_dir, "--inventory", os.path.join(other_dir, "inv.ini")])):
        r = subprocess.run(SANDBOX + ["up"] + extra, capture_output=True, text=True, timeout=60)
        out = r.stdout.strip().splitlines()
        check(r.returncode == 3 and len(out) == 1 and os.path.relpath(SB, REPO) in out[0] and " down" in out[0],
              f"a second up ({what}) is refused in one line naming the running sandbox (exit {r.returncode}: {out})")
    shutil.rmtree(other_dir, ignore_errors=True)
    check(all(alive(int(p)) for p in found.values()), "the running sandbox is untouched by the refused ups")


def main():
    # The user's proxies are asked before the dummies listen: a dummy on a free readiness port
    # would otherwise count this test's own question as a connection to the user plan.
    user_before = user_readiness()
    dummies = DummyListeners()
    print(f"user plan: dummy listeners on {len(dummies.socks)} ports; in use already: {dummies.busy}; "
          f"user proxies' readiness: {user_before}", flush=True)
    pids = {}
    t_start = time.time()
    up = subprocess.run(SANDBOX + ["up"] + PLAN, capture_output=True, text=True, timeout=1200)
    print(up.stdout[-12000:])
    print(up.stderr[-4000:])
    try:
        check(up.returncode == 0, f"scripts/sandbox up exits 0 (got {up.returncode})")
        lines = up.stdout.splitlines()
        check(not any("[FAIL]" in l for l in lines), "no sandbox check failed")
        for needed in ("reads went to ORIGIN only",
                       "reads went to ORIGIN and were mirrored to TARGET asynchronously",
                       "reads went to TARGET (origin sees only system-keyspace reads)",
                       "every host runs the new configuration (checksum changed)"):
            check(any("[ok]" in l and needed in l for l in lines), f"sandbox reported: {needed}")
        check(sum("[ok]" in l and "every host runs the new configuration" in l for l in lines) == 2,
              "both rolling updates changed the config checksum on every host")
        check(sum("[ok]" in l and "each host reports the checksum of its config" in l for l in lines) == 3,
              "after the deploy and each rolling update, status reports the new config's checksum")
        tally = [l for l in lines if l.startswith("TALLY ")]
        check(len(tally) == 1 and lines[-1].startswith("TALLY "), "the last line is the TALLY")
        t = dict(re.findall(r"(\w+)=(-?\d+)", tally[-1])) if tally else {}
        acked = int(t.get("acknowledged_writes", 0))
        check(acked > 0, f"acknowledged writes > 0 ({acked})")
        check(t.get("app_errors") == "0", f"app_errors=0 ({t.get('app_errors')})")
        check(int(t.get("origin_rows", -1)) >= acked and int(t.get("target_rows", -1)) >= acked,
              f"both clusters hold at least the acknowledged rows ({t})")
        for res in verify_on_both(os.path.join(SB, "app", "acked.tsv"), "acknowledged write"):
            check(res.get("acknowledged") == acked, f"all {acked} acknowledged writes checked")
        # Phase 2: the figures of zdm-data backfill and validate, then the historical rows themselves.
        bf = [l for l in lines if re.search(r"^  backfill: [\d,]+ rows \([\d.]+ MB\) in [\d.]+ s: [\d,]+ rows/s, "
                                            r"[\d.]+ MB/s; .* 0 failed", l)]
        va = [l for l in lines if re.search(r"^  validate: [\d,]+ rows compared in [\d.]+ s \([\d,]+ rows/s, "
                                            r"[\d.]+ MB/s from origin\): 0 differences .*; 0 remaining", l)]
        check(len(bf) == 1, f"the sandbox printed the backfill's rows, MB, rows/s and MB/s ({bf})")
        check(len(va) == 1, f"the sandbox printed validate's figures with 0 differences ({va})")
        history_rows = sandbox.HISTORY_ROWS
        check(t.get("history_rows") == str(history_rows) and t.get("validate_differences") == "0"
              and int(t.get("backfill_rows", -1)) >= history_rows,
              f"TALLY: {history_rows} historical rows, backfill copied them, 0 differences ({t})")
        if os.path.exists(os.path.join(SB, "history", "history-rows")):
            historical_rows()
        if up.returncode == 0:
            status_and_collisions()
            idempotent_rerun()
            failed_rolling_update()
            fleet_commands()
            monitoring_phase(t_start)
            logs_and_teardown()
    finally:
        pids = recorded_pids()
        down = subprocess.run(SANDBOX + ["down"] + PLAN, capture_output=True, text=True, timeout=120)
        print(down.stdout)
        check(down.returncode == 0, "scripts/sandbox down exits 0")
        left = [p for p in pids.values() if alive(p)]
        check(not left, f"sandbox down stopped every process it started (alive: {left})")
        dummies.close()
        check(dummies.accepted == 0, f"nothing connected to the user plan's ports ({dummies.accepted} connections: {dummies.accepted_on})")
        user_after = user_readiness()
        check(all(user_after.get(ip) == 200 for ip, st in user_before.items() if st == 200),
              f"the user's sandbox proxies still answer readiness 200 ({user_before} -> {user_after})")
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
