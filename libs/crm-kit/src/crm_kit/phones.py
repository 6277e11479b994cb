"""Phone numbers as every service stores them: E.164, with numbers typed without a country code read in
the service's default region (mainland numbers as typed)."""

from __future__ import annotations

import phonenumbers

from crm_kit.errors import Unprocessable


def normalize_phone(raw: str, region: str) -> str:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise Unprocessable(f"'phone' is not a phone number: {exc}", field="phone") from exc
    if not phonenumbers.is_valid_number(number):
        raise Unprocessable("'phone' is not a valid phone number", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(phone: str | None) -> str | None:
    """A stored phone as a caller without the `customers:pii` scope sees it: `+86138****5678`."""
    if not phone:
        return phone
    return phone[:-8] + "****" + phone[-4:] if len(phone) > 8 else "****"
