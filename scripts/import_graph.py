#!/usr/bin/env python3
"""The house drawn from the code: ``python scripts/import_graph.py [root]`` prints JSON with
the import loops between modules and between packages, the floors (the longest chain of
imports between packages, and between modules after collapsing loops) and the largest
modules. Only the project's own packages (folders with ``__init__.py``) count."""

from __future__ import annotations

import ast
import collections
import json
import os
import sys
from collections.abc import Iterable, Mapping


def modules(root: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for pkg in sorted(os.listdir(root)):
        if not os.path.isfile(os.path.join(root, pkg, "__init__.py")):
            continue
        for folder, _, files in os.walk(os.path.join(root, pkg)):
            if "migrations" in folder:
                continue
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(folder, f)
                    rel = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                    found[rel.removesuffix(".__init__")] = path
    return found


def imports(mods: Mapping[str, str]) -> dict[str, set[str]]:
    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = collections.defaultdict(set)
    for mod, path in mods.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                target = resolve(name)
                if target and target != mod:
                    edges[mod].add(target)
    return edges


def loops(nodes: Iterable[str], edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan), every node in one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    for v in nodes:
        if v not in index:
            visit(v)
    return out


def floors(nodes: Iterable[str], edges: Mapping[str, set[str]]) -> dict[str, int]:
    """Each node's floor: 1 + the highest floor it imports (loops collapsed into one)."""
    comps = loops(nodes, edges)
    comp_of = {n: i for i, c in enumerate(comps) for n in c}
    up: dict[int, set[int]] = collections.defaultdict(set)
    for a, targets in edges.items():
        for b in targets:
            if comp_of[a] != comp_of[b]:
                up[comp_of[a]].add(comp_of[b])
    memo: dict[int, int] = {}

    def depth(c: int) -> int:
        if c not in memo:
            memo[c] = 1 + max((depth(d) for d in up.get(c, ())), default=0)
        return memo[c]

    return {n: depth(comp_of[n]) for n in comp_of}


def main(root: str) -> None:
    mods = modules(root)
    edges = imports(mods)
    pkg_edges: dict[str, set[str]] = collections.defaultdict(set)
    for a, targets in edges.items():
        for b in targets:
            pa, pb = a.split(".")[0], b.split(".")[0]
            if pa != pb:
                pkg_edges[pa].add(pb)
    packages = sorted({m.split(".")[0] for m in mods})
    pkg_loops = [sorted(c) for c in loops(packages, pkg_edges) if len(c) > 1]
    in_loop = {p for c in pkg_loops for p in c}
    pkg_floor = floors(packages, pkg_edges)
    sizes: list[tuple[int, str]] = []
    for mod, path in mods.items():
        with open(path, encoding="utf-8") as f:
            sizes.append((sum(1 for _ in f), mod))
    report = {
        "module_loops": [sorted(c) for c in loops(mods, edges) if len(c) > 1],
        "package_loops": pkg_loops,
        "package_imports_in_loops": sorted(
            f"{a}->{b}" for a, bs in pkg_edges.items() for b in bs if a in in_loop and b in in_loop
        ),
        "package_floors": max(pkg_floor.values()),
        "package_floor": pkg_floor,
        "module_floors": max(floors(mods, edges).values()),
        "largest_modules": sorted(sizes, reverse=True)[:10],
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
