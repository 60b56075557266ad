#!/usr/bin/python3
"""scripts/sandbox without a sandbox: collision refusal and truthful status, in seconds.

On an address plan of its own (127.15.x.x) and a temporary state directory, with a listener of
this test's on one of the plan's ports (127.15.2.1:9042, where origin node 1 would listen):
- `up` refuses in one line that names the address and this test's pid, exits 3, and starts
  nothing (no recorded processes, no inventory written);
- `status` does not say "not running" while that port answers: it reports the port as served
  and exits 2 (partly running);
- once the listener is closed, `status` says "not running" and exits 1;
- a --net outside loopback is refused;
- `scripts/sandbox up` builds exactly the binaries sandbox.py's phases run (a fresh clone has
  nothing else built: a missing one failed phase 2 there while the tests' full build hid it).
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SANDBOX = ["/usr/bin/python3", os.path.join(REPO, "scripts", "sandbox.py")]
sys.path.insert(0, os.path.join(REPO, "tests", "drivers"))
from harness import Checks  # noqa: E402

check = Checks()


def main():
    tmp = tempfile.mkdtemp(prefix="zdm-sandbox-cli-")
    plan = ["--net", "127.15", "--dir", os.path.join(tmp, "sb"), "--inventory", os.path.join(tmp, "inv.ini")]
    env = dict(os.environ, ZDM_SANDBOX_REGISTRY=os.path.join(tmp, "registry"))
    listener = socket.socket()
    listener.bind(("127.15.2.1", 9042))
    listener.listen(8)
    try:
        r = subprocess.run(SANDBOX + ["up"] + plan, capture_output=True, text=True, timeout=60, env=env)
        lines = r.stdout.strip().splitlines()
        check(r.returncode == 3, f"up on a plan whose port is taken exits 3 (got {r.returncode})")
        check(len(lines) == 1 and "127.15.2.1:9042" in lines[0] and f"pid {os.getpid()}" in lines[0],
              f"one line naming the address and the holder's pid: {lines}")
        check(not os.path.exists(os.path.join(tmp, "sb", "pids")) and not os.path.exists(os.path.join(tmp, "inv.ini")),
              "nothing was started and no inventory written")
        r = subprocess.run(SANDBOX + ["status"] + plan, capture_output=True, text=True, timeout=60, env=env)
        print(r.stdout)
        check(r.returncode == 2 and "not running" not in r.stdout
              and "127.15.2.1:9042" in r.stdout and "answers" in r.stdout,
              f"status while a port of the plan answers: exit 2, the port reported as answering (exit {r.returncode})")
    finally:
        listener.close()
    r = subprocess.run(SANDBOX + ["status"] + plan, capture_output=True, text=True, timeout=60, env=env)
    check(r.returncode == 1 and "not running" in r.stdout, f"status with nothing running: exit 1, 'not running' ({r.stdout.strip()})")
    r = subprocess.run(SANDBOX + ["status", "--net", "10.0"], capture_output=True, text=True, timeout=60, env=env)
    check(r.returncode != 0 and "loopback" in (r.stdout + r.stderr), "a --net outside 127/8 is refused")
    shutil.rmtree(tmp, ignore_errors=True)
    import re
    built = re.search(r'scripts/build" ([\w\- ]+)', open(os.path.join(REPO, "scripts", "sandbox")).read())
    sys.path.insert(0, os.path.join(REPO, "scripts"))
    import sandbox as sb  # noqa: E402
    check(built is not None and set(built.group(1).split()) == set(sb.NEEDED_BINARIES),
          f"scripts/sandbox builds what the sandbox runs ({built.group(1).split() if built else None} vs "
          f"{sorted(sb.NEEDED_BINARIES)})")
    print(check.summary())
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
