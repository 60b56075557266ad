#!/usr/bin/python3
"""End-to-end: the README's main job. Runs `scripts/sandbox up` (clusters, sshd hosts, deploy,
python-driver app, rolling updates PRIMARY_ONLY → DUAL_ASYNC_ON_SECONDARY → primary TARGET),
then checks independently of the sandbox's own checks:
- exit code 0 and every phase check line is [ok] (routing from the proxies' metrics, config
  checksums from `zdm-deploy status` after each rolling update);
- the TALLY line: app_errors=0, acknowledged writes > 0, both clusters hold at least them;
- every acknowledged write read directly from origin and from target (verify_rows.py);
- a rolling update whose config cannot become ready (origin contact point with no node) fails on
  the first host, which is switched back to its previous release; later hosts are not touched;
  every host then runs its previous release and config and is ready, and a python-driver
  application writing through all three proxies during the failed update sees no error and
  every write it was acknowledged is on both clusters;
- `scripts/sandbox status` lists exactly the 9 processes found by pid (6 sshd and
  cluster processes, 3 proxies), and a second `up` on the
  same address plan is refused in one line (exit 3) without disturbing the running one;
- `scripts/sandbox down` stops every process the sandbox started.

The test runs its sandbox on an address plan of its own (127.10.x.x), with its own state
directory and inventory, so a user's sandbox (127.0.x.x, build/sandbox, inventory/sandbox.ini)
may run at the same time. To prove it, the test listens on the user plan's ports that are free
(dummy listeners) and checks that nothing connected to them; where the user's sandbox is up, its
proxies must still answer /health/readiness 200 afterwards.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import sandbox  # noqa: E402  (the sandbox's credentials and direct-access flags)
NET = "127.10"  # this test's own address plan (the user's sandbox uses 127.0)
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
             ("127.0.3.1", 9042), ("127.0.1.10", 2222)]
failures = []


class DummyListeners:
    """Listens on the user plan's free ports and counts connections made to them."""

    def __init__(self):
        self.socks, self.busy, self.accepted = [], [], 0
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
    check(f"failed: [proxy1] => Status code was 503 and not [200]: http://{PROXY_IPS[0]}:14001/health/readiness" in out,
          "proxy1 failed its readiness check")
    prev = before.get("proxy1", {}).get("release", "?")
    check(any(l.startswith(f"failed: [proxy1] => rolling update failed on proxy1 ({PROXY_IPS[0]}); rolled back to "
                           f"{prev}; hosts after it were not touched") for l in out),
          f"proxy1 rolled back to its previous release {prev}")
    check(any(l.startswith("proxy1 : ") and " failed=1 " in l and " rescued=1 " in l for l in out),
          "recap: proxy1 failed=1 rescued=1")
    for h in ("proxy2", "proxy3"):
        check(f"{h} : ok=0 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0" in out,
              f"recap: {h} not touched")
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


def recorded_pids():
    """{name: pid} of what the sandbox recorded: SB/pids/* and each proxy host's pid file."""
    out = {}
    pids_dir = os.path.join(SB, "pids")
    if os.path.isdir(pids_dir):
        for n in os.listdir(pids_dir):
            out[n] = int(open(os.path.join(pids_dir, n)).read())
    hosts = os.path.join(SB, "hosts")
    for h in sorted(os.listdir(hosts)) if os.path.isdir(hosts) else []:
        pidfile = os.path.join(hosts, h, "home", "run", "zdm-proxy.pid")
        if os.path.exists(pidfile):
            out[f"zdm-proxy@{h}"] = int(open(pidfile).read())
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
    check(listed == found and len(found) == 9,
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
    dummies = DummyListeners()
    user_before = user_readiness()
    print(f"user plan: dummy listeners on {len(dummies.socks)} ports; in use already: {dummies.busy}; "
          f"user proxies' readiness: {user_before}", flush=True)
    pids = {}
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
        if up.returncode == 0:
            status_and_collisions()
            failed_rolling_update()
    finally:
        pids = recorded_pids()
        down = subprocess.run(SANDBOX + ["down"] + PLAN, capture_output=True, text=True, timeout=120)
        print(down.stdout)
        check(down.returncode == 0, "scripts/sandbox down exits 0")
        left = [p for p in pids.values() if alive(p)]
        check(not left, f"sandbox down stopped every process it started (alive: {left})")
        dummies.close()
        check(dummies.accepted == 0, f"nothing connected to the user plan's ports ({dummies.accepted} connections)")
        user_after = user_readiness()
        check(all(user_after.get(ip) == 200 for ip, st in user_before.items() if st == 200),
              f"the user's sandbox proxies still answer readiness 200 ({user_before} -> {user_after})")
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
