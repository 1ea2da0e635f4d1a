"""The lean SES path (providers/ses.py, ses_wire.py) on the wire: signatures, answers, errors.

moto cannot throttle, fail with a 5xx, hang up after reading a request or reset a connection
while it is written, so those answers come from a real HTTP server on loopback (`LocalSES`,
http.server) that answers SendEmail as SES does, header for header and body for body. The
signature is held equal to botocore's own SigV4Auth, and each error answer is converted
the same way whether the lean path or botocore's client read it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import socket
import ssl
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.config.delivery import SESSettings
from newsletter.message.composer import Outgoing
from newsletter.sending.providers import ses as ses_module
from newsletter.sending.providers.base import SendError
from newsletter.sending.providers.ses import SESFactory, convert
from newsletter.sending.providers.ses_wire import SEND_PATH, Signer, proxy_for, route_for

SENDER = "updates@news.cssrweb.org"


def message(n: int = 0, size: int = 2000) -> Outgoing:
    return Outgoing(SENDER, f"reader{n}@example.org", f"<m{n}@news.cssrweb.org>", b"x" * size)


def kind(exc: SendError) -> str:
    flags = [name for name in ("unavailable", "retryable", "uncertain", "fatal") if getattr(exc, name)]
    assert len(flags) <= 1, flags
    return flags[0] if flags else "failed"


# --- a local SES ------------------------------------------------------------------------------


class LocalSES:
    """SendEmail answered from a queue: (status, headers, body), "hang up" (the request read,
    no answer, the connection closed) or "close after" (answered, then the connection closed
    without saying so, as an idle keep-alive connection is). Empty queue: a MessageId."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.answers: deque = deque()
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.connections = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                owner.connections += 1

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests.append((self.path, dict(self.headers), body))
                answer = (
                    owner.answers.popleft()
                    if owner.answers
                    else (200, {}, {"MessageId": f"local-{len(owner.requests)}"})
                )
                if answer == "hang up":
                    self.close_connection = True
                    return
                close_after = answer[0] == "close after"
                status, headers, payload = answer[1] if close_after else answer
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", "x-amzn-RequestId": "req-1", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = close_after

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://localhost:{self.server.server_address[1]}"
        self.boto3_client = None
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def reset(self) -> None:
        self.answers.clear()
        self.requests.clear()
        self.connections = 0

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def local_ses_server():
    server = LocalSES()
    yield server
    server.close()


@pytest.fixture
def local_ses(local_ses_server, aws_env):
    local_ses_server.reset()
    return local_ses_server


def factory_for(url: str, **extra) -> SESFactory:
    return SESFactory(SESSettings(region="us-east-1", endpoint_url=url, **extra))


def send_one(url: str, msg: Outgoing | None = None) -> str:
    provider = factory_for(url).open()
    try:
        return provider.send(msg or message())
    finally:
        provider.close()


# --- 1. what goes out -------------------------------------------------------------------------


def test_the_request_is_botocore_s_send_email(local_ses):
    """The body botocore would serialise, signed, with the configuration set and tags."""
    provider = factory_for(local_ses.url, configuration_set="newsletter", tags=(("campaign", "year-end"),)).open()
    msg = Outgoing(SENDER, "amal@example.org", "<m@x>", "سلام\r\n".encode() * 100)
    assert provider.send(msg) == "local-1"
    path, headers, body = local_ses.requests[0]
    assert path == SEND_PATH
    assert json.loads(body) == {
        "FromEmailAddress": SENDER,
        "Destination": {"ToAddresses": ["amal@example.org"]},
        "ConfigurationSetName": "newsletter",
        "EmailTags": [{"Name": "campaign", "Value": "year-end"}],
        "Content": {"Raw": {"Data": base64.b64encode(msg.data).decode()}},
    }
    assert headers["Content-Type"] == "application/json"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert (
        "/us-east-1/ses/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="
        in headers["Authorization"]
    )


NOW = dt.datetime(2026, 12, 2, 17, 51, 54, tzinfo=dt.UTC)


def botocore_signature(credentials, url: str, body: bytes, host: str, monkeypatch) -> dict[str, str]:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW)
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json", "Host": host})
    SigV4Auth(credentials.get_frozen_credentials(), "ses", "eu-west-1").add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize(
    "url",
    [
        "https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails",
        "http://127.0.0.1:5000/v2/email/outbound-emails",
        "https://[::1]:8443/v2/email/outbound-emails",
        "https://ses.example.org/a b/~c/../d/v2/email/outbound-emails",
    ],
)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE/token+with=signs"])
def test_signature_is_botocore_s(url, token, monkeypatch):
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    signer = Signer(credentials, "ses", "eu-west-1", url)
    ours = signer.sign(b'{"a": 1}', NOW)
    theirs = botocore_signature(credentials, url, b'{"a": 1}', signer.host, monkeypatch)
    assert {k: v for k, v in ours.items() if k != "User-Agent"} == theirs


