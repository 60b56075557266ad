#!/usr/bin/python3
"""deployer_ssh_proxies (ctest): zdm-deploy against real sshd hosts running real proxies.

  usage: test_deploy_hosts.py BUILD_DIR

Address plan 127.21.x.x (its own): proxies' sshd on 127.21.1.1-2:2222 (the proxies listen there
on 9042/14001), origin zdm-testcluster 127.21.2.1, target 127.21.3.1, both with authentication.

The inventory is written as Ansible users keep one: a host range (proxy[1:2]), host_vars/ for
each host's address and home, group_vars/all.yml, and group_vars/proxies/ with the clusters'
passwords in a vault-encrypted file (encrypted here by an independent implementation: Python's
hashlib PBKDF2 + cryptography's AES-CTR + hmac). Checks:
- without --vault-password-file the run is refused naming the encrypted file; with it on the
  command line the proxies deploy and become ready;
- a passphrase-protected key with no TTY: a clear error naming the key; the same key in an
  ssh-agent (ssh-add given the passphrase through SSH_ASKPASS): the run connects;
- while the deploy runs and while the proxies run, no process's /proc/PID/cmdline holds a
  password (the proxy's configuration file does, mode 0600), nor does the proxy's log;
- logs -n N (the last N lines of each host, host-prefixed), logs --since (only lines from the
  cutoff on), logs -f (a line appended on the host shows up; the run is killed by pid and its
  remote tail goes away with it);
- teardown --yes stops the proxies.
Everything started here is stopped by pid at the end.
"""
import getpass
import hashlib
import hmac
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # python3-cryptography

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
DEPLOY = os.path.join(BUILD, "deployer", "zdm-deploy")
TESTCLUSTER = os.path.join(BUILD, "testcluster", "zdm-testcluster")
PROXY = os.path.join(BUILD, "proxy", "zdm-proxy")
SSH_PORT, CQL_PORT, METRICS_PORT = 2222, 9042, 14001
PROXIES = [("proxy1", "127.21.1.1"), ("proxy2", "127.21.1.2")]
ORIGIN, TARGET = "127.21.2.1", "127.21.3.1"
# Unique per run, so a hit in /proc can only come from this test's deployment.
ORIGIN_PASSWORD = "orig-" + secrets.token_hex(8)
TARGET_PASSWORD = "targ-" + secrets.token_hex(8)
SECRETS = (ORIGIN_PASSWORD, TARGET_PASSWORD)
VAULT_PASSWORD = "vault " + secrets.token_hex(4)
KEY_PASSPHRASE = "key " + secrets.token_hex(4)

T = tempfile.mkdtemp(prefix="zdm_deployer_hosts.")
os.chmod(T, 0o755)
started = []  # (name, Popen) of what this test started, stopped by pid at the end
failures = []


def check(ok, what, detail=""):
    print(f"[{'ok' if ok else 'FAIL'}] {what}", flush=True)
    if not ok:
        failures.append(what)
        if detail:
            print(detail[-4000:], flush=True)
    return ok


def start(name, argv, env=None):
    log = open(os.path.join(T, name + ".log"), "ab")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True, env=env)
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


def vault_encrypt(plaintext, password):
    """Ansible Vault 1.1 (AES256), written from the format's description: PBKDF2-HMAC-SHA256
    (10000 rounds, 80 bytes: AES key, HMAC key, CTR IV), PKCS7, AES-256-CTR, HMAC-SHA256 of the
    ciphertext; salt, HMAC and ciphertext hex lines, hexlified again, 80 columns."""
    salt = os.urandom(32)
    km = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 10000, 80)
    pad = 16 - len(plaintext) % 16
    data = plaintext.encode() + bytes([pad]) * pad
    enc = Cipher(algorithms.AES(km[:32]), modes.CTR(km[64:80])).encryptor()
    ct = enc.update(data) + enc.finalize()
    mac = hmac.new(km[32:64], ct, hashlib.sha256).hexdigest()
    body = (salt.hex() + "\n" + mac + "\n" + ct.hex()).encode().hex()
    return "$ANSIBLE_VAULT;1.1;AES256\n" + "\n".join(body[i:i + 80] for i in range(0, len(body), 80)) + "\n"


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def home(name):
    return os.path.join(T, "hosts", name, "home")


def proxy_log(name):
    return os.path.join(home(name), "logs", "zdm-proxy.log")


def deploy(*args, env=None, timeout=240):
    argv = [DEPLOY, *args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                       start_new_session=True, env=env)
    with open(os.path.join(T, "commands.log"), "a") as f:
        f.write(f"$ {' '.join(argv)}\n--- exit {r.returncode}\n{r.stdout}{r.stderr}\n")
    return r


