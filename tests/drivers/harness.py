"""Shared pieces of the real-driver test scripts: check lines, port waits, and a log handler
that collects the DataStax python-driver's warnings and errors.

Run the scripts with /usr/bin/python3 (the interpreter that has python3-cassandra).
"""
import logging
import socket
import time

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
