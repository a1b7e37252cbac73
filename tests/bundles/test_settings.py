from __future__ import annotations

from dataclasses import fields

from disruptor.bundles.settings import BundleSettings
from disruptor.settings import PeerSettings


def test_limits_are_a_peer_config_section_with_sane_defaults() -> None:
    limits = PeerSettings().bundles
    assert limits == BundleSettings()
    assert all(getattr(limits, f.name) > 0 for f in fields(limits))
    assert limits.file_bytes_max <= limits.unpacked_bytes_max
    # The compressed upload bound is the tighter one: what may be uploaded may be unpacked.
    assert limits.upload_bytes_max <= limits.unpacked_bytes_max
    assert limits.zstd_window_bytes_max >= 1 << 23  # level 19's window fits
