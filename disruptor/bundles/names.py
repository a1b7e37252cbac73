"""The names an archive has shown so far, in bounded memory: duplicates, case collisions and
entries below a file are found here.

Checking a name against every earlier one needs every earlier path, and every path's
ancestors, folded (NFC, case-folded) and as spelled. Keeping them as strings costs the sum of all
ancestor lengths: an 18 KB archive of deep, long names asks for gigabytes. So the index keeps no
path at all. Each distinct path (a file, a directory, or a parent only implied by a deeper name)
is one node keyed by a 64-bit hash chained from its parent's key and its own folded last
component (Python's own keyed string hash: fast, and unpredictable to whoever writes the archive);
the node holds its kind and, when its spelling differs from the folded form, a 64-bit hash of the
spelling (equal spellings always have equal hashes; two spellings of one folded name with equal
hashes would need a collision of that keyed hash, which the archive's author cannot aim for).
A name is checked component by component from its parent's key, so the work per entry is its own
length, not its depth times its length; the most recent parent directories are cached by spelling
so that sorted archives (every archive ``disruptor pack`` writes) cost one lookup per entry.

A hash collision can only make two different paths look like one: the archive is then refused
as a duplicate or a case collision, never accepted wrongly (two spellings of one folded path
always meet at the same key, and their spellings are compared in full).

Rule: the index never accounts more than ``budget_bytes`` (``NODE_BYTES`` per node, measured with
``tracemalloc`` in ``tests/bundles/test_names.py``, plus any spelling it keeps), nor walks more
than ``walk_steps_max`` path components for parents it does not have cached (a sorted archive
walks each directory once; one crafted to miss the cache every time would cost minutes of CPU);
past either, the archive is refused with ``ArchiveUnsafe``, whatever its shape.
"""

from __future__ import annotations

import unicodedata

from ..errors import ArchiveUnsafe

# What one node costs: its slot in the dict, its 64-bit int key (36 bytes) and the dict's growth
# headroom. Measured at 71 to 88 bytes a node, 110 at worst just after the table doubles.
NODE_BYTES = 112
# A node whose spelling differs from its folded form holds a 67-bit int instead of a small one.
SPELLING_OVERHEAD_BYTES = 48
# The cache of recent parent directories (spelled path -> key): small and bounded on its own.
PARENT_CACHE_ENTRIES_MAX = 1024
PARENT_CACHE_BYTES_MAX = 1024 * 1024

IMPLICIT, DIRECTORY, FILE = 0, 1, 2
_ROOT_KEY = 0
# A node's value: its kind (0, 1, 2) when spelled as folded; else this flag, the spelling's hash
# shifted left by two, and the kind.
_SPELLED = 1 << 66
_MASK64 = (1 << 64) - 1


def fold(component: str) -> str:
    """The form two names share when a case-insensitive, normalising file system equates them."""
    if component.isascii():
        return component.lower()  # the same, for ASCII, and most names are ASCII
    return unicodedata.normalize("NFC", component).casefold()


def _child_key(parent: int, folded: str) -> int:
    return hash((parent, folded))


class NameIndex:
    """Admits entry names one by one; raises ``ArchiveUnsafe`` on a clash or past the budget."""

    def __init__(self, budget_bytes: int, walk_steps_max: int = 1 << 62) -> None:
        self.budget_bytes = budget_bytes
        self.used_bytes = 0
        self.walk_steps_max = walk_steps_max
        self.walk_steps = 0
        # key -> node value (see _SPELLED).
        self._nodes: dict[int, int] = {}
        # Recently seen parent directories, by their spelled path (insertion order = age).
        self._parents: dict[str, int] = {}
        self._parents_bytes = 0

    @property
    def nodes(self) -> int:
        return len(self._nodes)

    def add(self, name: str, is_dir: bool) -> None:
        """Admit one entry (its name already checked for form: relative, no empty parts)."""
        parent_path, _, last = name.rpartition("/")
        parent = self._parent_key(name, parent_path) if parent_path else _ROOT_KEY
        folded = fold(last)
        key = _child_key(parent, folded)
        existing = self._nodes.get(key)
        kind = DIRECTORY if is_dir else FILE
        if existing is None:
            self._insert(key, kind, last, folded)
            return
        if not _spelled_as(existing, last, folded):
            raise ArchiveUnsafe(f"{name}: collides with another entry when case is ignored")
        existing_kind = existing & 3
        if existing_kind == IMPLICIT and is_dir:
            self._nodes[key] = existing - IMPLICIT + DIRECTORY
            return
        if (existing_kind == FILE) == (kind == FILE):
            raise ArchiveUnsafe(f"{name}: duplicate entry")
        what = (
            "a file with the name of a directory"
            if kind == FILE
            else "a directory with the name of a file"
        )
        raise ArchiveUnsafe(f"{name}: {what}")

    def _parent_key(self, name: str, parent_path: str) -> int:
        cached = self._parents.pop(parent_path, None)
        if cached is not None:
            self._parents[parent_path] = cached  # most recent last
            return cached
        key = _ROOT_KEY
        nodes = self._nodes
        components = parent_path.split("/")
        self.walk_steps += len(components)
        if self.walk_steps > self.walk_steps_max:
            raise ArchiveUnsafe(
                f"the archive's names take more than {self.walk_steps_max} steps to check: "
                "its entries wander between deep directories (an archive whose entries keep "
                "each directory together needs far fewer)"
            )
        for component in components:
            folded = component.lower() if component.isascii() else fold(component)
            key = hash((key, folded))  # _child_key, inlined: this loop is the hot path
            existing = nodes.get(key)
            if existing is None:
                self._insert(key, IMPLICIT, component, folded)
            elif existing in (IMPLICIT, DIRECTORY):
                if component != folded:  # the node's spelling is its folded form
                    self._collision(name, component)
            else:
                if existing & 3 == FILE:
                    raise ArchiveUnsafe(f"{name}: lies below a file")
                if not _spelled_as(existing, component, folded):
                    self._collision(name, component)
        self._remember_parent(parent_path, key)
        return key

    @staticmethod
    def _collision(name: str, component: str) -> None:
        raise ArchiveUnsafe(
            f"{name}: its directory {component!r} collides with another spelling of it when "
            "case is ignored"
        )

    def _remember_parent(self, path: str, key: int) -> None:
        self._parents[path] = key
        self._parents_bytes += len(path)
        while (
            len(self._parents) > PARENT_CACHE_ENTRIES_MAX
            or self._parents_bytes > PARENT_CACHE_BYTES_MAX
        ):
            oldest = next(iter(self._parents))
            del self._parents[oldest]
            self._parents_bytes -= len(oldest)

    def _insert(self, key: int, kind: int, spelling: str, folded: str) -> None:
        cost = NODE_BYTES
        value = kind
        if spelling != folded:
            value = _SPELLED | (hash(spelling) & _MASK64) << 2 | kind
            cost += SPELLING_OVERHEAD_BYTES
        if self.used_bytes + cost > self.budget_bytes:
            raise ArchiveUnsafe(
                f"the archive's names need more than {self.budget_bytes} bytes of memory to "
                f"check ({len(self._nodes)} distinct paths so far): too many or too long names"
            )
        self.used_bytes += cost
        self._nodes[key] = value


def _spelled_as(value: int, spelling: str, folded: str) -> bool:
    """Whether the node ``value`` was spelled ``spelling`` (whose folded form is ``folded``)."""
    if value < _SPELLED:
        return spelling == folded
    return spelling != folded and (value >> 2) & _MASK64 == hash(spelling) & _MASK64
