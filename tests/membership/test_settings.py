"""Presets and validation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from disruptor.errors import BadRequest
from disruptor.membership.settings import LAN, PRESET_NAMES, preset


def test_presets_are_valid_and_ordered_by_patience() -> None:
    configs = [preset(n).validate() for n in PRESET_NAMES]
    local, lan, wan = configs
    assert local.probe_timeout_s < lan.probe_timeout_s < wan.probe_timeout_s
    assert lan.probe_interval_s == 1.0 and lan.gossip_interval_s == 0.2
    assert all(c.datagram_bytes_max <= 1400 for c in configs)
    with pytest.raises(BadRequest):
        preset("moon")


def test_validate_rejects_nonsense() -> None:
    with pytest.raises(BadRequest):
        replace(LAN, probe_timeout_s=2.0).validate()
    with pytest.raises(BadRequest):
        replace(LAN, datagram_bytes_max=100).validate()