@settings(max_examples=40, deadline=None)
@given(
    body=st.binary(max_size=3000), secret=st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), min_size=1)
)
def test_signature_is_botocore_s_for_any_body_and_secret(body, secret):
    credentials = Credentials("AKID", secret)
    url = "https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails"
    signer = Signer(credentials, "ses", "eu-west-1", url)
    with pytest.MonkeyPatch.context() as monkeypatch:
        theirs = botocore_signature(credentials, url, body, signer.host, monkeypatch)
    # twice: the second signature uses the day's key kept from the first
    assert signer.sign(body, NOW)["Authorization"] == signer.sign(body, NOW)["Authorization"] == theirs["Authorization"]


def test_refreshed_credentials_are_used_at_the_next_signature():
    """An assumed role's credentials expire: each signature asks for the current ones."""
    issued = iter(["FIRST", "SECOND"])

    def refresh():
        expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()  # always due for refresh
        return {"access_key": next(issued), "secret_key": "s", "token": "t", "expiry_time": expiry}

    credentials = botocore.credentials.RefreshableCredentials.create_from_metadata(refresh(), refresh, "test")
    signer = Signer(credentials, "ses", "eu-west-1", "https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails")
    assert "Credential=SECOND/" in signer.sign(b"{}")["Authorization"]


# --- 2. answers and errors --------------------------------------------------------------------

ERRORS = [
    # (status, headers, body) as SES sends them, and what the campaign makes of them
    (
        400,
        {"x-amzn-ErrorType": "TooManyRequestsException:http://internal"},
        {"message": "Maximum sending rate exceeded."},
        "retryable",
    ),
    (429, {}, {"__type": "com.amazonaws.ses#ThrottlingException", "message": "Rate exceeded"}, "retryable"),
    (400, {}, {"__type": "MessageRejected", "message": "Email address is not verified: " + SENDER}, "fatal"),
    (400, {}, {"code": "MessageRejected", "message": "Illegal header 'X-Bad'."}, "failed"),
    (400, {"x-amzn-ErrorType": "BadRequestException"}, {"message": "Invalid tag value."}, "fatal"),
    (403, {"x-amzn-ErrorType": "UnrecognizedClientException"}, {"message": "The security token is invalid."}, "fatal"),
    (500, {"x-amzn-ErrorType": "InternalFailure"}, {"message": "An internal error occurred."}, "uncertain"),
    (502, {"Content-Type": "text/html"}, b"<html><body>Bad Gateway</body></html>", "uncertain"),
    (503, {}, b"", "uncertain"),
]


@pytest.mark.parametrize(("status", "headers", "body", "expected"), ERRORS)
def test_errors_read_as_botocore_reads_them(local_ses, status, headers, body, expected):
    local_ses.answers.extend([(status, headers, body)] * 2)
    with pytest.raises(SendError) as lean:
        send_one(local_ses.url)
    if local_ses.boto3_client is None:  # botocore's own client, made once: 0.1 s each
        local_ses.boto3_client = ses_module._client(SESSettings(region="us-east-1", endpoint_url=local_ses.url))
    with pytest.raises(ClientError) as boto:
        local_ses.boto3_client.send_email(
            FromEmailAddress=SENDER, Destination={"ToAddresses": ["a@example.org"]}, Content={"Raw": {"Data": b"x"}}
        )
    assert kind(lean.value) == expected, str(lean.value)
    assert str(lean.value) == str(convert(boto.value))


def test_an_answer_without_message_id_is_uncertain(local_ses):
    local_ses.answers.append((200, {}, b"<html>a captive portal</html>"))
    with pytest.raises(SendError) as caught:
        send_one(local_ses.url)
    assert kind(caught.value) == "uncertain"


def test_a_refused_connection_is_unavailable(aws_env):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: the connection is refused
        with pytest.raises(SendError) as caught:
            send_one(f"http://127.0.0.1:{port}")
    assert kind(caught.value) == "unavailable"
    assert "cannot connect" in str(caught.value)


def test_a_reply_lost_after_the_request_is_uncertain(local_ses):
    local_ses.answers.append("hang up")
    with pytest.raises(SendError) as caught:
        send_one(local_ses.url)
    assert kind(caught.value) == "uncertain"
    assert len(local_ses.requests) == 1  # the server had the whole request: it may have sent it


