"""X.509 certificates for the TLS tests, made with certtool (gnutls-bin)
into a directory in QEMU's tls-creds-x509 layout: ca-cert.pem,
server-cert.pem, server-key.pem, client-cert.pem, client-key.pem (the
same layout docs/operations.md tells administrators to make)."""
import os
import shutil
import subprocess
import tempfile

import tap


def require_certtool():
    if not shutil.which("certtool"):
        tap.skip("not installed: certtool (Debian: gnutls-bin)")


def _certtool(*args):
    subprocess.run(["certtool"] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def _template(d, name, lines):
    path = os.path.join(d, name + ".info")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


class CA:
    """A certificate authority in its own temporary directory."""

    def __init__(self, name="colo test CA"):
        require_certtool()
        self.dir = tempfile.mkdtemp(prefix="colo-tls-ca-")
        self.key = os.path.join(self.dir, "ca-key.pem")
        self.cert = os.path.join(self.dir, "ca-cert.pem")
        _certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", self.key)
        t = _template(self.dir, "ca", ["cn = %s" % name, "ca", "cert_signing_key", "expiration_days = 2"])
        _certtool("--generate-self-signed", "--load-privkey", self.key, "--template", t, "--outfile", self.cert)

    def issue(self, d, role, cn, ips=("127.0.0.1",), dns=("localhost",)):
        """@role-cert.pem and @role-key.pem (role: server or client) in @d,
        signed by this CA."""
        key = os.path.join(d, role + "-key.pem")
        cert = os.path.join(d, role + "-cert.pem")
        _certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", key)
        lines = ["cn = %s" % cn, "expiration_days = 2", "signing_key", "encryption_key",
                 "tls_www_%s" % role]
        lines += ["ip_address = %s" % ip for ip in ips] + ["dns_name = %s" % n for n in dns]
        t = _template(d, role + "-" + cn, lines)
        _certtool("--generate-certificate", "--load-privkey", key, "--load-ca-certificate", self.cert,
                  "--load-ca-privkey", self.key, "--template", t, "--outfile", cert)
        os.unlink(t)

    def pki(self, trust=None, server_cn="node1", client_cn="node2", **kw):
        """A directory with both endpoints' files signed by this CA, trusting
        @trust's CA certificate (default: this one)."""
        d = tempfile.mkdtemp(prefix="colo-pki-")
        shutil.copy((trust or self).cert, os.path.join(d, "ca-cert.pem"))
        self.issue(d, "server", server_cn, **kw)
        self.issue(d, "client", client_cn, **kw)
        return d

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)
