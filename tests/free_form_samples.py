"""Free-form bounces (no RFC 3464 report) as six mail systems write them, written for these
tests from each one's documented form; the failure lines differ from case to case.

- Postfix before DSN support (bounce(5)): multipart/mixed, a "Notification" part that ends with
  "The Postfix program", then `<address>: reason` lines;
- Exim (its specification, "Bounce messages"): "The following address(es) failed:", each address
  followed by its indented reason, and X-Failed-Recipients;
- Sendmail without DSN ("Returned mail: see transcript for details"): "The following addresses had
  permanent fatal errors", `(reason: …)`, then the transcript of the session;
- qmail (QSBMF, cr.yp.to/proto/qsbmf.txt): "Hi. This is the qmail-send program", then
  `<address>:` paragraphs, then "--- Below this line is a copy of the message.";
- Exchange 2000/2003 non-delivery reports: "did not reach the following recipient(s)", the
  address "on <date>", the reason and `<host #x.y.z>`;
- Gmail's older text notices: "Delivery to the following recipient failed permanently:", the
  address indented, "Technical details of permanent failure:" and the other server's reply.

Each function returns the bytes as the bounce mailbox holds them. `reason` is the mail system's
text about the one recipient (`{r}` stands for the address); `original` is the head of our letter.
"""

from __future__ import annotations

import secrets

from bounce_samples import _now


def _head(to: str, sender: str, subject: str, host: str, *extra: str) -> str:
    lines = [
        "Return-Path: <>",
        f"Delivered-To: {to}",
        f"Date: {_now()}",
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Message-ID: <{secrets.token_hex(8)}@{host}>",
        *extra,
    ]
    return "\r\n".join(lines) + "\r\n"


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def postfix(to: str, recipient: str, original: str, reason: str) -> bytes:
    boundary = f"{secrets.token_hex(6)}.990000000/old.example.net"
    head = _head(
        to,
        "MAILER-DAEMON@old.example.net (Mail Delivery System)",
        "Undelivered Mail Returned to Sender",
        "old.example.net",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
    )
    body = f"""This is a MIME-encapsulated message.

--{boundary}
Content-Description: Notification
Content-Type: text/plain

This is the Postfix program at host old.example.net.

I'm sorry to have to inform you that the message returned
below could not be delivered to one or more destinations.

For further assistance, please contact <postmaster@old.example.net>

If you do so, please include this problem report. You can
delete your own text from the message returned below.

\t\t\tThe Postfix program

<{recipient}>: {reason.format(r=recipient)}

--{boundary}
Content-Description: Undelivered Message
Content-Type: message/rfc822

{original}
The letter.

--{boundary}--
"""
    return (head + "\r\n" + _crlf(body)).encode()


def exim(to: str, recipient: str, original: str, reason: str) -> bytes:
    head = _head(
        to,
        "Mail Delivery System <Mailer-Daemon@exim.example.net>",
        "Mail delivery failed: returning message to sender",
        "exim.example.net",
        f"X-Failed-Recipients: {recipient}",
        "Auto-Submitted: auto-replied",
    )
    body = f"""This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {recipient}
{reason.format(r=recipient)}

------ This is a copy of the message, including all the headers. ------

{original}
The letter.
"""
    return (head + "\r\n" + _crlf(body)).encode()


def sendmail(to: str, recipient: str, original: str, reason: str, transcript: str) -> bytes:
    head = _head(
        to,
        "Mail Delivery Subsystem <MAILER-DAEMON@sendmail.example.net>",
        "Returned mail: see transcript for details",
        "sendmail.example.net",
        "Auto-Submitted: auto-generated (failure)",
    )
    body = f"""The original message was received at {_now()}
from news.cssrweb.org [192.0.2.10]

   ----- The following addresses had permanent fatal errors -----
<{recipient}>
    (reason: {reason.format(r=recipient)})

   ----- Transcript of session follows -----
{transcript.format(r=recipient)}

   ----- Original message follows -----

{original}
The letter.
"""
    return (head + "\r\n" + _crlf(body)).encode()


def qmail(to: str, recipient: str, original: str, reason: str) -> bytes:
    head = _head(to, "MAILER-DAEMON@qmail.example.net", "failure notice", "qmail.example.net")
    body = f"""Hi. This is the qmail-send program at qmail.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{recipient}>:
{reason.format(r=recipient)}

--- Below this line is a copy of the message.

{original}
The letter.
"""
    return (head + "\r\n" + _crlf(body)).encode()


def exchange(to: str, recipient: str, original: str, reason: str) -> bytes:
    """Exchange 2000/2003's report: the letter's subject and date, then the failed recipients."""
    head = _head(
        to,
        "System Administrator <postmaster@exchange.example.net>",
        "Undeliverable: Civil Society Support Room Year-End Update",
        "exchange.example.net",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    )
    body = f"""Your message

  Subject:  Civil Society Support Room Year-End Update
  Sent:     Wed, 20 Dec 2023 10:00:00 +0100

did not reach the following recipient(s):

{recipient} on Wed, 20 Dec 2023 10:00:05 +0100
{reason.format(r=recipient)}

"""
    return (head + "\r\n" + _crlf(body)).encode()


