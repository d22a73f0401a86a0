"""Broker passwords: generated at random, and hashed exactly as mosquitto 2.0 hashes them."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass

ITERATIONS = 101
"""PBKDF2 rounds of mosquitto 2.0 (``PW_DEFAULT_ITERATIONS``): what it uses for every
password set over ``$CONTROL``, so a file written here matches one the broker writes.
Few, so generated passwords are long random strings rather than words."""
SALT_BYTES = 12
HASH_BYTES = 64
GENERATED_BYTES = 24
"""192 random bits: out of reach of a guess even with mosquitto's cheap hash."""


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A password as the dynamic-security file stores it (base64 fields)."""

    hash: str
    salt: str
    iterations: int


def generate_password() -> str:
    return secrets.token_urlsafe(GENERATED_BYTES)


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS
) -> PasswordHash:
    """PBKDF2-HMAC-SHA512 over the UTF-8 password with a 12-byte salt, as the plugin does."""
    if not password:
        raise ValueError("a broker password cannot be empty")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise ValueError(f"the salt must be {SALT_BYTES} bytes (mosquitto refuses others)")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_BYTES)
    return PasswordHash(
        base64.b64encode(digest).decode(), base64.b64encode(salt).decode(), iterations
    )
