"""What mail systems write when they refuse a message, by reason: the words newsletter.feedback.
diagnosis falls back on when a bounce's status code is missing, generic (5.0.0, 5.7.1, 5.1.1
from a server that says more) or contradicted by what the server wrote.

Written from the mail systems' documented and commonly seen replies (Postfix, Sendmail, Exim,
qmail, Exchange and Office 365, Gmail, Yahoo, Outlook.com, mail.ru, Domino, Courier, the
Japanese carriers, the spam gateways). Phrases are lower case and match at the start of a word;
`.` in a phrase stands for any one character (an apostrophe, a hyphen). The groups are tried in
this order and the first that matches gives the reason: what is most specific about the
recipient's mailbox comes first, what is about the message or about us before the catch-all
words of a block.
"""

from __future__ import annotations

from newsletter.feedback import reasons as r

PHRASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r.MAILBOX_FULL, (
        "mailbox full", "mailbox is full", "mailbox was full", "mail box full", "mailbox has exceeded",
        "mailbox size limit", "mailbox quota", "mailbox exceeds", "mailbox is over", "over quota", "overquota",
        "over the quota", "quota exceeded", "quota exceed", "exceeded quota", "exceeds quota", "exceed the quota",
        "exceeded storage", "exceeded the storage", "exceeds the storage", "storage allocation", "storage quota",
        "insufficient storage", "out of storage", "inbox is full", "inbox full", "full mailbox", "mailfolder is full",
        "maildir over quota", "user has exceeded", "disk quota", "mailbox exceeded", "recipient's mailbox exceeded",
        "not enough storage", "not enough space on", "space shortage", "exceeded the local limit", "boite pleine",
        "bo\u00eete pleine", "postfach voll", "casella piena", "buz\u00f3n lleno", "caixa cheia",
        "\u30e1\u30fc\u30eb\u30dc\u30c3\u30af\u30b9\u304c\u4e00\u676f", "\u5bb9\u91cf\u30aa\u30fc\u30d0\u30fc",  # メールボックスが一杯, 容量オーバー
        "is over its quota", "has exceeded its", "mail quota", "quota full", "quota reached", "quota limit",
        "has reached its quota", "too much mail data", "mailsize limit",
    )),
    (r.MESSAGE_TOO_BIG, (
        "message too large", "message too big", "message is too large", "message is too big", "message size exceeds",
        "message length exceeds", "message exceeds", "size limit", "exceeds the maximum size", "maximum message size",
        "maximum size", "message size", "size exceeds", "too large for", "message file too big", "email is too large",
        "mail is too large", "larger than the current system limit", "exceeded the maximum message",
        "mail size", "size of the message", "message is larger", "exceeds the size", "too long message",
    )),
    (r.SUSPENDED, (
        "account disabled", "account is disabled", "account has been disabled", "account suspended",
        "account is suspended", "account has been suspended", "mailbox disabled", "mailbox is disabled",
        "mailbox has been disabled", "mailbox suspended", "mailbox is suspended", "mailbox is inactive",
        "mailbox inactive", "inactive account", "account inactive", "account is inactive", "account has been inactive",
        "account is not active", "mailbox is not active", "is inactive", "account has been deactivated",
        "deactivated", "disabled or discontinued", "recipient disabled", "disabled recipient", "account expired",
        "account has expired", "account is locked", "account locked", "account is frozen", "mailbox is frozen",
        "user suspended", "suspended account", "user account is disabled", "user account disabled",
        "is disabled", "has been disabled", "temporarily disabled", "been suspended", "is suspended",
        "not accepting messages", "mailbox not enabled", "account blocked", "mailbox is closed",
    )),
    (r.HAS_MOVED, (
        "has moved", "has been moved", "address has changed", "user has moved", "not local; please try",
        "mailbox owner has changed", "domain owner has changed", "no forwarding address", "no longer accepts mail",
    )),
    (r.AUTHENTICATION, (
        "spf", "dkim", "dmarc", "sender policy framework", "unauthenticated", "not authenticated",
        "authentication failed", "authentication failure", "failed authentication",
        "requires all senders to authenticate", "could not be authenticated",
        "sender authentication", "reverse dns", "reverse-dns", "reverse lookup", "reverse hostname", "rdns",
        "ptr record", "ptr lookup", "no ptr", "missing ptr", "invalid ptr", "cannot find your hostname",
        "cannot find your reverse", "cannot resolve your", "client host name", "client hostname",
        "tls required", "requires tls", "must use tls", "must issue a starttls", "starttls", "encryption required",
        "requiretls", "arc validation", "not signed", "signature",
    )),
    (r.SENDER_REJECTED, (
        "sender address rejected", "sender rejected", "rejected sender", "sender verify failed",
        "sender verification", "sender domain", "sender address domain", "domain of sender", "sender not allowed",
        "sender is not allowed", "sender denied", "sender is denied", "invalid sender", "bad sender",
        "sender address is", "sender's address", "senders address", "envelope sender", "envelope-from",
        "envelope from", "envelope blocked", "mail from rejected", "mail from address", "sender blocked", "sender is blocked",
        "sender address blocked", "sender unknown", "unknown sender", "sender address has null mx",
    )),
    (r.HOST_UNKNOWN, (
        "host unknown", "unknown host", "host not found", "domain not found", "no such domain", "domain does not exist",
        "domain doesn.t exist", "domain name not found", "unknown domain", "domain unknown", "invalid domain",
        "nxdomain", "unrouteable", "unroutable", "name service error", "name or service not known",
        "host or domain name not found", "no mx", "mx record", "dns lookup failure", "domain is not valid",
        "null mx", "does not accept mail", "doesn.t accept mail", "not accept any mail", "accepts no mail",
        "non-existent host", "nonexistent host", "non-existent domain", "nonexistent domain", "domain isn.t in my list",
        "not in my list of allowed rcpthosts", "domain is not hosted", "recipient domain must exist",
        "couldn.t find any host", "could not find any host", "domain must exist", "no mail exchanger",
        "will not accept mail", "mail receiving disabled", "domain has no mx",
    )),
    (r.USER_UNKNOWN, (
        "user unknown", "unknown user", "unknown recipient", "recipient unknown", "unknown local", "unknown address",
        "unknown mailbox", "mailbox unknown", "address unknown", "unknown or illegal alias", "unknown alias",
        "no such user", "no such recipient", "no such mailbox", "no such address", "no such person", "no such account",
        "no such local user", "no mailbox", "no account by that name", "mailbox not found", "mailbox does not exist",
        "mailbox doesn.t exist", "mailbox unavailable", "mailbox is unavailable", "mailbox not available",
        "mailbox is not available", "user not found", "recipient not found", "address not found", "account not found",
        "recipnotfound", "recipientnotfound", "not found by smtp address lookup", "user does not exist",
        "user doesn.t exist", "recipient does not exist", "recipient doesn.t exist", "address does not exist",
        "address doesn.t exist", "account does not exist", "account doesn.t exist", "does not exist here",
        "user doesn.t have", "this user doesn.t have", "doesn.t have a", "does not have an account",
        "invalid recipient", "invalid mailbox", "invalid address", "invalid user", "invalid email address",
        "invalid e-mail address", "bad destination mailbox", "not a valid recipient", "not a valid mailbox",
        "not a valid user", "no valid recipients", "not our customer", "undeliverable address", "user not listed",
        "not listed in domino directory", "not listed in public name", "not listed in the directory",
        "is not a known user", "not a known user", "couldn.t be found", "could not be found", "wasn.t found",
        "no longer valid", "no longer available", "no longer in use", "no longer exists", "does not exist",
        "doesn.t exist", "recipient address rejected: undeliverable", "recipient address rejected: user",
        "recipient address rejected: unknown", "recipient address rejected: access denied", "unknown e-mail",
        "unknown email", "user invalid", "address invalid", "recipient invalid", "invalid recipients",
        "illegal alias", "mailbox name not allowed", "mailbox name invalid", "not exist",
        "user not exist", "user is unknown", "bad address", "badrcptto", "not in my validrcptto", "no one at this address",
        "not known at this site", "is not an active address", "recipient is not local", "recipient not ok",
        "no mail box available", "no mailbox by that name", "no such mail drop", "envelope recipient has been deleted",
        "address is invalid", "address is not valid", "not present in directory", "not found in directory",
        "email name is not found", "wrong or no longer valid", "user missing home directory", "invalid or unknown virtual user",
        "utilisateur inconnu", "destinataire inconnu", "adresse inconnue", "benutzer unbekannt", "empf\u00e4nger unbekannt",
        "unbekannter empf\u00e4nger", "mailbox nicht vorhanden", "usuario desconocido", "no existe", "destinatario sconosciuto",
        "utente inesistente", "nessun utente", "usu\u00e1rio desconhecido", "onbekende gebruiker",
        "\u5b58\u5728\u3057\u307e\u305b\u3093", "\u5b9b\u5148\u4e0d\u660e",  # 存在しません, 宛先不明
        "\u30c7\u30a3\u30ec\u30af\u30c8\u30ea\u306e\u30ea\u30b9\u30c8\u306b\u3042\u308a\u307e\u305b\u3093",  # ディレクトリのリストにありません (Notes)
    )),
    (r.BLOCKED, (  # block lists and reputation: before the words of spam, which their names contain
        "block list", "blocklist", "blacklist", "black list", "denylist", "deny list", "dnsbl", "rbl", "spamhaus",
        "spamcop", "sorbs", "barracuda", "cloudmark", "reputation", "client host rejected", "listed at",
        "listed on", "listed by", "your ip", "ip address", "sending ip", "ip blocked", "blocked using",
    )),
    (r.RATE_LIMITED, (
        "rate limit", "ratelimit", "rate-limit", "rate limited", "too many connections", "too many concurrent",
        "too many messages", "too many recipients", "too many emails", "too many mails", "throttl",
        "sending rate", "receiving mail at a rate", "too fast", "slow down", "exceeded the rate", "connection rate",
        "message rate", "sending quota", "daily sending", "sending limit", "max connections", "maximum connections",
        "connection limit", "too many sessions", "limit exceeded", "exceeded the maximum number",
    )),
    (r.SYSTEM_ERROR, (  # the recipient's server takes no mail for its own domain: a set-up fault there
        "relay access denied", "relaying denied", "unable to relay", "relay not permitted", "relaying not allowed",
        "relay denied", "we do not relay", "not a gateway", "relaying is not allowed", "not permitted to relay",
    )),
    (r.CONTENT_REJECTED, (
        "spam", "virus", "malware", "infected", "phish", "unsolicited", "bulk mail", "bulk e-mail", "bulk email",
        "junk", "content", "suspicious", "scam", "fraud", "banned attachment", "attachment", "prohibited file",
        "rejected as", "message refused", "message not allowed",
        "mime type", "invalid mime", "malformed", "invalid header", "header error", "8-bit", "8bit", "non-ascii", "utf8", "utf-8", "message was detected", "looks like",
        "high probability", "filtered", "filter",
    )),
    (r.EXPIRED, (
        "retry timeout exceeded", "retry time not reached for any host", "delivery time expired", "message expired",
        "delivery expired", "expired", "could not be delivered for", "could not be delivered within",
        "could not deliver for", "was not delivered within", "has not been delivered", "not been delivered for",
        "in the queue too long", "queue too long", "giving up", "too long in queue",
        "exceeded the maximum time", "maximum retry", "unable to deliver for", "undeliverable for",
        "has been in the queue", "delivery was not completed", "connection timed out", "timed out",
        "timeout exceeded", "not reachable", "message timeout", "cannot send message for",
    )),
    (r.SYSTEM_ERROR, (
        "system error", "local configuration error", "configuration error", "mail loop", "routing loop",
        "loop detected", "loops back", "too many hops", "hop count exceeded", "internal error", "server error",
        "connection refused", "timeout", "network error", "network is unreachable", "no route to host", "ambiguous", "no longer responding",
        "not responding", "server busy", "several matches", "multiple matches", "misconfigured", "hop count",
        "unreachable", "i/o error", "out of memory", "system full", "disk full", "insufficient system storage",
        "system resources", "service unavailable", "service not available", "resources temporarily unavailable",
        "mailer error", "local delivery failed", "command died",
        "dns error", "dns failure", "lookup failed", "temporary lookup failure", "connection dropped",
        "connection reset", "lost connection", "host is down", "unable to connect", "could not connect",
        "cannot connect", "failed to connect", "conversation with", "protocol error", "syntax error",
        "command unrecognized", "command not recognized", "bad command", "out of sequence",
    )),
)  # fmt: skip

# the catch-all words of a block or a policy: weaker than a code that means something (a 5.1.1
# "blocked" stays an unknown user), so read only when the code says nothing beyond its class and
# no group above matches
BLOCKED_WORDS: tuple[str, ...] = (
    "blocked", "access denied", "authentication required", "authrequired", "banned", "not allowed", "policy",
    "policies", "denied", "refused", "prohibited", "not authorized", "unauthorized", "administrative prohibition",
    "not permitted", "abuse", "connection rejected", "dynamic", "residential", "not accepted", "user complaints",
    "unexpected volume", "complaints", "local policy",
)  # fmt: skip
