"""Generalization hierarchies (taxonomy trees) for categorical quasi-identifiers.

A categorical value is generalized by replacing it with one of its ancestors in a tree whose leaves are the column's
values and whose root ``*`` stands for "any value" (Samarati & Sweeney 1998; the same trees Basic Mondrian
(LeFevre et al., KDD 2006) splits on). The information lost by publishing node ``u`` is the normalized certainty
penalty of Xu et al. (KDD 2006): ``|leaves(u)| / |leaves(root)|``, and 0 for a leaf.

Three ways to get a tree:

* :meth:`Hierarchy.from_children`: given explicitly (the policy's ``hierarchy`` table: parent -> children);
* :meth:`Hierarchy.prefix`: for codes of equal length made of digits (zip codes, area codes), each level masks one more
  trailing character (``02134`` -> ``0213*`` -> ``021**`` -> ... -> ``*``);
* :meth:`Hierarchy.flat`: every value a child of the root, i.e. a value is published exactly or as ``*``.

:func:`auto_hierarchy` picks prefix for equal-length digit codes and flat otherwise (the documented default).
Missing values (``None``) are a leaf of their own, :data:`MISSING`, directly under the root.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import ConfigError

__all__ = ["MISSING", "ROOT", "Hierarchy", "auto_hierarchy"]

ROOT = "*"
MISSING = "<missing>"

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Hierarchy:
    """A taxonomy tree; node 0 is the root. ``ancestors[leaf]`` lists root..leaf node ids, padded with the leaf."""

    labels: tuple[str, ...]
    parent: IntArray
    leaf_count: IntArray  # leaves under each node; 1 for a leaf
    is_leaf: npt.NDArray[np.bool_]
    depth: IntArray  # 0 for the root
    ancestors: IntArray  # (n_nodes, max_depth + 1); rows of inner nodes are unused
    _leaf_ids: dict[str, int] = field(repr=False)

    @classmethod
    def _build(cls, parent_of: Mapping[str, str], leaves: Sequence[str]) -> Hierarchy:
        """A tree from child -> parent links (acyclic; every chain ends at :data:`ROOT`)."""
        labels = [ROOT]
        ids = {ROOT: 0}
        parents = [-1]

        def node_id(label: str) -> int:
            if label in ids:
                return ids[label]
            parent = node_id(parent_of.get(label, ROOT))
            ids[label] = len(labels)
            labels.append(label)
            parents.append(parent)
            return ids[label]

        for leaf in leaves:
            node_id(leaf)
        parent = np.asarray(parents, dtype=np.int64)
        n = len(labels)
        is_leaf = np.ones(n, dtype=bool)
        is_leaf[parent[parent >= 0]] = False
        leaf_count = is_leaf.astype(np.int64)
        depth = np.zeros(n, dtype=np.int64)
        # Nodes are created after their parents, so one pass in creation order fixes depths ...
        for node in range(1, n):
            depth[node] = depth[parent[node]] + 1
        # ... and one pass in reverse order sums leaves up the tree.
        for node in range(n - 1, 0, -1):
            leaf_count[parent[node]] += leaf_count[node]
        ancestors = np.zeros((n, int(depth.max()) + 1), dtype=np.int64)
        for node in np.flatnonzero(is_leaf):
            ancestors[node, :] = node
            walk = int(node)
            while walk >= 0:
                ancestors[node, depth[walk]] = walk
                walk = int(parent[walk])
        leaf_ids = {labels[i]: i for i in np.flatnonzero(is_leaf)}
        return cls(tuple(labels), parent, leaf_count, is_leaf, depth, ancestors, leaf_ids)

    @classmethod
    def from_children(cls, children: Mapping[str, Sequence[str]], values: Iterable[str | None]) -> Hierarchy:
        """A tree given as ``{parent: [children...]}``; names not listed as a child hang under the root.

        Every value of the column must be a leaf: a value that is an inner node, or a tree naming a child twice,
        is a :class:`ConfigError`. Values the tree does not mention become leaves under the root.
        """
        parent_of: dict[str, str] = {}
        for parent, kids in children.items():
            if isinstance(kids, str) or not isinstance(kids, Sequence):
                raise ConfigError(f"hierarchy node {parent!r}: children must be a list of names")
            for kid in kids:
                kid = str(kid)
                if kid in parent_of and parent_of[kid] != parent:
                    raise ConfigError(f"hierarchy names {kid!r} under both {parent_of[kid]!r} and {parent!r}")
                parent_of[kid] = str(parent)
        for start in parent_of:
            walk, seen = start, {start}
            while walk in parent_of:
                walk = parent_of[walk]
                if walk in seen:
                    raise ConfigError(f"generalization hierarchy has a cycle through {walk!r}")
                seen.add(walk)
        inner = set(parent_of.values())
        present = sorted({MISSING if v is None else v for v in values})
        clash = [v for v in present if v in inner or v == ROOT]
        if clash:
            raise ConfigError(f"values {clash[:5]} are inner nodes of the hierarchy, not leaves")
        declared = [name for name in parent_of if name not in inner]
        return cls._build(parent_of, sorted({*declared, *present}))

    @classmethod
    def flat(cls, values: Iterable[str | None]) -> Hierarchy:
        return cls._build({}, sorted({MISSING if v is None else v for v in values}))

    @classmethod
    def prefix(cls, values: Iterable[str | None]) -> Hierarchy:
        """Equal-length codes: level ``i`` masks the last ``i`` characters with ``*``."""
        present = sorted({MISSING if v is None else v for v in values})
        codes = [v for v in present if v != MISSING]
        if len({len(v) for v in codes}) > 1:
            raise ConfigError("a prefix hierarchy needs codes of equal length")
        parent_of: dict[str, str] = {}
        for code in codes:
            node = code
            for masked in range(1, len(code)):
                up = code[: len(code) - masked] + ROOT * masked
                parent_of[node] = up
                node = up
        return cls._build(parent_of, present)

    @property
    def n_leaves(self) -> int:
        return int(self.leaf_count[0])

    def leaf_ids(self, values: Sequence[str | None]) -> IntArray:
        """The leaf node id of each value (``None`` -> :data:`MISSING`)."""
        try:
            return np.fromiter(
                (self._leaf_ids[MISSING if v is None else v] for v in values), dtype=np.int64, count=len(values)
            )
        except KeyError as exc:
            raise ConfigError(f"value {exc.args[0]!r} is not a leaf of the hierarchy") from None

    def penalty(self) -> npt.NDArray[np.float64]:
        """Per node NCP (Xu et al. 2006): leaves under it / all leaves; 0 for a leaf (nothing lost)."""
        ncp: npt.NDArray[np.float64] = np.where(self.is_leaf, 0.0, self.leaf_count / max(self.n_leaves, 1))
        return ncp


def _is_digit_code_column(values: Sequence[str]) -> bool:
    return (
        len(values) > 0
        and len({len(v) for v in values}) == 1
        and len(values[0]) >= 2
        and all(v.isascii() and v.isdigit() for v in values)
    )


def auto_hierarchy(values: Sequence[str | None]) -> tuple[Hierarchy, str]:
    """The default tree for a column without one, and its kind: ``prefix`` for equal-length digit codes, else
    ``flat``."""
    distinct = sorted({v for v in values if v is not None})
    if _is_digit_code_column(distinct):
        return Hierarchy.prefix(values), "prefix"
    return Hierarchy.flat(values), "flat"
