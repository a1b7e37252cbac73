from __future__ import annotations

from pathlib import Path

import pytest

from disruptor.bundles.signing import (
    format_public_key,
    generate_key,
    key_id_of,
    load_or_create_key,
    public_raw,
)
from disruptor.bundles.trust import TrustStore
from disruptor.errors import NotFound


def test_local_key_is_trusted_by_default(tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "trusted", tmp_path / "keys" / "signing.key")
    assert store.list() == []
    key, _ = load_or_create_key(tmp_path / "keys" / "signing.key")
    raw = public_raw(key)
    assert store.lookup(key_id_of(raw)) == raw
    assert [(k.key_id, k.source) for k in store.list()] == [(key_id_of(raw), "local")]
    with pytest.raises(NotFound, match="own signing key"):
        store.remove(key_id_of(raw))


def test_add_list_remove(tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "trusted")
    raw = public_raw(generate_key())
    added = store.add(format_public_key(raw))
    assert added.key_id == key_id_of(raw)
    assert store.lookup(added.key_id) == raw
    assert [k.text for k in store.list()] == [format_public_key(raw)]
    # A second store object (another peer process) sees it at once.
    assert TrustStore(tmp_path / "trusted").lookup(added.key_id) == raw
    assert store.remove(format_public_key(raw)) == added.key_id
    assert store.lookup(added.key_id) is None
    with pytest.raises(NotFound):
        store.remove(added.key_id)


def test_a_file_under_the_wrong_id_vouches_for_nothing(tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "trusted")
    raw = public_raw(generate_key())
    store.add(format_public_key(raw))
    other_id = key_id_of(public_raw(generate_key()))
    (tmp_path / "trusted" / f"{key_id_of(raw)}.pub").rename(
        tmp_path / "trusted" / f"{other_id}.pub"
    )
    assert store.lookup(other_id) is None
    assert store.lookup("../../etc/passwd") is None
