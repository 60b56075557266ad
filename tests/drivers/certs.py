"""Test certificates made with the openssl CLI: a CA, server certificates for given IP
addresses, client certificates, and the bad ones (expired, signed by another CA, naming another
address). Every file is PEM in a directory of the caller's.

    pki = Pki(directory)
    ca = pki.ca("ca")                                   # ca.pem, ca.key
    pki.cert("node", ca, ips=["127.0.2.1"])             # node.pem, node.key
    pki.cert("client", ca, client=True)
    pki.cert("old", ca, ips=[...], expired=True)
"""
import os
import subprocess


def _run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Pki:
    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)

    def path(self, name, ext):
        return os.path.join(self.dir, f"{name}.{ext}")

    def ca(self, name):
        """A self-signed CA; returns its name."""
        _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
             "-subj", f"/CN=zdm test {name}", "-keyout", self.path(name, "key"),
             "-out", self.path(name, "pem"))
        return name

    def cert(self, name, ca, ips=(), dns=(), client=False, expired=False):
        """A certificate `name` signed by CA `ca` with IP/DNS subject alternative names."""
        key, csr, pem = self.path(name, "key"), self.path(name, "csr"), self.path(name, "pem")
        _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
             "-keyout", key, "-out", csr)
        ext = self.path(name, "ext")
        sans = [f"IP:{ip}" for ip in ips] + [f"DNS:{d}" for d in dns]
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            f.write(f"extendedKeyUsage={'clientAuth' if client else 'serverAuth'}\n")
            if sans:
                f.write("subjectAltName=" + ",".join(sans) + "\n")
        argv = ["openssl", "x509", "-req", "-in", csr, "-CA", self.path(ca, "pem"),
                "-CAkey", self.path(ca, "key"), "-CAcreateserial", "-out", pem, "-extfile", ext]
        # Expired: notAfter a day before notBefore (= now), which OpenSSL 3.0 accepts as -days -1.
        argv += ["-days", "-1" if expired else "30"]
        _run(*argv)
        return name
