from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path

import pytest

from disruptor.bundles.signing import (
    SignedManifest,
    format_public_key,
    generate_key,
    key_id_of,
    load_or_create_key,
    parse_public_key,
    public_raw,
    sign_manifest,
    verify_signature,
)
from disruptor.errors import BadRequest, ManifestInvalid, SignatureInvalid

FIELDS = {
    "sha1": "a" * 40,
    "sha256": "b" * 64,
    "size": 123,
    "name": "demo",
    "version": "1.0",
    "signed_at": 1_700_000_000,
}


def test_sign_and_verify_round_trip_through_the_header() -> None:
    key = generate_key()
    manifest = sign_manifest(key, **FIELDS)  # type: ignore[arg-type]
    assert manifest.key_id == key_id_of(public_raw(key)) and len(manifest.key_id) == 16
    again = SignedManifest.from_header(manifest.to_header(), 16 * 1024)
    assert again == manifest
    verify_signature(again, public_raw(key))


@pytest.mark.parametrize(
    ("field", "value"),
    [("sha256", "c" * 64), ("size", 124), ("name", "other"), ("version", "2"),
     ("signed_at", 1)],
)  # fmt: skip
def test_any_changed_field_breaks_the_signature(field: str, value: object) -> None:
    key = generate_key()
    tampered = dataclasses.replace(sign_manifest(key, **FIELDS), **{field: value})  # type: ignore[arg-type]
    with pytest.raises(SignatureInvalid):
        verify_signature(tampered, public_raw(key))


def test_another_key_does_not_verify() -> None:
    manifest = sign_manifest(generate_key(), **FIELDS)  # type: ignore[arg-type]
    with pytest.raises(SignatureInvalid, match="key id"):
        verify_signature(manifest, public_raw(generate_key()))


def test_canonical_bytes_are_stable() -> None:
    manifest = sign_manifest(generate_key(), **FIELDS)  # type: ignore[arg-type]
    body = json.loads(manifest.signed_bytes())
    assert list(body) == sorted(body)
    assert b" " not in manifest.signed_bytes()
    assert "signature" not in body


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"format": "other"}',
        json.dumps({**FIELDS, "format": "disruptor-bundle/1", "key_id": "k", "signature": "s",
                    "extra": 1}).encode(),
        json.dumps({**FIELDS, "sha1": "XYZ", "format": "disruptor-bundle/1", "key_id": "k",
                    "signature": "s"}).encode(),
        json.dumps({**FIELDS, "size": -1, "format": "disruptor-bundle/1", "key_id": "k",
                    "signature": "s"}).encode(),
    ],
)  # fmt: skip
def test_malformed_manifests_are_refused(raw: bytes) -> None:
    with pytest.raises(ManifestInvalid):
        SignedManifest.from_json(raw)


def test_header_must_be_base64url_and_bounded() -> None:
    with pytest.raises(ManifestInvalid):
        SignedManifest.from_header("!!!not base64!!!", 1024)
    with pytest.raises(ManifestInvalid, match="too large"):
        SignedManifest.from_header("A" * 5000, 1024)


def test_public_key_text_form() -> None:
    raw = public_raw(generate_key())
    assert parse_public_key(format_public_key(raw)) == raw
    assert parse_public_key(raw.hex()) == raw
    for bad in ("ed25519:xyz", "", "ed25519:" + "0" * 63):
        with pytest.raises(BadRequest):
            parse_public_key(bad)


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.key"
    key, created = load_or_create_key(path)
    assert created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = load_or_create_key(path)
    assert not created_again
    assert public_raw(again) == public_raw(key)
