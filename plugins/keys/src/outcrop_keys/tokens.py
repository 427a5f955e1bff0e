"""Key material: virtual keys (shown once, stored as SHA-256), SigV4 key pairs (the secret
encrypted at rest with AES-GCM under the gateway's salt key)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets

KEY_PREFIX = "sk-"
ACCESS_KEY_PREFIX = "OCK"  # looks like an AWS key id (20 upper-case characters), never clashes
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def new_key() -> str:
    """``sk-`` + 32 bytes (256 bits) of randomness, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_ref(key_or_token: str) -> str:
    """LiteLLM accepts either the key or its hash wherever a key is named."""
    if len(key_or_token) == 64 and all(c in "0123456789abcdef" for c in key_or_token):
        return key_or_token
    return hash_key(key_or_token)


def key_name(key: str) -> str:
    """What lists show instead of the key: ``sk-...`` and its last four characters."""
    return f"{KEY_PREFIX}...{key[-4:]}"


def new_access_key_id() -> str:
    return ACCESS_KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(17))


def new_secret_access_key() -> str:
    return base64.b64encode(secrets.token_bytes(30)).decode()  # 40 characters, like AWS's


class SecretBox:
    """AES-256-GCM with a key derived from the operator's salt key. The access key id is bound
    as associated data, so a secret copied onto another row does not decrypt."""

    def __init__(self, salt_key: str) -> None:
        # cryptography's bindings are ~6 MB of a worker's RSS: loaded only with a salt key
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        derived = HKDF(hashes.SHA256(), 32, salt=None, info=b"outcrop-keys/sigv4").derive(
            salt_key.encode()
        )
        self._aead = AESGCM(derived)

    def seal(self, access_key_id: str, secret: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), access_key_id.encode())
        return "v1:" + base64.b64encode(nonce + sealed).decode()

    def open(self, access_key_id: str, sealed: str) -> str:
        if not sealed.startswith("v1:"):
            raise ValueError("unknown secret format")
        blob = base64.b64decode(sealed[3:])
        return self._aead.decrypt(blob[:12], blob[12:], access_key_id.encode()).decode()


def salt_key(settings_value: str | None) -> str | None:
    return (
        settings_value or os.environ.get("OUTCROP_SALT_KEY") or os.environ.get("LITELLM_SALT_KEY")
    )
