#!/usr/bin/env python3
"""Fails when two source files of the library import each other, directly or through others.

The layering (ARCHITECTURE.md) keeps dependencies one-way: wire -> schema -> stream ->
server/client -> transport. This checks the finer grain: within and across modules, the
graph of `use crate::..` / `use super::..` edges between files (non-test code) has no
cycle. Usage: scripts/module-cycles.py [src-dir]
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "src"
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".rs"):
            p = os.path.join(d, f)
            mod = p[len(root) + 1 : -3].replace("/", "::")
            if mod.endswith("::mod"):
                mod = mod[:-5]
            files["" if mod == "lib" else mod] = p


def resolve(cur, path):
    parts = path.split("::")
    base = cur.split("::") if cur else []
    if parts[0] == "crate":
        out, parts = [], parts[1:]
    elif parts[0] == "super":
        out, parts = base[:-1], parts[1:]
        while parts and parts[0] == "super":
            out, parts = out[:-1], parts[1:]
    elif parts[0] == "self":
        out, parts = base, parts[1:]
    else:
        return None
    cand = out + parts
    for i in range(len(cand), 0, -1):
        m = "::".join(cand[:i])
        if m in files:
            return m
    return None


graph = {m: set() for m in files}
for m, p in files.items():
    text = open(p).read().split("#[cfg(test)]")[0]
    paths = re.findall(r"use\s+((?:crate|super|self)(?:::\w+)+)", text)
    for prefix, items in re.findall(r"use\s+((?:crate|super|self)(?:::\w+)*)::\{([^}]*)\}", text):
        paths += [prefix + "::" + i.strip().split("::")[0] for i in items.split(",") if i.strip()]
    paths += re.findall(r"((?:crate|super)(?:::\w+)+)::", text)
    for path in paths:
        target = resolve(m, path)
        if target is not None and target != m and target != "":
            graph[m].add(target)

# Tarjan's strongly connected components.
index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph[v]:
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
        if len(comp) > 1:
            cycles.append(sorted(comp))


for v in graph:
    if v not in index:
        visit(v)
for comp in cycles:
    print("file cycle:", " <-> ".join(comp))
sys.exit(1 if cycles else 0)
