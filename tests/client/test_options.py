"""``JobOptions`` names what the peer takes, and ``Policy`` the policies it knows."""

from __future__ import annotations

from typing import get_args

from disruptor.client.options import JobOptions, Policy
from disruptor.jobs.policies import POLICY_NAMES
from disruptor.jobs.wire import JobSpec


def test_policy_names_are_the_peers() -> None:
    assert set(get_args(Policy)) == set(POLICY_NAMES)


def test_every_option_is_a_field_of_the_job_the_peer_reads() -> None:
    assert set(JobOptions.__annotations__) <= set(JobSpec.__struct_fields__)
