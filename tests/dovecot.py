"""A real IMAP server for the tests: Dovecot in a temporary directory on loopback ports, with
its own certificate authority, test users and Maildirs, reached with TLS (implicit TLS on one
port, STARTTLS on another). Never skipped: a missing Dovecot fails (scripts/setup installs
the Debian package dovecot-imapd).

`server = DovecotServer().start()`; `server.add_user()` gives a fresh (user, password); `server.ca`
is the CA file a client trusts (SSL_CERT_FILE for the CLI); `server.client(user, password)`
is an imaplib connection that trusts it, for putting messages in and looking at folders.
"""

from __future__ import annotations

import datetime as dt
import imaplib
import ipaddress
import os
import pwd
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


USERS = 100  # the most tests one server serves


def _binary() -> str:
    found = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
    if found is None:
        raise RuntimeError("dovecot: not installed (scripts/setup installs the Debian package dovecot-imapd)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _certificates(folder: Path) -> Path:
    """A CA and a server certificate for localhost and 127.0.0.1 signed by it; returns the CA file."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "newsletter test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(folder / "key.pem", 0o600)
    return folder / "ca.pem"


class DovecotServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="newsletter-dovecot-"))
        self.tls_port = _free_port()
        self.starttls_port = _free_port()
        self.process: subprocess.Popen | None = None
        self.users = self.dir / "users"
        self.ca = _certificates(self.dir)

    def _config(self) -> str:
        # Mail is read and written as the test's own user, or as `nobody` when the tests run as
        # root (Dovecot refuses root for mail access); login processes as the same user outside root.
        root = os.geteuid() == 0
        mail_user = pwd.getpwnam("nobody") if root else pwd.getpwuid(os.geteuid())
        unprivileged = "" if root else (
            f"default_internal_user = {mail_user.pw_name}\ndefault_login_user = {mail_user.pw_name}\n"
        )
        dh = "ssl_dh = </usr/share/dovecot/dh.pem\n" if Path("/usr/share/dovecot/dh.pem").exists() else ""
        d = self.dir
        return f"""protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
instance_name = newsletter-test-{self.tls_port}
log_path = {d}/dovecot.log
{unprivileged}ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
{dh}ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{d}/mail/%u
first_valid_uid = {mail_user.pw_uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users}
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.starttls_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""

    def start(self) -> DovecotServer:
        root = os.geteuid() == 0
        os.chmod(self.dir, 0o755)  # the mail processes run as another user when we are root
        (self.dir / "mail").mkdir()
        if root:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir / "mail", nobody.pw_uid, nobody.pw_gid)
        self._unused = [(f"bounces-{n}-{secrets.token_hex(3)}", secrets.token_urlsafe(16)) for n in range(USERS)]
        self.users.write_text("".join(f"{name}:{{PLAIN}}{pw}::::::\n" for name, pw in self._unused), encoding="utf-8")
        config = self.dir / "dovecot.conf"
        config.write_text(self._config(), encoding="utf-8")
        self.process = subprocess.Popen(
            [_binary(), "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "stderr.log", "wb"),  # noqa: SIM115 - kept open by the server
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited at start: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.tls_port), timeout=1), socket.create_connection(
                    ("127.0.0.1", self.starttls_port), timeout=1
                ):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not listen within 20 s: {self.log()}")

    def log(self) -> str:
        parts = []
        for name in ("dovecot.log", "stderr.log"):
            path = self.dir / name
            if path.exists():
                parts.append(path.read_text(encoding="utf-8", errors="replace")[-3000:])
        return "\n".join(parts)

    def add_user(self) -> tuple[str, str]:
        """A user of its own for a test, with an empty Maildir. Dovecot reads its passwd-file at
        most once a second, so the users are all written before it starts."""
        return self._unused.pop()

    def logins(self, user: str) -> list[str]:
        """Dovecot's log lines of the user's logins (each says whether it came over TLS)."""
        text = (self.dir / "dovecot.log").read_text(encoding="utf-8", errors="replace")
        return [line for line in text.splitlines() if "Login: " in line and f"user=<{user}>" in line]

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def client(self, user: str, password: str) -> imaplib.IMAP4_SSL:
        conn = imaplib.IMAP4_SSL("127.0.0.1", self.tls_port, ssl_context=self.context(), timeout=10)
        conn.login(user, password)
        return conn

    def stop(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