def gmail(to: str, recipient: str, original: str, details: str) -> bytes:
    head = _head(
        to,
        "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        "Delivery Status Notification (Failure)",
        "mail.gmail.com",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=ISO-8859-1",
    )
    body = f"""Delivery to the following recipient failed permanently:

     {recipient}

Technical details of permanent failure:
{details.format(r=recipient)}

   ----- Original message -----

{original}
The letter.
"""
    return (head + "\r\n" + _crlf(body)).encode()


def gmail_delayed(to: str, recipient: str, original: str) -> bytes:
    head = _head(
        to,
        "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        "Delivery Status Notification (Delay)",
        "mail.gmail.com",
    )
    body = f"""This is an automatically generated Delivery Status Notification

THIS IS A WARNING MESSAGE ONLY.

YOU DO NOT NEED TO RESEND YOUR MESSAGE.

Delivery to the following recipient has been delayed:

     {recipient}

Message will be retried for 2 more day(s)

Technical details of temporary failure:
The recipient server did not accept our requests to connect. [mx.example.org. 192.0.2.28: timed out]

   ----- Original message -----

{original}
"""
    return (head + "\r\n" + _crlf(body)).encode()


_SAID = "host mx.example.org[192.0.2.25] said: "
_GMAIL = (
    "Google tried to deliver your message, but it was rejected by the server for the recipient\n"
    "domain example.org by mx.example.org. [192.0.2.28].\n\nThe error that the other server returned was:\n"
)
_SENDMAIL_TALK = "... while talking to mx.example.org.:\n>>> MAIL From:<bounces@news.cssrweb.org> SIZE=4242\n<<< 250 2.1.0 Ok\n>>> RCPT To:<{r}>\n"

