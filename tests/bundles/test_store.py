from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from disruptor.bundles.pack import pack_to_file
from disruptor.bundles.settings import BundleSettings
from disruptor.bundles.signing import (
    SignedManifest,
    format_public_key,
    generate_key,
    public_raw,
    sign_manifest,
)
from disruptor.bundles.store import BundleStore
from disruptor.bundles.trust import TrustStore
from disruptor.errors import (
    DigestMismatch,
    InvalidName,
    ManifestInvalid,
    NotFound,
    PayloadTooLarge,
    SignatureInvalid,
    UntrustedSigner,
)

from .archives import make_app


@dataclasses.dataclass
class Bundle:
    data: bytes
    manifest: SignedManifest

    @property
    def sha1(self) -> str:
        return self.manifest.sha1


def make_bundle(tmp_path: Path, key: Ed25519PrivateKey, **manifest_changes: object) -> Bundle:
    archive = tmp_path / "b.tar.zst"
    result = pack_to_file(make_app(tmp_path / "app"), archive)
    manifest = sign_manifest(
        key,
        sha1=result.sha1,
        sha256=result.sha256,
        size=result.size,
        name=str(manifest_changes.get("name", "demo")),
        version=str(manifest_changes.get("version", "1.0")),
        signed_at=1_700_000_000,
    )
    if "sha256" in manifest_changes:
        manifest = sign_manifest(
            key,
            sha1=result.sha1,
            sha256=str(manifest_changes["sha256"]),
            size=result.size,
            name="demo",
            version="1.0",
            signed_at=1,
        )
    return Bundle(archive.read_bytes(), manifest)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return generate_key()


def new_store(tmp_path: Path, key: Ed25519PrivateKey, **kw: object) -> BundleStore:
    trust = TrustStore(tmp_path / "trusted")
    trust.add(format_public_key(public_raw(key)))
    return BundleStore(tmp_path / "store", tmp_path / "unpacked", trust, **kw)  # type: ignore[arg-type]


async def upload(
    store: BundleStore, sha1: str, data: bytes, manifest: SignedManifest | None
) -> bool:
    up = store.begin_upload(sha1)
    for i in range(0, len(data), 1000):
        up.write(data[i : i + 1000])
    return await up.commit(manifest)


def temps(store: BundleStore) -> list[Path]:
    return list(store.tmp_dir.iterdir())


async def test_upload_then_read_back(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    store = new_store(tmp_path, key)
    b = make_bundle(tmp_path, key)
    assert await upload(store, b.sha1, b.data, b.manifest) is True
    assert store.has(b.sha1) and store.sha1s() == {b.sha1}
    assert store.path(b.sha1).read_bytes() == b.data
    assert store.manifest(b.sha1) == b.manifest
    [info] = store.list()
    assert (info.sha1, info.size, info.name, info.version) == (b.sha1, len(b.data), "demo", "1.0")
    assert info.key_id == b.manifest.key_id
    assert store.stats.uploads == 1 and store.stats.bytes_stored == len(b.data)
    assert await upload(store, b.sha1, b.data, b.manifest) is False
    assert store.stats.uploads_duplicate == 1
    assert temps(store) == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("wrong-url", DigestMismatch),
        ("truncated", DigestMismatch),
        ("sha256", DigestMismatch),
        ("untrusted", UntrustedSigner),
        ("unsigned", SignatureInvalid),
        ("bad-signature", SignatureInvalid),
        ("name", ManifestInvalid),
    ],
)
async def test_refusals_leave_nothing(
    tmp_path: Path, key: Ed25519PrivateKey, change: str, error: type[Exception]
) -> None:
    store = new_store(tmp_path, key)
    b = make_bundle(tmp_path, key)
    sha1, data, manifest = b.sha1, b.data, b.manifest
    if change == "wrong-url":
        sha1 = "0" * 40
    elif change == "truncated":
        data = data[:-10]
    elif change == "sha256":
        manifest = make_bundle(tmp_path, key, sha256="f" * 64).manifest
    elif change == "untrusted":
        manifest = make_bundle(tmp_path, generate_key()).manifest
    elif change == "unsigned":
        manifest = dataclasses.replace(manifest, signature="", key_id="")
    elif change == "bad-signature":
        manifest = dataclasses.replace(manifest, signature="A" * 86)
    elif change == "name":
        manifest = make_bundle(tmp_path, key, name="other").manifest
    with pytest.raises(error):
        await upload(store, sha1, data, manifest)
    assert store.sha1s() == set()
    assert temps(store) == []
    assert list(store.manifests_dir.iterdir()) == []
    assert store.stats.verify_failures == 1


