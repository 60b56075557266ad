"""Shared pieces of the real-driver test scripts: check lines, port waits, the processes a
script starts, the proxy's HTTP endpoints, python-driver sessions, and a log handler that
collects the DataStax python-driver's warnings and errors.

Run the scripts with /usr/bin/python3 (the interpreter that has python3-cassandra).
"""
import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

# Emitted by the driver whatever the server (the same against a real Cassandra 3.11): a default
# Cluster() with contact points, and the protocol negotiation down from DSE_V2 to v4.
ALLOWED_WARNINGS = (
    "Cluster.__init__ called with contact_points specified, but no load_balancing_policy",
    "Downgrading core protocol version from",
)


class Checks:
    """Prints one line per check and remembers the failures."""

    def __init__(self):
        self.failures = []

    def __call__(self, ok, what):
        print(f"[{'ok' if ok else 'FAIL'}] {what}", flush=True)
        if not ok:
            self.failures.append(what)
        return ok

    def summary(self):
        """The closing line test runners read: 'N passed, N failed'."""
        return f"{0 if self.failures else 1} passed, {1 if self.failures else 0} failed"


class DriverLogCollector(logging.Handler):
    """Collects the driver's WARNING and ERROR records, except ALLOWED_WARNINGS."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        msg = record.getMessage()
        if record.levelno == logging.WARNING and any(a in msg for a in ALLOWED_WARNINGS):
            return
        self.records.append(f"{record.levelname} {record.name}: {msg}")


def wait_port(host, port, timeout=20.0):
    """True once host:port accepts a TCP connection, False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def add_connection_args(ap):
    """Adds --username/--password and --tls-ca/--tls-cert/--tls-key to an argparse parser."""
    ap.add_argument("--username", help="PLAIN text authentication")
    ap.add_argument("--password")
    ap.add_argument("--tls-ca", help="PEM CA: TLS on, the server's certificate verified against it")
    ap.add_argument("--tls-cert", help="PEM client certificate (mutual TLS)")
    ap.add_argument("--tls-key", help="PEM key of --tls-cert")


def connection_options(args):
    """Cluster(**kwargs) for the options of add_connection_args()."""
    kw = {}
    if args.username:
        from cassandra.auth import PlainTextAuthProvider
        kw["auth_provider"] = PlainTextAuthProvider(args.username, args.password or "")
    if args.tls_ca:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(args.tls_ca)
        if args.tls_cert:
            ctx.load_cert_chain(args.tls_cert, args.tls_key)
        kw["ssl_context"] = ctx
    return kw


class Processes:
    """The processes a test script starts, by name, each writing to LOG_DIR/NAME.log. Stopped
    by pid only: SIGTERM, then SIGKILL after 15 s."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.procs = {}

    def start(self, name, argv):
        log = open(os.path.join(self.log_dir, f"{name}.log"), "a")
        log.write(f"\n==== {' '.join(argv)}\n")
        log.flush()
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        return self.procs[name]

    def stop(self, name):
        p = self.procs.pop(name, None)
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name)


def http_json(url, method="GET", body=None, timeout=10, headers=None):
    """The JSON answer of `url` (None for an empty one); raises urllib.error.HTTPError on >= 400."""
    req = urllib.request.Request(url, method=method, headers=headers or {},
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def readiness(metrics_addr):
    """(HTTP status, JSON body) of the proxy's /health/readiness at "ip:port"; (None, None)
    when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{metrics_addr}/health/readiness", timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
    except OSError:
        return None, None


def metric_sum(metrics_addr, prefix, label=""):
    """The sum of the proxy's samples at "ip:port" whose line starts with `prefix` and
    contains `label` (e.g. 'reason="node_failed"')."""
    with urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith(prefix) and label in l)


def python_session(hosts, port, timeout=10, credentials=None, **cluster_options):
    """(Cluster, Session) of the DataStax python-driver on `hosts` only, failures not retried
    (each is seen by the test), requests timing out after `timeout` s."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import FallthroughRetryPolicy, WhiteListRoundRobinPolicy
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy(hosts),
                               retry_policy=FallthroughRetryPolicy(), request_timeout=timeout)
    if credentials:
        cluster_options["auth_provider"] = PlainTextAuthProvider(*credentials)
    c = Cluster(hosts, port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile}, **cluster_options)
    return c, c.connect()


def run_scenarios(scenarios, setup, check, procs, log_dir, argv):
    """Runs `setup()`, then each (name, fn) of `scenarios` (only those named by `--only A,B` in
    `argv`); an exception fails its scenario, not the run. Stops every process of `procs`
    at the end. Returns the exit status (1 if a check failed); prints where logs are kept."""
    only = set(argv[argv.index("--only") + 1].split(",")) if "--only" in argv else None
    try:
        setup()
        for name, fn in scenarios:
            if only and name not in only:
                continue
            t0 = time.monotonic()
            print(f"== {name} ==", flush=True)
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                check(False, f"{name}: {e!r}")
            print(f"   ({name}: {time.monotonic() - t0:.0f} s)", flush=True)
    finally:
        procs.stop_all()
    if check.failures:
        print(f"logs kept in {log_dir}")
    print(check.summary())
    return 1 if check.failures else 0
