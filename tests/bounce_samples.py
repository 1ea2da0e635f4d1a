"""Mail that comes back to a bounce mailbox, written the way real mail systems write it: RFC 3464
DSNs (Postfix's current form), Postfix's older free-form notice, Exim, qmail (QSBMF), an ARF
feedback report (RFC 5965), an out-of-office reply, a read receipt and a mailed unsubscribe.

Each function returns the bytes as the mailbox holds them after final delivery (Return-Path and
Delivered-To added by the receiving MTA). `original` is the head of the message we sent, as
bounces quote it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from email.utils import format_datetime

SENDER = "updates@news.cssrweb.org"


def _now() -> str:
    return format_datetime(dt.datetime.now(dt.UTC))


def _id(host: str) -> str:
    return f"<{secrets.token_hex(8)}@{host}>"


def original_head(recipient: str, message_id: str, *, envelope: str | None = None, mailto: str | None = None) -> str:
    lines = [
        *( [f"Return-Path: <{envelope}>"] if envelope else []),
        f"From: Civil Society Support Room <{SENDER}>",
        f"To: {recipient}",
        "Subject: Civil Society Support Room Year-End Update",
        f"Date: {_now()}",
        f"Message-ID: {message_id}",
        "List-Id: Civil Society Support Room <newsletter.news.cssrweb.org>",
    ]
    if mailto:
        lines.append(f"List-Unsubscribe: <https://news.cssrweb.org/u/x>, <mailto:{mailto}?subject=unsubscribe>")
    return "\r\n".join(lines) + "\r\n"


def dsn(to: str, recipient: str, status: str, diagnostic: str, original: str, *, action: str = "failed") -> bytes:
    """Postfix's RFC 3464 report: notification, delivery-status, the returned headers."""
    boundary = f"{secrets.token_hex(6)}.1703000000/mx.example.net"
    return (
        f"Return-Path: <>\r\n"
        f"Delivered-To: {to}\r\n"
        f"Received: by mx.example.net (Postfix) id 4Q1; {_now()}\r\n"
        f"Date: {_now()}\r\n"
        f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n"
        f"To: {to}\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status;\r\n boundary="{boundary}"\r\n'
        f"Message-Id: {_id('mx.example.net')}\r\n"
        f"\r\n"
        f"This is a MIME-encapsulated message.\r\n\r\n"
        f"--{boundary}\r\n"
        f"Content-Description: Notification\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"This is the mail system at host mx.example.net.\r\n\r\n"
        f"I'm sorry to have to inform you that your message could not\r\n"
        f"be delivered to one or more recipients. It's attached below.\r\n\r\n"
        f"<{recipient}>: {diagnostic}\r\n\r\n"
        f"--{boundary}\r\n"
        f"Content-Description: Delivery report\r\n"
        f"Content-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.example.net\r\n"
        f"X-Postfix-Queue-ID: 4Q1\r\n"
        f"X-Postfix-Sender: rfc822; {to}\r\n"
        f"Arrival-Date: {_now()}\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Remote-MTA: dns; mail.example.org\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n\r\n"
        f"--{boundary}\r\n"
        f"Content-Description: Undelivered Message Headers\r\n"
        f"Content-Type: text/rfc822-headers\r\n\r\n"
        f"{original}\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def postfix_old(to: str, recipient: str, original: str) -> bytes:
    """Postfix before DSN support: multipart/mixed, a notice and the returned message."""
    boundary = f"{secrets.token_hex(6)}.990000000/old.example.net"
    return (
        f"Return-Path: <>\r\n"
        f"Delivered-To: {to}\r\n"
        f"Date: {_now()}\r\n"
        f"From: MAILER-DAEMON@old.example.net (Mail Delivery System)\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n"
        f"To: {to}\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n'
        f"Message-Id: {_id('old.example.net')}\r\n\r\n"
        f"This is a MIME-encapsulated message.\r\n\r\n"
        f"--{boundary}\r\n"
        f"Content-Description: Notification\r\n"
        f"Content-Type: text/plain\r\n\r\n"
        f"This is the Postfix program at host old.example.net.\r\n\r\n"
        f"I'm sorry to have to inform you that the message returned\r\n"
        f"below could not be delivered to one or more destinations.\r\n\r\n"
        f"For further assistance, please contact <postmaster@old.example.net>\r\n\r\n"
        f"If you do so, please include this problem report. You can\r\n"
        f"delete your own text from the message returned below.\r\n\r\n"
        f"\t\t\tThe Postfix program\r\n\r\n"
        f"<{recipient}>: host mail.example.org[192.0.2.25] said: 550 5.1.1\r\n"
        f"    <{recipient}>: Recipient address rejected: User unknown in local\r\n"
        f"    recipient table (in reply to RCPT TO command)\r\n\r\n"
        f"--{boundary}\r\n"
        f"Content-Description: Undelivered Message\r\n"
        f"Content-Type: message/rfc822\r\n\r\n"
        f"{original}\r\n"
        f"The letter.\r\n\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def exim(to: str, recipient: str, original: str) -> bytes:
    return (
        f"Return-path: <>\r\n"
        f"Envelope-to: {to}\r\n"
        f"Delivery-date: {_now()}\r\n"
        f"X-Failed-Recipients: {recipient}\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"From: Mail Delivery System <Mailer-Daemon@exim.example.net>\r\n"
        f"To: {to}\r\n"
        f"Subject: Mail delivery failed: returning message to sender\r\n"
        f"Message-Id: <E1r{secrets.token_hex(5)}-000Abc-9Z@exim.example.net>\r\n"
        f"Date: {_now()}\r\n\r\n"
        f"This message was created automatically by mail delivery software.\r\n\r\n"
        f"A message that you sent could not be delivered to one or more of its\r\n"
        f"recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        f"  {recipient}\r\n"
        f"    host mail.example.org [192.0.2.26]\r\n"
        f"    SMTP error from remote mail server after RCPT TO:<{recipient}>:\r\n"
        f"    550 5.1.1 <{recipient}>: Recipient address rejected: User unknown\r\n\r\n"
        f"------ This is a copy of the message, including all the headers. ------\r\n\r\n"
        f"{original}\r\n"
        f"The letter.\r\n"
    ).encode()


def qmail(to: str, recipient: str, original: str) -> bytes:
    return (
        f"Return-Path: <>\r\n"
        f"Delivered-To: {to}\r\n"
        f"Date: {_now()}\r\n"
        f"From: MAILER-DAEMON@qmail.example.net\r\n"
        f"To: {to}\r\n"
        f"Subject: failure notice\r\n\r\n"
        f"Hi. This is the qmail-send program at qmail.example.net.\r\n"
        f"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        f"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
        f"<{recipient}>:\r\n"
        f"Sorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        f"--- Below this line is a copy of the message.\r\n\r\n"
        f"{original}\r\n"
        f"The letter.\r\n"
    ).encode()


def arf(to: str, original: str, *, original_mail_from: str, feedback_type: str = "abuse") -> bytes:
    """A mailbox provider's feedback loop: the reader pressed "spam". The recipient is redacted,
    as feedback loops do; the envelope sender names the delivery."""
    boundary = f"arf_{secrets.token_hex(6)}"
    return (
        f"Return-Path: <fbl-bounces@fbl.example.net>\r\n"
        f"Delivered-To: {to}\r\n"
        f"From: Feedback Loop <fbl@fbl.example.net>\r\n"
        f"To: {to}\r\n"
        f"Date: {_now()}\r\n"
        f"Subject: FW: Civil Society Support Room Year-End Update\r\n"
        f"Message-ID: {_id('fbl.example.net')}\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"This is an email abuse report for an email message received from IP 192.0.2.10.\r\n\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: {feedback_type}\r\n"
        f"User-Agent: ExampleFBL/1.0\r\n"
        f"Version: 1\r\n"
        f"Original-Mail-From: <{original_mail_from}>\r\n"
        f"Original-Rcpt-To: <redacted@fbl.example.net>\r\n"
        f"Arrival-Date: {_now()}\r\n"
        f"Source-IP: 192.0.2.10\r\n\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: message/rfc822\r\n\r\n"
        f"{original}\r\n"
        f"The letter.\r\n\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def out_of_office(to: str, reader: str) -> bytes:
    """A vacation responder answering the envelope sender, as RFC 3834 asks."""
    return (
        f"Return-Path: <>\r\n"
        f"Delivered-To: {to}\r\n"
        f"From: {reader}\r\n"
        f"To: {to}\r\n"
        f"Subject: Out of Office: Civil Society Support Room Year-End Update\r\n"
        f"Date: {_now()}\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"X-Autoreply: yes\r\n"
        f"Precedence: auto_reply\r\n"
        f"Message-ID: {_id('mail.example.org')}\r\n\r\n"
        f"I am out of the office until 3 January with no access to email, and the\r\n"
        f"message to {SENDER}, sent on Tuesday, could not be delivered to me in time.\r\n"
        f"For anything urgent, write to my colleague, deputy@example.org, please.\r\n"
    ).encode()


def unsubscribe_mail(to: str, reader: str, *, subject: str = "unsubscribe", body: str = "") -> bytes:
    """What a mail client sends for the List-Unsubscribe mailto."""
    return (
        f"Return-Path: <{reader}>\r\n"
        f"Delivered-To: {to}\r\n"
        f"From: {reader}\r\n"
        f"To: {to}\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {_now()}\r\n"
        f"Message-ID: {_id('mail.example.org')}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def read_receipt(to: str, reader: str) -> bytes:
    boundary = f"mdn_{secrets.token_hex(6)}"
    return (
        f"Return-Path: <>\r\nDelivered-To: {to}\r\nFrom: {reader}\r\nTo: {to}\r\nDate: {_now()}\r\n"
        f"Subject: Read: Civil Society Support Room Year-End Update\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=disposition-notification; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nYour message was displayed.\r\n"
        f"--{boundary}\r\nContent-Type: message/disposition-notification\r\n\r\n"
        f"Reporting-UA: mail.example.org; Example Mail\r\nFinal-Recipient: rfc822; {reader}\r\n"
        f"Disposition: manual-action/MDN-sent-manually; displayed\r\n\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def dsn_many(to: str, recipients: list[str], status: str, original: str) -> bytes:
    """One RFC 3464 report naming many recipients (a relay's, or a forger's)."""
    blocks = "".join(f"Final-Recipient: rfc822;{r}\r\nAction: failed\r\nStatus: {status}\r\n\r\n" for r in recipients)
    one = dsn(to, recipients[0], status, "550 unknown", original)
    head, _, rest = one.partition(b"Final-Recipient: ")
    _, _, tail = rest.partition(b"\r\n\r\n--")
    return head + blocks.encode() + b"--" + tail


def exim_many(to: str, recipients: list[str], original: str) -> bytes:
    """Exim's free-form bounce naming many failed recipients, in X-Failed-Recipients and the text."""
    listed = "".join(f"  {r}\r\n    550 5.1.1 User unknown\r\n" for r in recipients)
    one = exim(to, recipients[0], original)
    one = one.replace(f"X-Failed-Recipients: {recipients[0]}".encode(), f"X-Failed-Recipients: {', '.join(recipients)}".encode())
    head, _, rest = one.partition(b"The following address(es) failed:\r\n\r\n")
    _, _, tail = rest.partition(b"\r\n\r\n------ This is a copy")
    return head + b"The following address(es) failed:\r\n\r\n" + listed.encode() + b"\r\n------ This is a copy" + tail
