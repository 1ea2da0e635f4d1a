"""Email addresses as they are stored: checked and normalised one way everywhere."""

from __future__ import annotations

import contextlib


def normalise_email(address: str) -> str:
    """The address as it will be stored: syntax checked, domain normalised, no DNS lookup.

    Raises ValueError with the reason. Internationalised local parts are refused: they
    need SMTPUTF8 all the way, which many providers do not offer.
    """
    from email_validator import EmailNotValidError, validate_email  # 35 ms: only where an address is read

    try:
        result = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    normalised = result.ascii_email or result.normalized
    if "=?" in normalised:
        # valid for SMTP, but mail software decodes it as an RFC 2047 encoded-word in a header
        raise ValueError("'=?' in an address is read as an encoded word by mail programs")
    return normalised


def email_key(address: str) -> str:
    """The uniqueness key of an address, the same for every spelling of it: case-insensitive,
    and an internationalised domain in its ASCII form (`exämple.org` is `xn--exmple-cua.org`),
    so that `forget`, `remove` and the suppressions find the person however the address is typed."""
    address = address.strip()
    if not address.isascii():
        with contextlib.suppress(ValueError):  # not an address we could have stored: compared as it is
            address = normalise_email(address)
    return address.lower()