async def test_insecure_dev_accepts_unsigned_and_untrusted(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    store = new_store(tmp_path, key, insecure_dev=True)
    b = make_bundle(tmp_path, generate_key())
    assert await upload(store, b.sha1, b.data, b.manifest)
    store.delete(b.sha1)
    assert await upload(store, b.sha1, b.data, None)
    assert store.manifest(b.sha1).name == "demo"
    assert not store.manifest(b.sha1).signed


async def test_body_over_the_limit(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    store = new_store(tmp_path, key, limits=BundleSettings(upload_bytes_max=100))
    up = store.begin_upload("a" * 40)
    with pytest.raises(PayloadTooLarge):
        up.write(b"x" * 101)
    up.abort()
    assert temps(store) == []


def test_names_are_checked(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    store = new_store(tmp_path, key)
    for bad in ("A" * 40, "a" * 39, "../" + "a" * 37, "a" * 39 + "\0", ""):
        with pytest.raises(InvalidName):
            store.begin_upload(bad)
        with pytest.raises(InvalidName):
            store.path(bad)
    with pytest.raises(NotFound):
        store.path("a" * 40)
    assert temps(store) == []


async def test_concurrent_identical_uploads_store_one_copy(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    store = new_store(tmp_path, key)
    b = make_bundle(tmp_path, key)
    results = await asyncio.gather(*(upload(store, b.sha1, b.data, b.manifest) for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    assert [p.name for p in store.blobs_dir.iterdir()] == [f"{b.sha1}.tar.zst"]
    assert temps(store) == []


async def test_start_up_removes_what_a_crash_left(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    store = new_store(tmp_path, key)
    b = make_bundle(tmp_path, key)
    await upload(store, b.sha1, b.data, b.manifest)
    (store.tmp_dir / "upload-x.part").write_bytes(b"half")
    (store.tmp_dir / "unpack-y").mkdir()
    (store.tmp_dir / "unpack-y" / "f").write_text("x")
    (store.tmp_dir / "unpack-y").chmod(0o500)
    orphan = store.manifests_dir / f"{'c' * 40}.json"
    orphan.write_bytes(b.manifest.to_json())
    again = new_store(tmp_path, key)
    assert temps(again) == []
    assert not orphan.exists()
    assert again.sha1s() == {b.sha1}
    assert again.stats.bundles == 1 and again.stats.bytes_stored == len(b.data)


async def test_unpack_is_single_flight_and_delete_removes_all(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    store = new_store(tmp_path, key)
    b = make_bundle(tmp_path, key)
    await upload(store, b.sha1, b.data, b.manifest)
    paths = await asyncio.gather(*(store.unpack(b.sha1) for _ in range(8)))
    assert len(set(paths)) == 1
    assert store.stats.unpacks == 1
    assert (paths[0] / "demo.py").read_text().startswith("def handle")
    assert await store.unpack(b.sha1) == paths[0]
    store.delete(b.sha1)
    assert not paths[0].exists() and not store.has(b.sha1)
    assert list(store.manifests_dir.iterdir()) == [] and temps(store) == []
    with pytest.raises(NotFound):
        store.delete(b.sha1)
    with pytest.raises(NotFound):
        await store.unpack(b.sha1)


def test_stored_bytes_match_their_name(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    b = make_bundle(tmp_path, key)
    assert hashlib.sha1(b.data).hexdigest() == b.sha1