def test_a_connection_reset_while_writing_is_retryable(aws_env):
    """A server that reads nothing and resets the connection: the 16 MB request cannot have
    reached it whole, so nothing was sent and the message can be tried again."""
    listener = socket.create_server(("127.0.0.1", 0))

    def reset_after_a_while():
        conn, _ = listener.accept()
        time.sleep(0.3)  # the client's buffers fill and its write blocks
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()

    threading.Thread(target=reset_after_a_while, daemon=True).start()
    try:
        with pytest.raises(SendError) as caught:
            send_one(f"http://127.0.0.1:{listener.getsockname()[1]}", message(size=16_000_000))
    finally:
        listener.close()
    assert kind(caught.value) == "retryable", str(caught.value)


def test_one_connection_per_thread_kept_alive_and_renewed_when_the_server_closed_it(local_ses):
    provider = factory_for(local_ses.url).open()
    ids = [provider.send(message(n)) for n in range(5)]
    assert ids == [f"local-{n}" for n in range(1, 6)]
    assert local_ses.connections == 1
    # the server closes an idle connection without a word: the next message opens another,
    # rather than writing into the closed one and losing its answer (uncertain)
    local_ses.answers.append(("close after", (200, {}, {"MessageId": "before-close"})))
    assert provider.send(message(6)) == "before-close"
    time.sleep(0.1)
    assert provider.send(message(7)) == "local-7"
    assert local_ses.connections == 2
    provider.close()


def test_endpoint_and_credentials_resolved_once_whatever_the_threads(local_ses, monkeypatch):
    """Counted, not timed: 4 sending threads of 5 messages each, one factory."""
    counts = {"client": 0, "credentials": 0, "route": 0, "frozen": 0}

    def counting(name, real):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(ses_module, "_client", counting("client", ses_module._client))
    monkeypatch.setattr(ses_module, "route_for", counting("route", ses_module.route_for))
    monkeypatch.setattr(
        botocore.credentials.CredentialResolver, "load_credentials",
        counting("credentials", botocore.credentials.CredentialResolver.load_credentials),
    )  # fmt: skip
    monkeypatch.setattr(
        botocore.credentials.Credentials, "get_frozen_credentials",
        counting("frozen", botocore.credentials.Credentials.get_frozen_credentials),
    )  # fmt: skip
    factory = factory_for(local_ses.url)
    sent: list[str] = []

    def thread(t: int):
        provider = factory.open()
        sent.extend(provider.send(message(t * 10 + n)) for n in range(5))
        provider.close()

    threads = [threading.Thread(target=thread, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sent) == 20 and len(set(sent)) == 20
    assert local_ses.connections == 4
    # the boto3 client (GetAccount) and the send path each find the credentials once; the
    # endpoint is the client's, routed once; each signature asks for the current values
    assert counts == {"client": 1, "credentials": 2, "route": 1, "frozen": 20}


# --- 3. proxies -------------------------------------------------------------------------------


def test_proxy_from_the_environment(monkeypatch):
    for name in (
        "NO_PROXY",
        "no_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    url = "https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails"
    assert proxy_for(url, None) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://us%40er:p%3Ass@proxy.internal:3128")
    proxy = proxy_for(url, None)
    assert (proxy.host, proxy.port) == ("proxy.internal", 3128)
    assert proxy.headers == {"Proxy-Authorization": "Basic dXNAZXI6cDpzcw=="}  # us@er:p:ss
    monkeypatch.setenv("NO_PROXY", ".amazonaws.com")
    assert proxy_for(url, None) is None
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.internal:3129")
    with pytest.raises(SendError, match="not supported") as caught:
        proxy_for(url, None)
    assert caught.value.fatal


def test_a_plain_http_endpoint_through_a_proxy_is_asked_for_the_whole_url(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "proxy.internal:8080")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    config = type("Config", (), {"proxies": None, "connect_timeout": 10, "read_timeout": 30})()
    route = route_for("http://ses.internal:5000", config, None)
    assert route.proxy is not None and (route.proxy.host, route.proxy.port) == ("proxy.internal", 8080)
    assert route.target == "http://ses.internal:5000" + SEND_PATH
    assert (route.connect_timeout, route.read_timeout) == (10, 30)


def certificates(folder) -> tuple[str, ssl.SSLContext]:
    """A throwaway CA (its PEM file, for AWS_CA_BUNDLE) and a server context for localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def certificate(subject, issuer, key, signer, extensions):
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
            .not_valid_after(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        )  # fmt: skip
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = certificate(ca_name, ca_name, ca_key, ca_key, [(x509.BasicConstraints(ca=True, path_length=None), True)])
    alt = x509.SubjectAlternativeName([x509.DNSName("localhost")])
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    leaf = certificate(
        leaf_name, ca_name, key, ca_key, [(alt, False), (x509.BasicConstraints(ca=False, path_length=None), True)]
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem")
    return str(folder / "ca.pem"), context


class ConnectProxy:
    """A real HTTP CONNECT proxy on loopback: notes each CONNECT's request, then relays bytes."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                head += client.recv(4096)
            self.requests.append(head)
            host, port = head.split()[1].decode().rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._relay, args=(a, b), daemon=True).start()

    @staticmethod
    def _relay(source, target):
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self):
        self.listener.close()


