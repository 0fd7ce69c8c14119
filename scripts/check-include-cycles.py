#!/usr/bin/env python3
"""Fails when the source folders include each other in a cycle.

Reads every `#include "..."` line of the C++ files under vmm/, storage/,
devices/ and common/, and builds the graph of folders: an edge A -> B when a
file in folder A includes a header in folder B (a folder is the directory a
file sits in, so vmm/'s own files are the folder `vmm` and vmm/kvm/ is
another). Each folder is meant to be a layer (ARCHITECTURE.md, "Code map"):
a cycle means neither side can be read, built or tested without the other.

With --units-under DIR (repeatable) it also checks the units (foo.h and
foo.cpp are the unit foo) of the folders under DIR: no two units may include
each other either, directly or around a loop.

usage: scripts/check-include-cycles.py [--root DIR] [--units-under DIR]...

Exit status: 0 when the graph has no cycle; 1 when it has one, each printed
with one include line per edge; 2 for a usage error.
"""

import argparse
import re
import sys
from pathlib import Path

SCANNED = ("vmm", "storage", "devices", "common")
SUFFIXES = (".h", ".cpp")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def folder_of(path: Path) -> str:
    return path.parent.as_posix()


def unit_of(path: Path) -> str:
    return path.with_suffix("").as_posix()


def include_edges(root: Path, node_of=folder_of) -> dict:
    """{(from_node, to_node): "file:line: #include ..."}, first seen."""
    edges = {}
    for top in SCANNED:
        for src in sorted((root / top).rglob("*")):
            if src.suffix not in SUFFIXES or not src.is_file():
                continue
            rel = src.relative_to(root)
            lines = src.read_text(encoding="utf-8", errors="replace").splitlines()
            for number, line in enumerate(lines, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                target = Path(m.group(1))
                if target.parts[0] not in SCANNED:
                    continue  # a system or third-party header, or a path we do not own
                a, b = node_of(rel), node_of(target)
                if a != b:
                    edges.setdefault((a, b), f"{rel}:{number}: {line.strip()}")
    return edges


def strongly_connected(graph: dict) -> list:
    """Tarjan's algorithm, iterative; only components of two or more folders."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def one_cycle(graph: dict, component: list) -> list:
    """A shortest cycle through the component's first folder, as a path."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if child not in members:
                    continue
                if child == start:
                    return paths[node] + [start]
                if child not in paths:
                    paths[child] = paths[node] + [child]
                    following.append(child)
        frontier = following
    return component  # unreachable for a strongly connected component


def report_cycles(edges: dict, what: str) -> int:
    """Prints each cycle of the graph `edges` makes; returns how many."""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    components = strongly_connected(graph)
    if not components:
        print(f"include-cycles: no cycle among {len(graph)} {what}")
        return 0
    for component in components:
        cycle = one_cycle(graph, component)
        print("include cycle: " + " -> ".join(cycle), file=sys.stderr)
        for a, b in zip(cycle, cycle[1:]):
            print(f"  {edges[(a, b)]}", file=sys.stderr)
        if len(component) > len(cycle) - 1:
            print(f"  and more, among {', '.join(component)}:", file=sys.stderr)
            for (a, b), where in sorted(edges.items()):
                if a in component and b in component and (a, b) not in zip(cycle, cycle[1:]):
                    print(f"  {a} -> {b}: {where}", file=sys.stderr)
    print(f"include-cycles: {len(components)} cycle(s) among {what}; one may include only "
          "what never includes it back", file=sys.stderr)
    return len(components)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the repository root (default: this script's ../)")
    parser.add_argument("--units-under", action="append", default=[], metavar="DIR",
                        help="also check the units (foo.h + foo.cpp) under DIR")
    args = parser.parse_args()
    cycles = report_cycles(include_edges(args.root), "folders")
    for top in args.units_under:
        prefix = Path(top).as_posix().rstrip("/") + "/"
        units = {(a, b): where for (a, b), where in include_edges(args.root, unit_of).items()
                 if a.startswith(prefix) and b.startswith(prefix)}
        cycles += report_cycles(units, f"units under {prefix}")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
