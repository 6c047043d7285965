"""C2SP tlog-checkpoint bodies inside C2SP signed notes (Go's sumdb/note text format).

A signed note is the body (non-empty lines, each ending in a newline), a blank line, and
signature lines ``— <key name> base64(key hash || Ed25519 signature)``. The signature
covers the body bytes including the body's last newline.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from ledger.errors import CheckpointError
from ledger.keys import StationKey, VerifierKey

SIGNATURE_PREFIX: Final = "— "
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError(f"{what} is not base64: {text[:60]!r}") from None
    # Unused low bits of the last character decode silently; one text per value.
    if base64.b64encode(raw).decode() != text:
        raise CheckpointError(f"{what} is not canonical base64: {text[:60]!r}")
    return raw


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin, size and root (extension lines are kept, not interpreted)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse_body(cls, body: str) -> Checkpoint:
        if not body.endswith("\n"):
            raise CheckpointError("a checkpoint body ends with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise CheckpointError("a checkpoint has origin, size and root lines, none empty")
        origin, size_text, root_text, *extensions = lines
        if not _SIZE.fullmatch(size_text):
            raise CheckpointError(f"checkpoint size {size_text!r} is not a decimal number")
        root = unb64(root_text, "the checkpoint root")
        if len(root) != 32:
            raise CheckpointError("the checkpoint root is not a 32-byte SHA-256 hash")
        return cls(origin, int(size_text), root, tuple(extensions))


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_hash: bytes
    signature: bytes

    def line(self) -> str:
        return f"{SIGNATURE_PREFIX}{self.name} {b64(self.key_hash + self.signature)}\n"


@dataclass(frozen=True)
class SignedNote:
    body: str
    signatures: tuple[NoteSignature, ...]

    def text(self) -> str:
        return self.body + "\n" + "".join(s.line() for s in self.signatures)

    @classmethod
    def parse(cls, text: str) -> SignedNote:
        if any(c < " " and c != "\n" for c in text) or "\x7f" in text:
            raise CheckpointError("a signed note holds no control characters but newlines")
        split = text.rfind("\n\n")
        if split < 0 or not text.endswith("\n"):
            raise CheckpointError("a signed note is a body, a blank line and signature lines")
        body, sig_block = text[: split + 1], text[split + 2 :]
        signatures: list[NoteSignature] = []
        for line in sig_block[:-1].split("\n"):
            if not line.startswith(SIGNATURE_PREFIX):
                raise CheckpointError(f"not a signature line: {line[:60]!r}")
            name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
            if not space or not name or " " in encoded:
                raise CheckpointError(f"a signature line reads '— name base64': {line[:60]!r}")
            raw = unb64(encoded, f"the signature of {name}")
            if len(raw) < 5:
                raise CheckpointError(f"the signature of {name} is too short")
            signatures.append(NoteSignature(name, raw[:4], raw[4:]))
        if not signatures:
            raise CheckpointError("the note has no signature")
        return cls(body, tuple(signatures))

    def verified_by(self, keys: Iterable[VerifierKey]) -> list[VerifierKey]:
        """The keys (among ``keys``) whose signature on this note verifies."""
        message = self.body.encode("utf-8")
        good: list[VerifierKey] = []
        for key in keys:
            for sig in self.signatures:
                if (
                    sig.name == key.name
                    and sig.key_hash == key.hash
                    and key.verify(message, sig.signature)
                ):
                    good.append(key)
                    break
        return good


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[StationKey]) -> str:
    body = checkpoint.body()
    message = body.encode("utf-8")
    signatures = tuple(NoteSignature(k.name, k.verifier.hash, k.sign(message)) for k in signers)
    return SignedNote(body, signatures).text()


def open_checkpoint(text: str, keys: Sequence[VerifierKey]) -> tuple[Checkpoint, list[VerifierKey]]:
    """Parse a signed checkpoint; raise CheckpointError unless one of ``keys`` signed it."""
    note = SignedNote.parse(text)
    checkpoint = Checkpoint.parse_body(note.body)
    good = note.verified_by(keys)
    if not good:
        names = ", ".join(sorted({s.name + "+" + s.key_hash.hex() for s in note.signatures}))
        raise CheckpointError(
            f"checkpoint of size {checkpoint.size} has no valid signature by a trusted key "
            f"(signed by {names}): check the public key you gave"
        )
    return checkpoint, good


def candidate_keys(text: str, public: bytes, name: str | None) -> list[VerifierKey]:
    """Verifier keys for a nameless public key (PEM): one per name the note was signed as."""
    if name is not None:
        return [VerifierKey(name, public)]
    try:
        note = SignedNote.parse(text)
    except CheckpointError:
        return []
    return [VerifierKey(n, public) for n in sorted({s.name for s in note.signatures})]