def base_env():
    env = dict(os.environ)
    env.pop("SSH_AUTH_SOCK", None)  # only the agent this test starts, when it does
    return env


def cmdlines():
    """{pid: cmdline} of every process on the machine (the hosts are loopback sshd's here) but
    the ones this test started itself (the test clusters take --auth USER:PASSWORD)."""
    out = {}
    own = {str(p.pid) for _, p in started}
    for pid in os.listdir("/proc"):
        if pid.isdigit() and pid not in own:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    out[int(pid)] = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                pass
    return out


class CmdlineWatch:
    """Scans every process's cmdline for the secrets every 20 ms while it runs."""

    def __init__(self):
        self.hits, self.scans, self.stop = [], 0, False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop:
            for pid, cmd in cmdlines().items():
                if any(s in cmd for s in SECRETS):
                    self.hits.append((pid, cmd))
            self.scans += 1
            time.sleep(0.02)

    def close(self):
        self.stop = True
        self.thread.join()


def readiness(ip):
    try:
        with urllib.request.urlopen(f"http://{ip}:{METRICS_PORT}/health/readiness", timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def setup():
    for ip, port in [(ip, p) for _, ip in PROXIES for p in (SSH_PORT, CQL_PORT, METRICS_PORT)] + \
            [(ORIGIN, CQL_PORT), (TARGET, CQL_PORT)]:
        if port_busy(ip, port):
            raise SystemExit(f"deployer_ssh_proxies: {ip}:{port} is in use (another run of this test?)")
    for path in (DEPLOY, TESTCLUSTER, PROXY):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"deployer_ssh_proxies: not built: {path}")
    start("origin", [TESTCLUSTER, "--cluster-name", "origin", "--nodes", ORIGIN, "--port", str(CQL_PORT),
                     "--auth", f"zdm_origin:{ORIGIN_PASSWORD}"])
    start("target", [TESTCLUSTER, "--cluster-name", "target", "--nodes", TARGET, "--port", str(CQL_PORT),
                     "--auth", f"zdm_target:{TARGET_PASSWORD}"])

    ssh = os.path.join(T, "ssh")
    os.makedirs(ssh)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{ssh}/id_plain"], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", KEY_PASSPHRASE, "-f", f"{ssh}/id_pass"], check=True)
    write(f"{ssh}/authorized_keys", open(f"{ssh}/id_plain.pub").read() + open(f"{ssh}/id_pass.pub").read())
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)
    known = []
    for name, ip in PROXIES:
        hdir = os.path.join(T, "hosts", name)
        os.makedirs(os.path.join(hdir, "home"))
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{hdir}/hostkey"], check=True)
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
            raise SystemExit(f"deployer_ssh_proxies: sshd on {ip}:{SSH_PORT} did not start")
    for ip in (ORIGIN, TARGET):
        if not wait_port(ip, CQL_PORT, 30):
            raise SystemExit(f"deployer_ssh_proxies: test cluster node {ip}:{CQL_PORT} did not start")

    # The inventory, as Ansible users keep one.
    inv = os.path.join(T, "inv")
    write(f"{inv}/hosts.ini", "[proxies]\nproxy[1:2]\n")
    write(f"{inv}/group_vars/all.yml",
          f"ansible_port: {SSH_PORT}\nansible_user: {getpass.getuser()}\n"
          f"ansible_ssh_private_key_file: {ssh}/id_plain\n")
    for name, ip in PROXIES:
        write(f"{inv}/host_vars/{name}.yml", f"ansible_host: {ip}\nzdm_proxy_home_dir: {home(name)}\n")
    write(f"{inv}/group_vars/proxies/clusters.yml",
          f"origin_contact_points: {ORIGIN}\norigin_port: {CQL_PORT}\norigin_username: zdm_origin\n"
          f"target_contact_points: {TARGET}\ntarget_port: {CQL_PORT}\ntarget_username: zdm_target\n"
          "pause_between_restarts_in_seconds: 0\n")
    write(f"{inv}/group_vars/proxies/secrets.yml",
          vault_encrypt(f"origin_password: {ORIGIN_PASSWORD}\ntarget_password: {TARGET_PASSWORD}\n",
                        VAULT_PASSWORD), 0o600)
    write(os.path.join(T, "vault-pass"), VAULT_PASSWORD + "\n", 0o600)
    write(os.path.join(T, "ping.yml"), "- hosts: proxies\n  tasks:\n    - name: ping\n      command: \"true\"\n")
    return f"{inv}/hosts.ini", f"{ssh}/known_hosts"


