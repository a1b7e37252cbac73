"""``FanOut``: the same request made on all, N, or a list of peers, answers gathered.

``POST /workers`` with ``peers: "all" | N | [HOST:PORT, ...]`` starts warm workers on those peers,
``DELETE /workers/<sha1>`` likewise stops them, and ``GET /workers?scope=cluster`` lists every
peer's workers. The resource handler calls ``FanOut.fan_out``; each peer then runs the plain,
single-peer request (without ``peers``), over the peer link. Rule: one peer failing never hides
the others' answers — each address maps to its reply or its problem.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from typing import Any

from ..address import Address
from ..errors import BadRequest, DisruptorError, InvalidPayload, NotFound
from ..link.peer_link import PeerLink
from .directory import PeerDirectory
from .policies import PeerView, pick_peers

PEERS_LIST_MAX = 10_000


def choose_targets(
    spec: Any, views: Sequence[PeerView], self_address: str, rng: random.Random
) -> list[str]:
    """The addresses ``spec`` names: ``"all"``, a count (least-loaded first), or a list."""
    if spec == "all":
        return sorted(v.address for v in views)
    if isinstance(spec, int) and not isinstance(spec, bool):
        if spec < 1:
            raise InvalidPayload("'peers' as a count must be at least 1")
        return sorted(p.address for p in pick_peers(views, spec, rng, prefer=self_address))
    if isinstance(spec, list) and spec and len(spec) <= PEERS_LIST_MAX:
        try:
            return sorted({str(Address.parse(str(p))) for p in spec})
        except BadRequest as error:
            raise InvalidPayload(f"'peers': {error.detail}") from None
    raise InvalidPayload("'peers' must be \"all\", a count, or a list of HOST:PORT")


class FanOut:
    def __init__(
        self,
        directory: PeerDirectory,
        link: PeerLink,
        clock: Callable[[], float],
    ) -> None:
        self.directory = directory
        self.link = link
        self._clock = clock

    async def deploy(self, sha1: str, targets: Sequence[str]) -> dict[str, str]:
        """Get the bundle onto every target at once; ``{address: why}`` for those that failed.

        Every target lacking it fetches at the same time, each given the holders in a different
        order (so the first sources spread over the holders) and falling back on the others:
        a peer serves a bundle from its file, so several fetches from one holder cost it little,
        and the time to reach N peers is about that of one fetch rather than log2(N) of them.
        """
        holders = self.directory.holders(sha1, self._clock())
        lacking = [t for t in targets if t not in holders]
        if not holders:
            return {target: f"no peer holds bundle {sha1}" for target in lacking}
        answers = await asyncio.gather(
            *(
                self._fetch(sha1, target, holders[n % len(holders) :] + holders[: n % len(holders)])
                for n, target in enumerate(lacking)
            )
        )
        return {target: why for target, why in zip(lacking, answers, strict=True) if why}

    async def _fetch(self, sha1: str, target: str, sources: list[str]) -> str | None:
        """Ask ``target`` to fetch the bundle, trying ``sources`` in order; why it failed, if so."""
        try:
            await self.link.call_json(
                "POST", target, "/tasks/fetch", {"bundle": sha1, "sources": sources}
            )
        except DisruptorError as error:
            return error.detail
        return None

    async def fan_out(
        self, method: str, path: str, body: dict[str, Any] | None, spec: Any
    ) -> dict[str, Any]:
        """Make the single-peer request on every target; ``{address: reply | {"error": ...}}``.

        Starting workers (a POST naming a bundle) first has each target lacking the bundle fetch
        it, then start its workers, every target at once.
        """
        directory = self.directory
        views = directory.views(self._clock())
        targets = choose_targets(spec, views, directory.self_address, directory.rng)
        plain = {k: v for k, v in (body or {}).items() if k != "peers"}
        bundle = plain.get("bundle") if method == "POST" else None
        holders = self.directory.holders(bundle, self._clock()) if isinstance(bundle, str) else []

        async def one(n: int, address: str) -> Any:
            # Starting workers: a target lacking the bundle fetches it first, and starts its
            # workers as soon as it has it (each target at its own pace, all at once).
            if isinstance(bundle, str) and address not in holders:
                why: str | None = f"no peer holds bundle {bundle}"
                if holders:
                    turn = n % len(holders)
                    why = await self._fetch(bundle, address, holders[turn:] + holders[:turn])
                if why is not None:
                    error = NotFound(f"could not get the bundle: {why}")
                    return {"error": error.to_problem()}
            try:
                return await self.link.call_json(
                    method, address, path, None if method == "GET" else plain
                )
            except DisruptorError as error:
                return {"error": error.to_problem()}

        answers = await asyncio.gather(*(one(n, a) for n, a in enumerate(targets)))
        return dict(zip(targets, answers, strict=True))
