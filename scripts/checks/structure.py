#!/usr/bin/env python3
"""Checks the structure rules of issue 16 over every crate of the workspace:

* no non-test source file over 800 lines (the lines before a file's `#[cfg(test)]` module);
* no cycle of more than three modules among a crate's top-level modules (a module uses
  another when its code, not its comments, names `crate::other`, or `super::other` from one
  level down).

Prints what breaks a rule and exits 1; exits 0 when all holds.
"""
import glob
import os
import re
import sys

MAX_LINES = 800
MAX_CYCLE = 3
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def code_lines(path):
    with open(path) as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if line.startswith("#[cfg(test)]"):
            return i
    return len(lines)


def top_module(src_dir, path):
    rel = os.path.relpath(path, src_dir)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def dependencies(src_dir):
    """Top-level module -> the top-level modules it uses (test code left out)."""
    deps = {}
    for path in glob.glob(os.path.join(src_dir, "**", "*.rs"), recursive=True):
        module = top_module(src_dir, path)
        if module in ("lib", "main"):
            continue
        with open(path) as f:
            text = f.read()
        cut = text.find("#[cfg(test)]")
        if cut >= 0:
            text = text[:cut]
        # A doc comment's link to another module (`[`crate::plan`]`) is a pointer for the
        # reader, not a dependency of the code, so comment lines are left out.
        text = "\n".join(l for l in text.split("\n") if not l.lstrip().startswith("//"))
        used = set(re.findall(r"crate::(\w+)", text))
        for group in re.findall(r"use crate::\{([^}]*)\}", text, re.S):
            used.update(item.strip().split("::")[0] for item in group.split(","))
        deps.setdefault(module, set()).update(used)
    modules = set(deps)
    return {m: {d for d in ds if d in modules and d != m} for m, ds in deps.items()}


def strongly_connected(graph):
    """Tarjan's algorithm: the graph's strongly connected components."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for next_node in graph.get(node, ()):
            if next_node not in index:
                visit(next_node)
                low[node] = min(low[node], low[next_node])
            elif next_node in on_stack:
                low[node] = min(low[node], index[next_node])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def main():
    failures = []
    for src_dir in sorted(glob.glob(os.path.join(ROOT, "crates", "*", "src")) + [os.path.join(ROOT, "cli", "src")]):
        crate = os.path.relpath(os.path.dirname(src_dir), ROOT)
        for path in sorted(glob.glob(os.path.join(src_dir, "**", "*.rs"), recursive=True)):
            if os.path.basename(path) == "tests.rs" or f"{os.sep}tests{os.sep}" in path:
                continue
            n = code_lines(path)
            if n > MAX_LINES:
                failures.append(f"{os.path.relpath(path, ROOT)}: {n} lines of code (at most {MAX_LINES})")
        for component in strongly_connected(dependencies(src_dir)):
            if len(component) > MAX_CYCLE:
                failures.append(f"{crate}: a cycle of {len(component)} modules: {', '.join(component)}")
    for failure in failures:
        print(failure)
    if not failures:
        print("structure: every file within 800 lines, no module cycle of more than 3 modules")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
