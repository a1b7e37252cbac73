"""The peer signature: bound to method, target, body and time, and good once."""

from __future__ import annotations

import pytest

from disruptor.errors import Overloaded, Unauthorized
from disruptor.link.signature import (
    PEER_AUTH_WINDOW_S,
    NonceWindow,
    PeerCallCheck,
    PeerSignature,
    sign,
)

SECRET = b"s" * 32
NOW = 1_800_000_000.0
NONCE = "ab" * 16


def signed(body: bytes = b"{}", nonce: str = NONCE, now_s: float = NOW) -> str:
    return sign(SECRET, "POST", "/tasks", body, now_s, nonce)


def test_a_signed_call_is_accepted_once() -> None:
    check = PeerCallCheck(SECRET)
    signature = check.check_head(signed(), "POST", "/tasks", NOW + 1)
    check.admit(signature, b"{}", NOW + 1)
    again = check.check_head(signed(), "POST", "/tasks", NOW + 2)
    with pytest.raises(Unauthorized, match="replay"):
        check.admit(again, b"{}", NOW + 2)


def test_another_body_method_target_secret_or_time_is_refused() -> None:
    check = PeerCallCheck(SECRET)
    signature = check.check_head(signed(b"{}"), "POST", "/tasks", NOW)
    with pytest.raises(Unauthorized, match="body"):
        check.admit(signature, b'{"items": [1]}', NOW)
    for method, target in (("DELETE", "/tasks"), ("POST", "/tasks/fetch"), ("POST", "/tasks?x")):
        with pytest.raises(Unauthorized, match="does not match"):
            check.check_head(signed(), method, target, NOW)
    with pytest.raises(Unauthorized, match="does not match"):
        PeerCallCheck(b"other" * 8).check_head(signed(), "POST", "/tasks", NOW)
    with pytest.raises(Unauthorized, match="expired"):
        check.check_head(signed(), "POST", "/tasks", NOW + PEER_AUTH_WINDOW_S + 1)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "v1",
        f"{int(NOW)}.{'a' * 64}",  # the old form: no nonce, no body digest
        "v2" + signed()[2:],
        signed().replace(".", ":"),
        "x" * 500,
    ],
)
def test_malformed_headers_are_refused(value: str) -> None:
    assert PeerSignature.parse(value) is None
    with pytest.raises(Unauthorized, match="malformed"):
        PeerCallCheck(SECRET).check_head(value, "POST", "/tasks", NOW)


def test_nonces_are_forgotten_once_their_time_leaves_the_window() -> None:
    window = NonceWindow(window_s=60.0, capacity=10)
    assert window.admit(NONCE, NOW, NOW)
    assert not window.admit(NONCE, NOW, NOW + 60.0)
    # Past the window its timestamp alone is refused, so the nonce need not be kept.
    assert window.admit("cd" * 16, NOW + 61, NOW + 61)
    assert len(window) == 1


def test_the_nonce_memory_is_bounded_and_refuses_rather_than_forgets() -> None:
    window = NonceWindow(window_s=60.0, capacity=3)
    for n in range(3):
        assert window.admit(f"{n:032x}", NOW, NOW)
    with pytest.raises(Overloaded):
        window.admit("f" * 32, NOW, NOW + 1)
    assert not window.admit(f"{0:032x}", NOW, NOW + 1)  # still remembered
    assert window.admit("f" * 32, NOW + 1, NOW + 61)  # the old ones have expired
