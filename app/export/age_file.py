"""age v1 encryption with pyrage: to a passphrase or to recipients' public keys.

Plaintext only ever exists in memory. The ciphertext is written to a temporary file
in the target folder and renamed into place only when complete (owner-only).
"""

from __future__ import annotations

from pathlib import Path

import pyrage

from app.fileio import atomic_write, os_reason

MAGIC = b"age-encryption.org/v1\n"
ARMOR = b"-----BEGIN AGE ENCRYPTED FILE-----"


class AgeError(Exception):
    """One clear line; nothing was written."""


def parse_recipients(keys: list[str]) -> list:
    out = []
    for key in keys:
        key = key.strip()
        try:
            if key.startswith("age1"):
                out.append(pyrage.x25519.Recipient.from_str(key))
            elif key.startswith(("ssh-ed25519 ", "ssh-rsa ")):
                out.append(pyrage.ssh.Recipient.from_str(key))
            else:
                raise ValueError
        except (ValueError, pyrage.RecipientError) as exc:
            raise AgeError(f"{key[:24]}… is not an age public key (age1…) or SSH public key") from exc
    return out


def read_identities(path: Path) -> list:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AgeError(f"cannot read the identity file {path}") from exc
    identities = []
    for line in lines:
        line = line.strip()
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                identities.append(pyrage.x25519.Identity.from_str(line))
            except (ValueError, pyrage.IdentityError) as exc:
                raise AgeError(f"{path} holds a damaged age secret key") from exc
    if not identities:
        raise AgeError(f"{path} holds no age secret key (AGE-SECRET-KEY-…)")
    return identities


def encrypt(plaintext: bytes, *, passphrase: str | None = None, recipients: list | None = None) -> bytes:
    if recipients:
        return pyrage.encrypt(plaintext, recipients)
    if passphrase:
        return pyrage.passphrase.encrypt(plaintext, passphrase)
    raise AgeError("an export needs a passphrase or at least one recipient")


def write_encrypted(path: Path, ciphertext: bytes) -> None:
    if not path.parent.is_dir():
        raise AgeError(f"the folder {path.parent} does not exist")
    try:
        atomic_write(path, ciphertext)
    except OSError as exc:
        reason = os_reason(exc)
        raise AgeError(f"could not write {path}: {reason}; nothing was written") from exc


def stanza_types(data: bytes) -> list[bytes]:
    """The recipient stanza types of an age header (``scrypt``, ``X25519``, …).

    Raises :class:`AgeError` when the header is not a whole age header: its stanzas and
    the closing ``---`` line must come first, in text, before the encrypted body.
    """
    end = data.find(b"\n--- ", 0, 1 << 20)
    if end < 0:
        raise AgeError("this age file is damaged: its header is incomplete")
    lines = data[len(MAGIC):end].split(b"\n")
    types = [line.split(b" ")[1] for line in lines if line.startswith(b"-> ") and len(line) > 3]
    if not types or any(not (0x20 <= byte < 0x7f) for line in lines for byte in line):
        raise AgeError("this age file is damaged: its header is not readable")
    return types


def needs_passphrase(data: bytes) -> bool:
    """True for a passphrase (scrypt) file, False for one encrypted to recipients."""
    check(data)
    if data.startswith(ARMOR):
        return True  # cannot tell without unarmoring; ask for a passphrase unless -i is given
    return b"scrypt" in stanza_types(data)


def check(data: bytes) -> None:
    if not (data.startswith(MAGIC) or data.startswith(ARMOR)):
        raise AgeError("this is not an age-encrypted file")


def decrypt(data: bytes, *, passphrase: str | None = None, identities: list | None = None) -> bytes:
    check(data)
    try:
        if identities:
            return pyrage.decrypt(data, identities)
        if passphrase is not None:
            return pyrage.passphrase.decrypt(data, passphrase)
    except pyrage.DecryptError as exc:
        what = "identity" if identities else "passphrase"
        raise AgeError(
            f"could not decrypt: wrong {what}, or the file was changed, damaged or cut short"
        ) from exc
    raise AgeError("decrypting needs a passphrase or an identity file (-i)")
