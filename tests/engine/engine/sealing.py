"""MCP credentials sealed under AD_ENCRYPTION_KEY (stdlib only; a stand-in for real AEAD).

A brain restored under a different key keeps its rows but its connections become unusable,
which is the behaviour the contract describes.
"""

import hashlib
import hmac
import os

NONCE = 16
TAG = 32


def _keystream(key, nonce, length):
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(key + nonce + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:length])


def _material(secret):
    return hashlib.sha256(b"engine-connections:" + secret.encode()).digest()


def seal(secret, plaintext, nonce=None):
    key = _material(secret)
    nonce = nonce or os.urandom(NONCE)
    data = plaintext.encode()
    body = bytes(a ^ b for a, b in zip(data, _keystream(key, nonce, len(data))))
    return nonce + body + hmac.new(key, nonce + body, hashlib.sha256).digest()


def open_sealed(secret, sealed):
    """Return the plaintext, or None when the blob was sealed under another key."""
    sealed = bytes(sealed)
    if not secret or len(sealed) < NONCE + TAG:
        return None
    key = _material(secret)
    nonce, body, tag = sealed[:NONCE], sealed[NONCE:-TAG], sealed[-TAG:]
    if not hmac.compare_digest(tag, hmac.new(key, nonce + body, hashlib.sha256).digest()):
        return None
    return bytes(a ^ b for a, b in zip(body, _keystream(key, nonce, len(body)))).decode()
