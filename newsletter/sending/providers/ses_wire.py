"""What goes over the wire to SES v2 SendEmail and what comes back, without a connection.

botocore's client pays, on every call, for event hooks, parameter validation, the endpoint
ruleset, a new request object and its signer (1.7 ms of CPU a call on a 45 KB message
against a local stub). Here what a client resolves once (endpoint, region, credentials, CA
bundle, proxy) is resolved once per factory into a `Route`, and each message is only: its
JSON body (`send_email_body`), one SigV4 signature written as botocore's SigV4Auth writes
it, over the credentials' current values (`Signer`: refreshable credentials, an assumed
role's included, still refresh), and its answer read as botocore reads it (`AnswerReader`:
the MessageId, or botocore's rest-json parser for the rare error: its code from the
x-amzn-ErrorType header or the JSON `__type`/`code`). About 0.3 ms a message in all.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import os
from dataclasses import dataclass
from hashlib import sha256
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import botocore
from botocore.awsrequest import HeadersDict
from botocore.exceptions import ClientError
from botocore.httpsession import get_cert_path
from botocore.parsers import create_parser
from botocore.utils import get_environ_proxies, normalize_url_path

from newsletter.message.composer import Outgoing
from newsletter.sending.providers.base import SendError

SEND_PATH = "/v2/email/outbound-emails"  # sesv2 SendEmail: POST, rest-json
OPERATION = "SendEmail"
USER_AGENT = f"newsletter Botocore/{botocore.__version__}"

# InternalFailure is not here: the call may have sent the message before failing, and a
# retry could send it twice. It counts as uncertain, like any other 5xx.
RETRYABLE = {
    "TooManyRequestsException",
    "Throttling",
    "ThrottlingException",
    "LimitExceededException",
    "ServiceUnavailable",
}
FATAL = {
    "SendingPausedException",
    "AccountSuspendedException",
    "MailFromDomainNotVerifiedException",
    "NotFoundException",
    "BadRequestException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredTokenException",
    "AccessDenied",
}
SENDER_REFUSED = ("not verified", "authority to send", "sending authorization")


def convert(exc: ClientError) -> SendError:
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    text = f"SES {code}: {error.get('Message', '')}".strip()
    if code in FATAL:
        return SendError(text, fatal=True)
    if code == "MessageRejected":
        # about the sender (not verified, no authority to send from it; in the sandbox any
        # unverified address) nothing can go out; otherwise SES refused this one message
        about_sender = any(words in error.get("Message", "").lower() for words in SENDER_REFUSED)
        return SendError(text, fatal=about_sender)
    if code in RETRYABLE or status == 429:
        # a daily quota comes back as Throttling (v1), ThrottlingException or 429 alike
        if "daily" in error.get("Message", "").lower():
            return SendError(text + " (daily quota: the campaign stops and can be resumed later)", fatal=True)
        return SendError(text, retryable=True)
    if status >= 500:
        # the service failed while handling the call: it may or may not have sent
        return SendError(text, uncertain=True)
    return SendError(text)


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    headers: dict[str, str]  # Proxy-Authorization, when the proxy's URL names a user


@dataclass(frozen=True)
class Route:
    """Where SendEmail goes and how, resolved once: the endpoint botocore's client resolved
    (region or `[ses] endpoint_url`), its CA bundle and proxy, its timeouts."""

    url: str  # of SendEmail, as signed
    scheme: str
    host: str
    port: int
    target: str  # the request line's target: the path, or the whole URL through a plain-HTTP proxy
    proxy: Proxy | None
    cafile: str | None
    connect_timeout: float
    read_timeout: float


def send_url(endpoint_url: str) -> str:
    """SendEmail's URL under the endpoint, joined as botocore joins a rest-json path."""
    parts = urlsplit(endpoint_url)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}{SEND_PATH}"


def proxy_for(url: str, configured: dict[str, str] | None) -> Proxy | None:
    """The proxy botocore would use for `url`: the client's own, else HTTPS_PROXY/HTTP_PROXY
    (NO_PROXY respected). Only a proxy reached over plain HTTP is supported: http.client
    cannot speak TLS to the proxy and then to SES through it."""
    scheme = urlsplit(url).scheme
    proxies = configured or get_environ_proxies(url)
    address = proxies.get(scheme)
    if not address:
        return None
    if not address.startswith(("http:", "https:")):
        address = "http:" + address if address.startswith("//") else "http://" + address
    parts = urlsplit(address)
    if parts.scheme != "http" or not parts.hostname:
        raise SendError(
            f"SES: the proxy {parts.scheme}://{parts.hostname or ''} for {scheme} is not supported: "
            "give the proxy as http://host:port (the connection to SES through it stays TLS)",
            fatal=True,
        )
    headers = {}
    if parts.username and parts.password is not None:
        secret = base64.b64encode(f"{unquote(parts.username)}:{unquote(parts.password)}".encode()).decode()
        headers["Proxy-Authorization"] = f"Basic {secret}"
    return Proxy(parts.hostname, parts.port or 80, headers)