# (mail system, case, how to make it, the reason its codes and words give)
CASES = [
    ("Postfix", "user unknown, 550 5.1.1", lambda *a: postfix(*a, _SAID + "550 5.1.1 <{r}>: Recipient address\n    rejected: User unknown in local recipient table (in reply to RCPT TO command)"), "user-unknown"),
    ("Postfix", "550 without an enhanced code", lambda *a: postfix(*a, _SAID + "550 Requested action not taken:\n    mailbox unavailable (in reply to RCPT TO command)"), "user-unknown"),
    ("Postfix", "local delivery, words only", lambda *a: postfix(*a, 'unknown user: "jane.reader"'), "user-unknown"),
    ("Postfix", "mailbox full, 552 5.2.2", lambda *a: postfix(*a, _SAID + "552 5.2.2 <{r}>: Mailbox full\n    (in reply to end of DATA command)"), "mailbox-full"),
    ("Postfix", "greylisted until it expired, 450 4.2.0", lambda *a: postfix(*a, _SAID + "450 4.2.0 <{r}>: Recipient address\n    rejected: Greylisted (in reply to RCPT TO command)"), "undetermined"),
    ("Postfix", "blocked as spam, 554 5.7.1", lambda *a: postfix(*a, _SAID + "554 5.7.1 Service unavailable; Client\n    host [192.0.2.10] blocked using zen.spamhaus.org (in reply to RCPT TO command)"), "blocked"),
    ("Exim", "user unknown, 550 5.1.1", lambda *a: exim(*a, "    host mx.example.org [192.0.2.26]\n    SMTP error from remote mail server after RCPT TO:<{r}>:\n    550 5.1.1 <{r}>: Recipient address rejected: User unknown"), "user-unknown"),
    ("Exim", "550 without an enhanced code", lambda *a: exim(*a, "    host mx.example.org [192.0.2.26]\n    SMTP error from remote mail server after RCPT TO:<{r}>:\n    550 No Such User Here"), "user-unknown"),
    ("Exim", "local mailbox full", lambda *a: exim(*a, "    mailbox is full: retry timeout exceeded"), "mailbox-full"),
    ("Exim", "retry timeout exceeded", lambda *a: exim(*a, "    retry timeout exceeded"), "expired"),
    ("Exim", "quota, 452 4.2.2", lambda *a: exim(*a, "    host mx.example.org [192.0.2.26]\n    SMTP error from remote mail server after end of data:\n    452 4.2.2 <{r}>: Over quota"), "mailbox-full"),
    ("Sendmail", "user unknown, 550 5.1.1", lambda *a: sendmail(*a, "550 5.1.1 <{r}>... User unknown", _SENDMAIL_TALK + "<<< 550 5.1.1 <{r}>... User unknown"), "user-unknown"),
    ("Sendmail", "550 without an enhanced code", lambda *a: sendmail(*a, "550 <{r}>... User unknown", _SENDMAIL_TALK + "<<< 550 <{r}>... User unknown"), "user-unknown"),
    ("Sendmail", "mailbox full, 552 5.2.2", lambda *a: sendmail(*a, "552 5.2.2 <{r}>... Mailbox full", _SENDMAIL_TALK + "<<< 552 5.2.2 <{r}>... Mailbox full"), "mailbox-full"),
    ("Sendmail", "given up after five days", lambda *a: sendmail(*a, "Deferred: Connection timed out with mx.example.org.", "<{r}>... Deferred: Connection timed out with mx.example.org.\nMessage could not be delivered for 5 days\nMessage will be deleted from queue"), "expired"),
    ("qmail", "remote user unknown, 550 5.1.1", lambda *a: qmail(*a, "192.0.2.27 does not like recipient.\nRemote host said: 550 5.1.1 <{r}>: Recipient address rejected: User unknown\nGiving up on 192.0.2.27."), "user-unknown"),
    ("qmail", "no mailbox here, #5.1.1", lambda *a: qmail(*a, "Sorry, no mailbox here by that name. (#5.1.1)"), "user-unknown"),
    ("qmail", "no code: no longer accepts mail", lambda *a: qmail(*a, "This address no longer accepts mail."), "has-moved"),
    ("qmail", "mailbox full, #5.2.2", lambda *a: qmail(*a, "Recipient's mailbox is full, message returned to sender. (#5.2.2)"), "mailbox-full"),
    ("qmail", "4xx until it gave up", lambda *a: qmail(*a, "192.0.2.27 does not like recipient.\nRemote host said: 450 4.2.1 Mailbox temporarily unavailable\nI'm not going to try again; this message has been in the queue too long."), "expired"),
    ("qmail", "spam block, 554 5.7.1", lambda *a: qmail(*a, "192.0.2.27 does not like recipient.\nRemote host said: 554 5.7.1 Message rejected as spam\nGiving up on 192.0.2.27."), "content-rejected"),
    ("Exchange", "account does not exist, #5.1.1", lambda *a: exchange(*a, "    The e-mail account does not exist at the organization this message was sent to.\n    <mx.example.org #5.1.1>"), "user-unknown"),
    ("Exchange", "Exchange 5.5, words only", lambda *a: exchange(*a, "    The recipient name is not recognized\n    MSEXCH:IMS:Example:Site:EXCH1 0 (000C05A6) Unknown Recipient"), "user-unknown"),
    ("Exchange", "#5.0.0 with the server's 550 5.1.1", lambda *a: exchange(*a, "    The recipient's e-mail address was not found in the recipient's e-mail system.\n    <mx.example.org #5.0.0 smtp;550 5.1.1 <{r}>... User unknown>"), "user-unknown"),
    ("Exchange", "mailbox full, #5.2.2", lambda *a: exchange(*a, "    The recipient's mailbox is full and can't accept messages now.\n    <mx.example.org #5.2.2>"), "mailbox-full"),
    ("Exchange", "#5.0.0, the server's 552: storage", lambda *a: exchange(*a, "    <mx.example.org #5.0.0 smtp;552 Requested mail action aborted: exceeded storage allocation>"), "mailbox-full"),
    ("Exchange", "#5.0.0, the server's 554 5.7.1", lambda *a: exchange(*a, "    <mx.example.org #5.0.0 smtp;554 5.7.1 Message rejected due to content restrictions>"), "content-rejected"),
    ("Gmail", "remote user unknown, 550 5.1.1", lambda *a: gmail(*a, _GMAIL + "550 5.1.1 <{r}>: Recipient address rejected: User unknown in virtual alias table"), "user-unknown"),
    ("Gmail", "Gmail's own: no such user", lambda *a: gmail(*a, _GMAIL + "550-5.1.1 The email account that you tried to reach does not exist. Please try\n550-5.1.1 double-checking the recipient's email address for typos or\n550 5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser"), "user-unknown"),
    ("Gmail", "over quota, 552-5.2.2", lambda *a: gmail(*a, _GMAIL + "552-5.2.2 The email account that you tried to reach is over quota. Please direct\n552 5.2.2 the recipient to https://support.google.com/mail/?p=OverQuotaTemp"), "mailbox-full"),
    ("Gmail", "refused after retries, 451 4.3.0", lambda *a: gmail(*a, _GMAIL + "451 4.3.0 Mail server temporarily rejected message."), "system-error"),
    ("Gmail", "blocked as unsolicited, 550-5.7.1", lambda *a: gmail(*a, _GMAIL + "550-5.7.1 [192.0.2.10] Our system has detected that this message is likely\n550 5.7.1 unsolicited mail. To reduce the amount of spam, it has been blocked."), "content-rejected"),
]  # fmt: skip
