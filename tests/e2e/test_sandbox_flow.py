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
- `scripts/sandbox down` stops every process the sandbox started.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SB = os.environ.setdefault("ZDM_SANDBOX_DIR", os.path.join(REPO, "build", "e2e-sandbox"))
DEPLOY = os.path.join(REPO, "build", "deployer", "zdm-deploy")
INVENTORY = os.path.join(REPO, "inventory", "sandbox.ini")
KNOWN_HOSTS = os.path.join(SB, "ssh", "known_hosts")
ORIGIN_NODES, TARGET_NODES = "127.0.2.1,127.0.2.2,127.0.2.3", "127.0.3.1,127.0.3.2,127.0.3.3"
failures = []


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
                            "--contact-points", nodes, "--acked", acked_file],
                           capture_output=True, text=True, timeout=120)
        res = json.loads(r.stdout) if r.stdout.strip() else {}
        check(r.returncode == 0 and res.get("missing") == 0 and res.get("mismatched") == 0,
              f"{name}, read directly: every {what} present ({res})")
        results.append(res)
    return results


def failed_rolling_update():
    print("== failed rolling update: origin_contact_points=127.0.2.200 (no node there) ==", flush=True)
    before = status()
    check(len(before) == 3 and all(e.get("readiness_status") == 200 for e in before.values()),
          "before: three proxies ready")
    app_dir = os.path.join(SB, "app-failed-update")
    shutil.rmtree(app_dir, ignore_errors=True)  # a stale stop file or acked.tsv from an earlier run
    os.makedirs(app_dir)
    with open(os.path.join(app_dir, "app.err"), "w") as err:
        app = subprocess.Popen(["/usr/bin/python3", os.path.join(REPO, "tests", "drivers", "app.py"),
                                "--contact-points", "127.0.1.1,127.0.1.2,127.0.1.3", "--rate", "40",
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
                            "-e", "origin_contact_points=127.0.2.200", "-e", "readiness_retries=5",
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
    check("failed: [proxy1] => Status code was 503 and not [200]: http://127.0.1.1:14001/health/readiness" in out,
          "proxy1 failed its readiness check")
    prev = before.get("proxy1", {}).get("release", "?")
    check(any(l.startswith("failed: [proxy1] => rolling update failed on proxy1 (127.0.1.1); rolled back to "
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


def main():
    up = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "scripts", "sandbox.py"), "up"],
                        capture_output=True, text=True, timeout=1200)
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
            failed_rolling_update()
    finally:
        pids_dir = os.path.join(SB, "pids")
        pids = []
        if os.path.isdir(pids_dir):
            for n in os.listdir(pids_dir):
                pids.append(int(open(os.path.join(pids_dir, n)).read()))
        down = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "scripts", "sandbox.py"), "down"],
                              capture_output=True, text=True, timeout=120)
        print(down.stdout)
        check(down.returncode == 0, "scripts/sandbox down exits 0")
        alive = [p for p in pids if os.path.exists(f"/proc/{p}") and "zombie" not in open(f"/proc/{p}/status").read().lower()]
        check(not alive, f"sandbox down stopped every process it started (alive: {alive})")
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
