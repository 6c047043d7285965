"""The station's Ed25519 signing key and its public forms (PEM, signed-note verifier key).

The verifier key text is Go's sumdb/note format, ``name+hash+base64(0x01 || pubkey)``,
with hash the first 4 bytes of SHA-256(name || "\\n" || 0x01 || pubkey), so existing
signed-note tools read it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import StationKeyError

ALG_ED25519: Final = 0x01
PRIVATE_NAME: Final = "station.ed25519"
PUBLIC_NAME: Final = "station.pub.pem"


def key_hash(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public).digest()[:4]


def check_key_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise StationKeyError(
            f"key name {name!r} is not usable in a signed note: no spaces and no '+'"
        )


@dataclass(frozen=True)
class VerifierKey:
    """A public key as a signed-note verifier: a name and 32 Ed25519 bytes."""

    name: str
    public: bytes

    @property
    def hash(self) -> bytes:
        return key_hash(self.name, self.public)

    def text(self) -> str:
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public).decode()
        return f"{self.name}+{self.hash.hex()}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def pem(self) -> bytes:
        return Ed25519PublicKey.from_public_bytes(self.public).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_text(cls, text: str) -> VerifierKey:
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise StationKeyError("a verifier key reads name+hash+base64: check the key text")
        name, hash_hex, encoded = parts
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise StationKeyError("the verifier key's key part is not base64") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise StationKeyError("the verifier key is not an Ed25519 key (0x01 + 32 bytes)")
        key = cls(name, raw[1:])
        if key.hash.hex() != hash_hex.lower():
            raise StationKeyError(f"the verifier key's hash {hash_hex} does not match its key")
        return key


@dataclass(frozen=True)
class PublicKeyFile:
    """A public key as read from a file: PEM has no name, a verifier key text has one."""

    public: bytes
    name: str | None

    def for_name(self, name: str) -> VerifierKey:
        return VerifierKey(self.name or name, self.public)


def read_public_key(path: Path) -> PublicKeyFile:
    """Read a PEM public key or a signed-note verifier key text."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StationKeyError(f"cannot read the public key {path}: {exc.strerror}") from None
    if b"-----BEGIN" in raw:
        try:
            loaded = serialization.load_pem_public_key(raw)
        except ValueError as exc:
            raise StationKeyError(f"{path} is not a PEM public key: {exc}") from None
        if not isinstance(loaded, Ed25519PublicKey):
            raise StationKeyError(f"{path} is not an Ed25519 key: give the station's key")
        return PublicKeyFile(loaded.public_bytes_raw(), None)
    key = VerifierKey.from_text(raw.decode("utf-8", "replace"))
    return PublicKeyFile(key.public, key.name)


class StationKey:
    """The station's private key and its name (the checkpoint origin)."""

    def __init__(self, private: Ed25519PrivateKey, name: str) -> None:
        check_key_name(name)
        self._private = private
        self.name = name
        self.verifier = VerifierKey(name, private.public_key().public_bytes_raw())

    @classmethod
    def generate(cls, name: str) -> StationKey:
        return cls(Ed25519PrivateKey.generate(), name)

    @classmethod
    def from_seed(cls, seed: bytes, name: str) -> StationKey:
        return cls(Ed25519PrivateKey.from_private_bytes(seed), name)

    @classmethod
    def load_or_create(cls, keys_dir: Path, name: str) -> StationKey:
        """The key at ``keys_dir/station.ed25519``, made (0600 in a 0700 folder) if absent."""
        path = keys_dir / PRIVATE_NAME
        if path.exists():
            return cls.load(keys_dir, name)
        key = cls.generate(name)
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(keys_dir, 0o700)
        # Two first starts at once (two sessions' first checkpoint) must not each make a
        # key: the private key is published with link(), which refuses an existing name,
        # and the loser takes the winner's key.
        if not _write_new(path, key._private_pem(), 0o600):
            return cls.load(keys_dir, name)
        _write_atomic(keys_dir / PUBLIC_NAME, key.verifier.pem(), 0o644)
        return key

    @classmethod
    def load(cls, keys_dir: Path, name: str) -> StationKey:
        path = keys_dir / PRIVATE_NAME
        try:
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise StationKeyError(
                f"cannot load the station key {path}: {exc}; restore it from backup or "
                "rotate to a new key"
            ) from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise StationKeyError(f"{path} is not an Ed25519 key")
        return cls(loaded, name)

    def save(self, keys_dir: Path) -> None:
        """Write the private key (0600) and the public PEM; replaces both atomically."""
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(keys_dir, 0o700)
        _write_atomic(keys_dir / PRIVATE_NAME, self._private_pem(), 0o600)
        _write_atomic(keys_dir / PUBLIC_NAME, self.verifier.pem(), 0o644)

    def _private_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


def _write_tmp(path: Path, data: bytes, mode: int) -> Path:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def _fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write or replace ``path`` atomically and durably."""
    os.replace(_write_tmp(path, data, mode), path)
    _fsync_dir(path.parent)


def _write_new(path: Path, data: bytes, mode: int) -> bool:
    """Create ``path`` atomically and durably; False (nothing written) if it exists."""
    tmp = _write_tmp(path, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    _fsync_dir(path.parent)
    return True
