#!/usr/bin/python3
"""End-to-end: the README's main job. Runs `scripts/sandbox up` (clusters, sshd hosts, deploy,
python-driver app, rolling updates PRIMARY_ONLY → DUAL_ASYNC_ON_SECONDARY → primary TARGET),
then checks independently of the sandbox's own checks:
- exit code 0 and every phase check line is [ok] (routing from the proxies' metrics, config
  checksums from `zdm-deploy status` after each rolling update);
- the TALLY line: app_errors=0, acknowledged writes > 0, both clusters hold at least them;
- every acknowledged write read directly from origin and from target (verify_rows.py);
- `scripts/sandbox down` stops every process the sandbox started.
"""
import json
import os
import re
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SB = os.environ.setdefault("ZDM_SANDBOX_DIR", os.path.join(REPO, "build", "e2e-sandbox"))
failures = []


def check(ok, what):
    print(f"[{'ok' if ok else 'FAIL'}] {what}", flush=True)
    if not ok:
        failures.append(what)


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
        acked_file = os.path.join(SB, "app", "acked.tsv")
        for name, nodes in (("origin", "127.0.2.1,127.0.2.2,127.0.2.3"), ("target", "127.0.3.1,127.0.3.2,127.0.3.3")):
            r = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "tests", "drivers", "verify_rows.py"),
                                "--contact-points", nodes, "--acked", acked_file],
                               capture_output=True, text=True, timeout=120)
            res = json.loads(r.stdout) if r.stdout.strip() else {}
            check(r.returncode == 0 and res.get("acknowledged") == acked and res.get("missing") == 0,
                  f"{name}, read directly: every acknowledged write present ({res})")
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
