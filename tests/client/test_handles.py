"""The progress bar drawn for ``progress=True`` moves with each piece and closes at the end."""

from __future__ import annotations

import pytest

from disruptor.client.collected import Collected
from disruptor.client.handles import progress_bar


def test_the_bar_moves_per_piece_counts_failures_and_closes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    collected = Collected(20)
    bar = progress_bar(collected)
    counts = []
    for start in range(0, 20, 5):
        errors = [{"index": start, "kind": "task-failed", "type": "E", "message": "m"}]
        collected.add({"start": start, "count": 5, "values": [0] * 5, "errors": errors})
        counts.append(bar.n)
    assert counts == [5, 10, 15, 20]
    collected.finish({"id": "j", "state": "completed"})
    assert bar.disable  # tqdm's mark of a closed bar
    err = capsys.readouterr().err
    assert "20/20" in err and "failed=4" in err