def main():
    inventory, known_hosts = setup()
    common = ["-i", inventory, "--known-hosts", known_hosts, "--ssh-config", "none"]
    vault = ["--vault-password-file", os.path.join(T, "vault-pass")]
    secrets_file = os.path.join(T, "inv", "group_vars", "proxies", "secrets.yml")

    print("== vault ==", flush=True)
    r = deploy("deploy", *common)
    check(r.returncode == 4 and f"{secrets_file}: encrypted with Ansible Vault: run with --vault-password-file"
          in r.stderr, f"without --vault-password-file: refused naming the encrypted file (exit {r.returncode})",
          r.stdout + r.stderr)
    r = deploy("deploy", *common, "--vault-password-file", os.path.join(T, "no-such-file"))
    check(r.returncode != 0 and "no-such-file" in r.stdout + r.stderr,
          f"a missing vault password file is named (exit {r.returncode})", r.stdout + r.stderr)

    print("== passphrase-protected key ==", flush=True)
    key = os.path.join(T, "ssh", "id_pass")
    r = deploy("run", os.path.join(T, "ping.yml"), *common, *vault, "--limit", "proxy1",
               "-e", f"ansible_ssh_private_key_file={key}", env=base_env(), timeout=60)
    out = r.stdout + r.stderr
    check(r.returncode == 4 and key in out and "passphrase" in out,
          f"no TTY, no agent: a clear error naming the key (exit {r.returncode})", out)
    print("\n".join(l for l in out.splitlines() if key in l), flush=True)
    agent_sock = os.path.join(T, "agent.sock")
    agent = start("ssh-agent", ["ssh-agent", "-D", "-a", agent_sock])
    for _ in range(100):
        if os.path.exists(agent_sock):
            break
        time.sleep(0.05)
    askpass = write(os.path.join(T, "askpass.sh"), f"#!/bin/sh\necho '{KEY_PASSPHRASE}'\n", 0o700)
    env = base_env()
    env.update(SSH_AUTH_SOCK=agent_sock, SSH_ASKPASS=askpass, SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    a = subprocess.run(["ssh-add", key], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       start_new_session=True, env=env, timeout=30)
    check(a.returncode == 0, "ssh-add took the key (passphrase through SSH_ASKPASS)", a.stdout + a.stderr)
    r = deploy("run", os.path.join(T, "ping.yml"), *common, *vault, "--limit", "proxy1",
               "-e", f"ansible_ssh_private_key_file={key}", env=env, timeout=60)
    check(r.returncode == 0 and "proxy1 : ok=1" in r.stdout,
          f"the same key in ssh-agent: connects (exit {r.returncode})", r.stdout + r.stderr)
    agent.terminate()

    print("== deploy with --vault-password-file; secrets in no cmdline ==", flush=True)
    watch = CmdlineWatch()
    t0 = time.monotonic()
    r = deploy("deploy", *common, *vault, env=base_env())
    deploy_s = time.monotonic() - t0
    watch.close()
    if not check(r.returncode == 0, f"deploy with --vault-password-file exits 0 ({deploy_s:.1f} s)",
                 r.stdout + r.stderr):
        return
    check(all(readiness(ip) == 200 for _, ip in PROXIES), "both proxies ready")
    check(not watch.hits, f"no process's cmdline held a password during the deploy ({watch.scans} scans)",
          "\n".join(f"pid {p}: {c}" for p, c in watch.hits[:5]))
    hits = [(p, c) for p, c in cmdlines().items() if any(s in c for s in SECRETS)]
    check(not hits, "no process's cmdline holds a password while the proxies run",
          "\n".join(f"pid {p}: {c}" for p, c in hits[:5]))
    for name, _ in PROXIES:
        conf = os.path.join(home(name), "current", "zdm-proxy.yml")
        try:
            text, mode = open(conf).read(), stat.S_IMODE(os.stat(conf).st_mode)
        except OSError as e:
            text, mode = str(e), None
        check(ORIGIN_PASSWORD in text and TARGET_PASSWORD in text and mode == 0o600,
              f"{name}: the configuration file holds the passwords (mode {oct(mode) if mode else '?'})")
        pid_file = os.path.join(home(name), "run", "zdm-proxy.pid.child")
        try:
            pid = int(open(pid_file).read().strip())
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except (OSError, ValueError) as e:
            cmd = f"? {e}"
        check("zdm-proxy" in cmd and not any(s in cmd for s in SECRETS),
              f"{name}: the proxy runs ({cmd.strip()[:100]}), no password in its argv")
        log = open(proxy_log(name)).read()
        check(not any(s in log for s in SECRETS), f"{name}: no password in the proxy's log")

    print("== logs -n ==", flush=True)
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    for name, _ in PROXIES:
        with open(proxy_log(name), "a") as f:
            for i in range(5):
                f.write(f'time="{now}.000+00:00" level=info msg="n-marker {name} {i}"\n')
    r = deploy("logs", *common, *vault, "-n", "3")
    lines = r.stdout.splitlines()
    for name, _ in PROXIES:
        mine = [l for l in lines if l.startswith(f"[{name}] ")]
        last = open(proxy_log(name)).read().splitlines()[-3:]
        check(r.returncode == 0 and [l[len(name) + 3:] for l in mine] == last,
              f"logs -n 3: {name}'s last 3 lines, prefixed [{name}]", r.stdout + r.stderr)

    print("== logs --since ==", flush=True)
    for name, _ in PROXIES:
        with open(proxy_log(name), "a") as f:
            f.write(f'time="2001-01-01T00:00:00.000+00:00" level=info msg="ancient-marker {name}"\n')
            f.write("  a continuation line of the ancient one\n")
            now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            f.write(f'time="{now}.000+00:00" level=info msg="recent-marker {name}"\n')
    r = deploy("logs", *common, *vault, "--since", "10m", "-n", "1000")
    out = r.stdout
    check(r.returncode == 0 and all(f"recent-marker {n}" in out for n, _ in PROXIES)
          and "ancient-marker" not in out and "continuation" not in out
          and all(f"n-marker {n} 0" in out for n, _ in PROXIES),
          "logs --since 10m: the recent lines, not the ancient one nor its continuation", out + r.stderr)
    stamps = re.findall(r'time="([0-9T:-]{19})', out)
    cutoff = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 11 * 60))
    check(stamps and min(stamps) >= cutoff, f"logs --since 10m: every line from the cutoff on ({len(stamps)} lines)")
    r = deploy("logs", *common, *vault, "--since", "2001-01-01T00:00:00", "-n", "1000", "--limit", "proxy1")
    check(r.returncode == 0 and "ancient-marker proxy1" in r.stdout and "proxy2" not in r.stdout,
          "logs --since an ISO time --limit proxy1: the ancient line too, proxy1 only", r.stdout + r.stderr)

    print("== logs -f ==", flush=True)
    marker = "follow-marker " + secrets.token_hex(4)
    p = subprocess.Popen([DEPLOY, "logs", *common, *vault, "-f", "-n", "1", "--limit", "proxy2"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                         start_new_session=True, env=base_env())
    got = []
    reader = threading.Thread(target=lambda: [got.append(l) for l in p.stdout], daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    check(bool(got), "logs -f: the last line first")
    with open(proxy_log("proxy2"), "a") as f:
        f.write(f'time="{time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())}.000+00:00" level=info msg="{marker}"\n')
    deadline = time.monotonic() + 15
    while not any(marker in l for l in got) and time.monotonic() < deadline:
        time.sleep(0.05)
    check(any(l.startswith("[proxy2] ") and marker in l for l in got),
          "logs -f: a line appended on the host appears, prefixed [proxy2]", "".join(got))
    log2 = proxy_log("proxy2")
    running = [(q, c) for q, c in cmdlines().items() if "tail" in c and log2 in c]
    check(bool(running), f"logs -f: its tail runs on the host ({len(running)} process(es))")
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    check(True, f"logs -f killed by pid {p.pid}")
    deadline = time.monotonic() + 10
    tails = []
    while time.monotonic() < deadline:
        tails = [(q, c) for q, c in cmdlines().items() if "tail" in c and log2 in c]
        if not tails:
            break
        time.sleep(0.1)
    check(not tails, "logs -f killed: its tail on the host is gone too",
          "\n".join(f"pid {q}: {c}" for q, c in tails))

    print("== teardown ==", flush=True)
    r = deploy("teardown", *common, *vault, "--yes")
    check(r.returncode == 0, f"teardown --yes exits 0", r.stdout + r.stderr)
    deadline = time.monotonic() + 15
    while any(readiness(ip) is not None for _, ip in PROXIES) and time.monotonic() < deadline:
        time.sleep(0.2)
    check(all(readiness(ip) is None for _, ip in PROXIES), "the proxies are stopped")


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
    finally:
        cleanup()
    print(f"\ndeployer_ssh_proxies: {time.monotonic() - t0:.1f} s; logs in {T}" if failures else
          f"\ndeployer_ssh_proxies: all checks passed ({time.monotonic() - t0:.1f} s)")
    if not failures:
        shutil.rmtree(T, ignore_errors=True)
    sys.exit(1 if failures else 0)
