"""Reviewer accounts: names with scrypt-hashed passwords, kept in the feedback store."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from mlexp.errors import ConfigError, MlexpError
from mlexp.tasks.text_classification.service.store import FeedbackStore

# scrypt's interactive-login parameters (about 20 ms a check): slow for a guesser, quick for a sign-in
_N, _R, _P = 2**14, 8, 1
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(candidate.hex(), digest)


def add_reviewer(store: FeedbackStore, name: str, password: str) -> None:
    """Create reviewer `name`, or set a new password for it."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"reviewer name {name!r}: use 1-64 letters, digits and _ . @ -")
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"reviewer {name}: the password needs at least {MIN_PASSWORD} characters")
    store.set_reviewer(name, hash_password(password))


def remove_reviewer(store: FeedbackStore, name: str) -> None:
    """Delete reviewer `name`: their session ends at once."""
    if not store.remove_reviewer(name):
        raise MlexpError(f"no reviewer named {name!r}; see mlexp review list")


def sign_in(store: FeedbackStore, name: str, password: str) -> bool:
    """Whether `name` is a reviewer with this password (the same work is done for unknown names)."""
    stored = store.reviewer_hash(name)
    if stored is None:
        password_matches(password, hash_password("not a reviewer"))  # no timing hint that the name is unknown
        return False
    return password_matches(password, stored)
