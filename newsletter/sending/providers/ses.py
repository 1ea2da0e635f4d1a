"""Amazon SES v2 (boto3 `sesv2`): SendEmail with the raw MIME message.

botocore's own retries are switched off so that pacing and backoff stay with the campaign
loop; SendEmail is not idempotent, so a call whose answer was lost is never repeated.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from newsletter.config.delivery import SESSettings
from newsletter.message.composer import Outgoing
from newsletter.sending.providers.base import SendError

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


def _client(settings: SESSettings):
    config = BotoConfig(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=30,
        max_pool_connections=64,
    )
    return boto3.session.Session().client(
        "sesv2", region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
    )


class SESProvider:
    def __init__(self, client, settings: SESSettings):
        self.client = client
        self.settings = settings

    def send(self, message: Outgoing) -> str:
        request: dict[str, Any] = {
            "FromEmailAddress": message.sender,
            "Destination": {"ToAddresses": [message.recipient]},
            "Content": {"Raw": {"Data": message.data}},
        }
        if self.settings.configuration_set:
            request["ConfigurationSetName"] = self.settings.configuration_set
        if self.settings.tags:
            request["EmailTags"] = [{"Name": k, "Value": v} for k, v in self.settings.tags]
        try:
            return self.client.send_email(**request)["MessageId"]
        except ClientError as exc:
            raise convert(exc) from exc
        except (ConnectTimeoutError, EndpointConnectionError) as exc:
            raise SendError(f"SES: cannot connect: {exc}", unavailable=True) from exc
        except (ReadTimeoutError, ConnectionClosedError) as exc:
            raise SendError(
                f"SES: no answer after the message was sent; it may have gone out: {exc}", uncertain=True
            ) from exc
        except NoCredentialsError as exc:
            raise SendError(
                f"SES: {exc} (set them as for any AWS tool: environment, profile or role)", fatal=True
            ) from exc

    def close(self) -> None:
        pass


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


class SESFactory:
    name = "ses"

    def __init__(self, settings: SESSettings, client=None):
        self.settings = settings
        self._client = client
        self._lock = threading.Lock()

    def client(self):
        with self._lock:
            if self._client is None:
                self._client = _client(self.settings)
            return self._client

    def max_rate(self) -> float | None:
        """SendQuota.MaxSendRate from GetAccount, when the endpoint offers it."""
        try:
            quota = self.client().get_account().get("SendQuota", {})
        except Exception:  # noqa: BLE001 - an endpoint without GetAccount (or no permission) sets no limit
            return None
        rate = quota.get("MaxSendRate")
        return float(rate) if rate and rate > 0 else None

    def open(self) -> SESProvider:
        return SESProvider(self.client(), self.settings)
