"""Ed25519 keys and the signed manifest that travels with every bundle.

A ``SignedManifest`` states: the bundle whose SHA-1 name is ``sha1``, whose bytes have SHA-256
``sha256`` and length ``size``, holding app ``name`` at ``version``, was signed at ``signed_at``
(Unix seconds) by the key ``key_id``. The signature is Ed25519 over the canonical JSON of those
fields (sorted keys, no spaces, ASCII), so any peer can re-derive the exact signed bytes.

Rule: SHA-1 is only the address. A peer trusts a bundle because the SHA-256 and size of the bytes
it holds match a manifest whose signature verifies under a key it trusts; ``verify`` checks the
signature, the store checks the bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BadRequest, ManifestInvalid, SignatureInvalid
from ..home import DIR_MODE, SECRET_FILE_MODE

if TYPE_CHECKING:
    # Loaded when a key is first used (a signature to make or check), not when a peer starts.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

MANIFEST_FORMAT = "disruptor-bundle/1"
PUBLIC_KEY_PREFIX = "ed25519:"
KEY_ID_HEX_CHARS = 16
_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
KEY_ID_RE = re.compile(r"[0-9a-f]{16}")
_FIELDS = ("format", "sha1", "sha256", "size", "name", "version", "signed_at", "key_id")


def key_id_of(public_raw: bytes) -> str:
    """A key's short name: the first 16 hex digits of the SHA-256 of its raw 32 bytes."""
    return hashlib.sha256(public_raw).hexdigest()[:KEY_ID_HEX_CHARS]


def public_raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def format_public_key(raw: bytes) -> str:
    """The text form users copy between machines: ``ed25519:<64 hex digits>``."""
    return PUBLIC_KEY_PREFIX + raw.hex()


def parse_public_key(text: str) -> bytes:
    """Accept ``ed25519:<hex>`` or bare hex; return the raw 32 bytes."""
    value = text.strip().removeprefix(PUBLIC_KEY_PREFIX).lower()
    if not _HEX64.fullmatch(value):
        raise BadRequest("a public key is 'ed25519:' followed by 64 hex digits")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    raw = bytes.fromhex(value)
    Ed25519PublicKey.from_public_bytes(raw)
    return raw


def generate_key() -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


def save_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    """Write ``key`` as unencrypted PKCS#8 PEM, mode 0600, refusing to overwrite."""
    from cryptography.hazmat.primitives import serialization

    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise BadRequest(f"{path}: not an Ed25519 private key")
    return key


def load_or_create_key(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The key at ``path``, made on first use; the flag says whether it was just created."""
    try:
        return load_private_key(path), False
    except FileNotFoundError:
        pass
    try:
        save_private_key(generate_key(), path)
        created = True
    except FileExistsError:
        created = False  # another process made it between our read and our create
    return load_private_key(path), created


@dataclass(frozen=True)
class SignedManifest:
    sha1: str
    sha256: str
    size: int
    name: str
    version: str
    signed_at: int
    key_id: str
    signature: str  # base64url, no padding; "" when unsigned (accepted only in insecure dev mode)
    format: str = MANIFEST_FORMAT

    def signed_bytes(self) -> bytes:
        return canonical_bytes(
            self.sha1, self.sha256, self.size, self.name, self.version, self.signed_at, self.key_id
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    def to_header(self) -> str:
        """The form carried in the ``X-Disruptor-Manifest`` header: base64url of the JSON."""
        return base64.urlsafe_b64encode(self.to_json()).decode().rstrip("=")

    @classmethod
    def from_header(cls, value: str, bytes_max: int) -> SignedManifest:
        if len(value) > bytes_max * 4 // 3 + 4:
            raise ManifestInvalid("signed manifest header is too large")
        try:
            raw = base64.urlsafe_b64decode(value.strip() + "=" * (-len(value.strip()) % 4))
        except (binascii.Error, ValueError):
            raise ManifestInvalid("signed manifest header is not base64url") from None
        return cls.from_json(raw)

    @classmethod
    def from_json(cls, raw: bytes) -> SignedManifest:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise ManifestInvalid("signed manifest is not JSON") from None
        if not isinstance(data, dict):
            raise ManifestInvalid("signed manifest must be a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignedManifest:
        unknown = sorted(set(data) - {*_FIELDS, "signature"})
        if unknown:
            raise ManifestInvalid(f"signed manifest: unknown field {unknown[0]!r}")
        if data.get("format") != MANIFEST_FORMAT:
            raise ManifestInvalid(f"signed manifest: format must be {MANIFEST_FORMAT!r}")
        checks: dict[str, tuple[type, re.Pattern[str] | None]] = {
            "sha1": (str, _HEX40),
            "sha256": (str, _HEX64),
            "name": (str, None),
            "version": (str, None),
            "key_id": (str, None),
            "signature": (str, None),
        }
        for field, (kind, pattern) in checks.items():
            value = data.get(field)
            if not isinstance(value, kind):
                raise ManifestInvalid(f"signed manifest: {field} missing or not a string")
            if pattern is not None and not pattern.fullmatch(str(value)):
                raise ManifestInvalid(f"signed manifest: {field} is malformed")
            if len(str(value)) > 256:
                raise ManifestInvalid(f"signed manifest: {field} is too long")
        for field in ("size", "signed_at"):
            value = data.get(field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ManifestInvalid(f"signed manifest: {field} must be a non-negative integer")
        return cls(**{k: data[k] for k in (*_FIELDS, "signature")})

    @property
    def signed(self) -> bool:
        return bool(self.signature) and bool(KEY_ID_RE.fullmatch(self.key_id))


def canonical_bytes(
    sha1: str, sha256: str, size: int, name: str, version: str, signed_at: int, key_id: str
) -> bytes:
    body = {
        "format": MANIFEST_FORMAT,
        "sha1": sha1,
        "sha256": sha256,
        "size": size,
        "name": name,
        "version": version,
        "signed_at": signed_at,
        "key_id": key_id,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign_manifest(
    key: Ed25519PrivateKey,
    *,
    sha1: str,
    sha256: str,
    size: int,
    name: str,
    version: str,
    signed_at: int,
) -> SignedManifest:
    kid = key_id_of(public_raw(key))
    message = canonical_bytes(sha1, sha256, size, name, version, signed_at, kid)
    signature = base64.urlsafe_b64encode(key.sign(message)).decode().rstrip("=")
    return SignedManifest(sha1, sha256, size, name, version, signed_at, kid, signature)


def unsigned_manifest(
    *, sha1: str, sha256: str, size: int, name: str, version: str, signed_at: int
) -> SignedManifest:
    """A manifest with no signature: only a peer in insecure development mode accepts it."""
    return SignedManifest(sha1, sha256, size, name, version, signed_at, "", "")


def verify_signature(manifest: SignedManifest, public: bytes) -> None:
    """Raise ``SignatureInvalid`` unless ``manifest`` is signed by the key ``public``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if key_id_of(public) != manifest.key_id:
        raise SignatureInvalid("the manifest's key id does not match the key checked against")
    try:
        signature = base64.urlsafe_b64decode(
            manifest.signature + "=" * (-len(manifest.signature) % 4)
        )
        Ed25519PublicKey.from_public_bytes(public).verify(signature, manifest.signed_bytes())
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureInvalid(
            f"signature on bundle {manifest.sha1} does not verify under key {manifest.key_id}"
        ) from None
