"""Word counts of a text, with words reduced to their stems by the vendored ``stemmer`` package.

Counting rule: a word is a run of letters, digits and apostrophes, compared in lower case; ``total``
is how many words the text has, ``unique`` how many distinct stems they reduce to. So "war" and
"wars" are one word, and "The First World War was to be the war to end all wars." has 13 words
and 9 unique ones: the, first, world, war (3 times), was, to, be, end, all.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from stemmer import stem  # from vendor/: the bundle carries its own dependency

WORD = re.compile(r"[a-z0-9']+")


def handle(item: Any) -> dict[str, Any]:
    if not isinstance(item, str):
        raise TypeError(f"wordcount takes a string of text, not {type(item).__name__}")
    words = [w.strip("'") for w in WORD.findall(item.lower())]
    words = [w for w in words if w]
    stems = Counter(stem(w) for w in words)
    return {"total": len(words), "unique": len(stems), "counts": dict(stems.most_common(20))}
