"""The station's Ed25519 signing key and its public forms (PEM, signed-note verifier key).

The verifier key text is Go's sumdb/note format, ``name+hash+base64(0x01 || pubkey)``,
with hash the first 4 bytes of SHA-256(name || "\\n" || 0x01 || pubkey), so existing
signed-note tools read it.

File modes: the keys folder and the public files are readable by anyone who may verify
(0755 / 0644); the private key alone is private (0600). ``ledger.keyring.Keyring`` is the
one owner of the folder; the file-level steps it takes live here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from config.common import fsync_dir as fsync_dir
from config.common import write_atomic as write_atomic
from config.common import write_new as write_new
from ledger.errors import StationKeyError

ALG_ED25519: Final = 0x01
PRIVATE_NAME: Final = "station.ed25519"
PUBLIC_NAME: Final = "station.pub.pem"
FOLDER_MODE: Final = 0o755
PUBLIC_MODE: Final = 0o644
PRIVATE_MODE: Final = 0o600
_TMP_NAME = re.compile(r"^.+\.(\d+)\.\d+\.\d+\.tmp$")
_OLD_TMP_NAME = re.compile(r"^.+\.(\d+)\.\d+\.tmp$")

# Tests set this to kill the process right after a named step, to prove that every step
# of creating, signing and rotating is crash-safe. None in production: a no-op.
crash_test_hook: Callable[[str], None] | None = None


def after_step(step: str) -> None:
    """Mark a durable step of the keys folder protocol (see ``crash_test_hook``)."""
    if crash_test_hook is not None:
        crash_test_hook(step)


def key_fingerprint(public: bytes) -> str:
    """SHA-256 of the raw 32-byte public key, hex in groups of four, for people to compare.

    An auditor recomputes it without evidock:
    ``openssl pkey -pubin -in station.pub.pem -outform DER | tail -c 32 | sha256sum``.
    """
    digest = hashlib.sha256(public).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


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

    def fingerprint(self) -> str:
        return key_fingerprint(self.public)

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

    def fingerprint(self) -> str:
        return key_fingerprint(self.public)


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
        """The key at ``keys_dir/station.ed25519``, made (0600, public 0644) if absent.

        The file-level step of ``Keyring.open``, which the station calls (it also recovers
        a pending rotation and refuses to make a key for a ledger already signed).
        """
        path = keys_dir / PRIVATE_NAME
        if path.exists():
            return cls.load(keys_dir, name)
        key = cls.generate(name)
        prepare_folder(keys_dir)
        # Two first starts at once (two sessions' first checkpoint) must not each make a
        # key: the private key is published with link(), which refuses an existing name,
        # and the loser takes the winner's key.
        if not write_new(path, key.private_pem(), PRIVATE_MODE):
            return cls.load(keys_dir, name)
        after_step("key.created")
        write_atomic(keys_dir / PUBLIC_NAME, key.verifier.pem(), PUBLIC_MODE)
        return key

    @classmethod
    def load(cls, keys_dir: Path, name: str) -> StationKey:
        return cls.load_file(keys_dir / PRIVATE_NAME, name)

    @classmethod
    def load_file(cls, path: Path, name: str) -> StationKey:
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

    def private_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


def prepare_folder(keys_dir: Path) -> None:
    """Make the keys folder (0755: auditors read the public key in it)."""
    keys_dir.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    set_mode(keys_dir, FOLDER_MODE)


def set_mode(path: Path, mode: int) -> None:
    """Give ``path`` exactly ``mode`` (the umask does not apply); absent files are skipped."""
    try:
        if path.stat().st_mode & 0o7777 != mode:
            os.chmod(path, mode)
    except FileNotFoundError:
        pass


def sweep_tmp(folder: Path) -> list[Path]:
    """Remove the temporary files of writers that died.

    ``config.common`` names them ``name.<pid>.<thread>.<n>.tmp``; earlier versions of
    evidock left ``name.<pid>.<thread>.tmp``.
    """
    removed: list[Path] = []
    for tmp in folder.glob("*.tmp"):
        match = _TMP_NAME.match(tmp.name) or _OLD_TMP_NAME.match(tmp.name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _alive(pid):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