def test_tls_through_a_connect_proxy_with_the_aws_ca_bundle(aws_env, tmp_path, monkeypatch):
    """HTTPS_PROXY and AWS_CA_BUNDLE are respected as botocore respects them: the endpoint is
    reached through the proxy's tunnel, its certificate checked against the bundle named."""
    ca_file, server_tls = certificates(tmp_path)
    server, proxy = LocalSES(server_tls), ConnectProxy()
    try:
        for name in ("NO_PROXY", "no_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", f"http://sender:secret@127.0.0.1:{proxy.port}")
        with pytest.raises(SendError) as caught:  # the CA is not known yet
            send_one(server.url)
        assert kind(caught.value) == "unavailable" and "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
        monkeypatch.setenv("AWS_CA_BUNDLE", ca_file)
        assert send_one(server.url) == "local-1"
    finally:
        server.close()
        proxy.close()
    port = server.server.server_address[1]
    assert [r.split()[:2] for r in proxy.requests] == [[b"CONNECT", f"localhost:{port}".encode()]] * 2
    assert b"Proxy-Authorization: Basic c2VuZGVyOnNlY3JldA==" in proxy.requests[1]  # sender:secret
    assert server.requests[0][1]["Host"] == f"localhost:{port}"


def test_what_stops_every_send_is_said_when_the_provider_opens(local_ses, tmp_path, monkeypatch):
    """No credentials, or a CA bundle that cannot be read: fatal at open (the campaign pauses
    before any message, with the reason), never a traceback in a sending thread."""
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(SendError) as caught:
        factory_for(local_ses.url.replace("http:", "https:")).open()
    assert caught.value.fatal and "missing.pem" in str(caught.value)
    monkeypatch.delenv("AWS_CA_BUNDLE")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(SendError) as caught:
        factory_for(local_ses.url).open()
    assert caught.value.fatal and "Unable to locate credentials" in str(caught.value)
    assert local_ses.requests == []


class Raw:
    """An answer's body as botocore's AWSResponse reads it."""

    def stream(self, **_):
        yield b'{"MessageId": "from-the-hook"}'


@pytest.mark.parametrize(
    ("region", "environment"),
    [
        ("eu-west-1", {}),
        ("cn-north-1", {"AWS_USE_FIPS_ENDPOINT": "true"}),
        ("il-central-1", {"AWS_USE_DUALSTACK_ENDPOINT": "true"}),
        ("us-gov-west-1", {"AWS_ENDPOINT_URL_SESV2": "https://ses.internal:8443/prefix"}),
    ],
)
def test_endpoint_and_scope_are_those_botocore_resolves_per_call(aws_env, monkeypatch, region, environment):
    """Real AWS by region (partitions, FIPS, dual-stack) or an endpoint from the environment:
    the URL and the credential scope the lean path signs are those of botocore's own call,
    seen at its before-send event, which answers both (so nothing leaves the machine)."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    factory = SESFactory(SESSettings(region=region))
    seen = []

    def answer(request, **_):
        authorization = request.headers["Authorization"]  # bytes from botocore, str from the lean path
        authorization = authorization.decode() if isinstance(authorization, bytes) else authorization
        seen.append((request.url, authorization.split("Credential=")[1].split(",")[0].split("/", 2)[2]))
        return botocore.awsrequest.AWSResponse(request.url, 200, {}, Raw())

    factory.client().meta.events.register("before-send.sesv2.SendEmail", answer)
    factory.client().send_email(
        FromEmailAddress=SENDER, Destination={"ToAddresses": ["a@example.org"]}, Content={"Raw": {"Data": b"x"}}
    )
    assert factory.open().send(message()) == "from-the-hook"  # the same handler answers the lean path
    assert len(seen) == 2 and seen[0] == seen[1], seen