def route_for(endpoint_url: str, client_config: Any, ca_bundle: str | None) -> Route:
    """`ca_bundle`: the AWS configuration's (AWS_CA_BUNDLE or a profile's ca_bundle); else
    REQUESTS_CA_BUNDLE, else botocore's default bundle, in botocore's order."""
    url = send_url(endpoint_url)
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    proxy = proxy_for(url, getattr(client_config, "proxies", None))
    verify = ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or True
    return Route(
        url=url,
        scheme=parts.scheme,
        host=parts.hostname or "",
        port=parts.port or (443 if secure else 80),
        target=url if proxy and not secure else parts.path,
        proxy=proxy,
        cafile=get_cert_path(verify) if secure else None,
        connect_timeout=client_config.connect_timeout,
        read_timeout=client_config.read_timeout,
    )


def send_email_body(message: Outgoing, extra: bytes) -> bytes:
    """The SendEmail JSON; `extra` is the fixed fields (`fixed_fields`). The base64 of the
    message needs no JSON escaping, so it is joined in rather than encoded again."""
    head = json.dumps({"FromEmailAddress": message.sender, "Destination": {"ToAddresses": [message.recipient]}})
    data = base64.b64encode(message.data)
    return b"".join((head[:-1].encode(), extra, b', "Content": {"Raw": {"Data": "', data, b'"}}}'))


def fixed_fields(configuration_set: str | None, tags: tuple[tuple[str, str], ...]) -> bytes:
    fields: dict[str, Any] = {}
    if configuration_set:
        fields["ConfigurationSetName"] = configuration_set
    if tags:
        fields["EmailTags"] = [{"Name": k, "Value": v} for k, v in tags]
    return b"".join(b", " + json.dumps(k).encode() + b": " + json.dumps(v).encode() for k, v in fields.items())


class Signer:
    """SigV4 for SendEmail, header for header what botocore's SigV4Auth writes (a test holds
    them equal): its request object costs 0.1 ms a message, this 0.03, most of it the
    payload's SHA-256. `credentials` is botocore's object, asked for its current values at
    each signature so that temporary ones (an assumed role, a container's) still refresh."""

    def __init__(self, credentials: Any, signing_name: str, region: str, url: str):
        self.credentials = credentials
        self.scope_tail = f"{region}/{signing_name}/aws4_request"
        self.path = quote(normalize_url_path(urlsplit(url).path), safe="/~")
        self.host = host_header(url)
        self._key: tuple[str, str, bytes] = ("", "", b"")  # secret, day, the day's signing key

    def signing_key(self, secret: str, day: str) -> bytes:
        cached = self._key  # one read: threads share the signer
        if cached[:2] == (secret, day):
            return cached[2]
        key = f"AWS4{secret}".encode()
        for part in (day, *self.scope_tail.split("/")):
            key = hmac.new(key, part.encode(), sha256).digest()
        self._key = (secret, day, key)
        return key

    def sign(self, body: bytes, now: dt.datetime | None = None) -> dict[str, str]:
        frozen = self.credentials.get_frozen_credentials()
        stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
        signed = {"content-type": "application/json", "host": self.host, "x-amz-date": stamp}
        if frozen.token:
            signed["x-amz-security-token"] = frozen.token
        names = ";".join(signed)  # already in order
        canonical = "\n".join(
            ("POST", self.path, "", *(f"{k}:{' '.join(v.split())}" for k, v in signed.items()), "", names,
             sha256(body).hexdigest())
        )  # fmt: skip
        scope = f"{stamp[:8]}/{self.scope_tail}"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self.signing_key(frozen.secret_key, stamp[:8]), to_sign.encode(), sha256).hexdigest()
        headers = {"Content-Type": "application/json", "Host": self.host, "User-Agent": USER_AGENT, "X-Amz-Date": stamp}
        if frozen.token:
            headers["X-Amz-Security-Token"] = frozen.token
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, SignedHeaders={names}, Signature={signature}"
        )
        return headers


def host_header(url: str) -> str:
    """The Host header as botocore writes and signs it: lower case, the port only when not
    the scheme's default, an IPv6 address in brackets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


class AnswerReader:
    """SendEmail's answer: the MessageId, or the error as botocore's parser reads it."""

    def __init__(self, operation_model: Any):
        self.output_shape = operation_model.output_shape
        self.parser = create_parser(operation_model.service_model.resolved_protocol)

    def message_id(self, status: int, headers: list[tuple[str, str]], body: bytes) -> str:
        if status < 300:
            try:
                message_id = json.loads(body)["MessageId"]
            except (ValueError, KeyError, TypeError):
                message_id = None
            if not isinstance(message_id, str) or not message_id:
                raise SendError(
                    f"SES answered {status} without a MessageId: the message may have gone out", uncertain=True
                )
            return message_id
        answer = {"status_code": status, "headers": HeadersDict(headers), "body": body}
        raise convert(ClientError(self.parser.parse(answer, self.output_shape), OPERATION))
