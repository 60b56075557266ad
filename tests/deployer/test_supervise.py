#!/usr/bin/python3
"""zdm-supervise (playbooks/files/zdm-supervise), the supervisor zdm-deploy runs the monitoring
stack under on hosts without systemd, with a real program:
- `start` from a shell that exits at once (as an SSH session does): the program keeps running in
  a session of its own; a second `start` changes nothing;
- the program killed (SIGKILL) is started again, after 1 s, then after 2 s when it dies again
  at once (backoff), and the log says so;
- `signal HUP` reaches the program (same pid), `restart` gives a new pid at once;
- `stop` ends the supervisor, the program and what the program started, removes the pid files;
  `status` then exits 3 and a second `stop` is a no-op.
Every process is found and ended by pid.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SUPERVISE = os.path.join(REPO, "playbooks", "files", "zdm-supervise")
sys.path.insert(0, os.path.join(REPO, "tests", "drivers"))
from harness import Checks  # noqa: E402

check = Checks()

# The supervised program: records each start and each SIGHUP, starts a grandchild, then waits.
PROGRAM = r"""
import os, signal, subprocess, sys, time
out = sys.argv[1]
def hup(*_):
    with open(out + ".hup", "a") as f:
        f.write(f"{os.getpid()}\n")
signal.signal(signal.SIGHUP, hup)
child = subprocess.Popen(["sleep", "300"])
with open(out + ".starts", "a") as f:
    f.write(f"{os.getpid()} {child.pid}\n")
while True:
    time.sleep(1)
"""


def sv(*args):
    r = subprocess.run([SUPERVISE, *args], capture_output=True, text=True, timeout=60)
    kv = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    return r.returncode, kv, r.stderr


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, ValueError):
        return False


def starts(out):
    try:
        return [tuple(map(int, line.split())) for line in open(out + ".starts")]
    except OSError:
        return []


def wait_for(cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def main():
    tmp = tempfile.mkdtemp(prefix="zdm-supervise-")
    pidfile, log, out = os.path.join(tmp, "run", "p.pid"), os.path.join(tmp, "logs", "p.log"), os.path.join(tmp, "p")
    prog = os.path.join(tmp, "program.py")
    open(prog, "w").write(PROGRAM)
    started = []
    try:
        # Started by a shell that exits right away, like a command run over SSH.
        r = subprocess.run(["/bin/sh", "-c", f"{SUPERVISE} start {pidfile} {log} -- /usr/bin/python3 {prog} {out}"],
                           capture_output=True, text=True, timeout=60)
        kv = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
        check(r.returncode == 0 and kv.get("state") == "started", f"start: {r.stdout.strip()} {r.stderr.strip()}")
        sup, child = int(kv.get("pid", 0)), int(kv.get("child", 0))
        started += [sup, child]
        check(wait_for(lambda: len(starts(out)) == 1, 10), "the program ran once")
        time.sleep(0.5)
        check(alive(sup) and alive(child), "supervisor and program outlive the shell that started them")
        check(os.getsid(sup) == sup and os.getsid(sup) != os.getsid(0),
              "the supervisor leads a session of its own (no SIGHUP when the SSH session ends)")
        check(os.getpgid(child) == child, "the program leads a process group of its own")

        rc, kv, _ = sv("start", pidfile, log, "--", "/usr/bin/python3", prog, out)
        check(rc == 0 and kv.get("state") == "running" and kv.get("pid") == str(sup) and kv.get("child") == str(child),
              f"a second start changes nothing ({kv})")

        # Crash twice in a row: started again after 1 s, then after 2 s.
        grandchild = starts(out)[0][1]
        started.append(grandchild)
        t0 = time.monotonic()
        os.kill(child, signal.SIGKILL)
        check(wait_for(lambda: len(starts(out)) == 2, 10), "killed, the program is started again")
        first_gap = time.monotonic() - t0
        child2 = starts(out)[1][0]
        started += list(starts(out)[1])
        t1 = time.monotonic()
        os.kill(child2, signal.SIGKILL)
        check(wait_for(lambda: len(starts(out)) == 3, 10), "killed again, started again")
        second_gap = time.monotonic() - t1
        started += list(starts(out)[2])
        check(0.8 < first_gap < 4 and 1.8 < second_gap < 5 and second_gap > first_gap + 0.5,
              f"backoff: {first_gap:.1f} s after the first crash, {second_gap:.1f} s after the second")
        text = open(log).read()
        check("starting it again in 1s" in text and "starting it again in 2s" in text,
              "the log records each exit and the delay before the next start")
        check(not alive(child) and not alive(child2), "crashed programs are gone")

        child3 = starts(out)[2][0]
        rc, kv, _ = sv("signal", pidfile, "HUP")

        def hups():
            try:
                return open(out + ".hup").read().split()
            except OSError:
                return []
        check(rc == 0 and wait_for(lambda: hups() == [str(child3)], 5) and alive(child3),
              f"signal HUP reaches the program, which keeps running ({hups()})")
        rc, kv, _ = sv("restart", pidfile)
        check(rc == 0 and kv.get("state") == "restarted" and kv.get("child") not in ("", str(child3)),
              f"restart: a new program process at once ({kv})")
        check(wait_for(lambda: len(starts(out)) == 4, 10) and "restarting" in open(log).read(),
              "restart is logged as requested, not as a crash")
        started += list(starts(out)[3])
        rc, kv, _ = sv("status", pidfile)
        check(rc == 0 and kv.get("state") == "running" and kv.get("child") == str(starts(out)[3][0]),
              f"status: running, with the program's pid ({kv})")

        rc, kv, _ = sv("stop", pidfile, "10")
        check(rc == 0 and kv.get("state") == "stopped", f"stop ({kv})")
        left = [p for p in started if alive(p)]
        check(wait_for(lambda: not [p for p in started if alive(p)], 5),
              f"stop ends the supervisor, the program and the program's own child (alive: {left})")
        check(not os.path.exists(pidfile) and not os.path.exists(pidfile + ".child"), "stop removes both pid files")
        rc, kv, _ = sv("status", pidfile)
        check(rc == 3 and kv.get("state") == "stopped", "status after stop: exit 3, stopped")
        rc, kv, _ = sv("stop", pidfile)
        check(rc == 0 and kv.get("state") == "stopped", "stop when stopped is a no-op")
    finally:
        for p in started:  # by pid, only what this test started
            if alive(p):
                os.kill(p, signal.SIGKILL)
    print(check.summary())
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
