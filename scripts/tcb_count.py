#!/usr/bin/env python3
"""Counts the project's own Rust in the guest binary's path: lines of code (not blank, not
comment-only, `#[cfg(test)]` items and test files excluded) per component, and every
`unsafe` block or impl with its location. Used by scripts/tcb-report."""
import os, re, sys

root = sys.argv[1]
components = [
    ("core library: sealgate-core (no_std, sans-IO)", "agent/core/src", lambda p: True),
    ("platform layer: sealgate-linux", "agent/linux/src", lambda p: True),
    ("TLS client: sealgate-tls (no_std)", "agent/tls/src", lambda p: True),
    ("guest binary: sealgate (its library and main.rs)", "agent/src", lambda p: True),
    ("guest binary: start-up (sealgate-rt)", "agent/rt/src", lambda p: True),
    ("firmware-glue (without sim)", "firmware-glue/src", lambda p: "/sim/" not in p),
]

def strip_tests(text):
    """Drops `#[cfg(test)]` items (a module or function with its braces)."""
    out, lines, i = [], text.split("\n"), 0
    lines = list(enumerate(lines, 1))
    while i < len(lines):
        if lines[i][1].strip().startswith("#[cfg(test)]"):
            j, depth, opened = i + 1, 0, False
            while j < len(lines):
                text_j = lines[j][1]
                depth += text_j.count("{") - text_j.count("}")
                opened = opened or "{" in text_j
                if (opened and depth <= 0) or (not opened and text_j.rstrip().endswith(";")):
                    break
                j += 1
            i = j + 1
            continue
        out.append(lines[i])
        i += 1
    return out

def code_lines(lines):
    n, in_block = 0, False
    for _, l in lines:
        s = l.strip()
        if in_block:
            in_block = "*/" not in s
            continue
        if s.startswith("/*"):
            in_block = "*/" not in s
            continue
        if s and not s.startswith("//"):
            n += 1
    return n

total, unsafe_sites = 0, []
print("| component | files | lines of code |")
print("|---|---|---|")
for name, base, keep in components:
    files, count = 0, 0
    if not os.path.isdir(os.path.join(root, base)):
        print(f"| {name} | {base} missing: update scripts/tcb_count.py | |")
        continue
    for dirpath, _, names in os.walk(os.path.join(root, base)):
        for f in sorted(names):
            rel = os.path.relpath(os.path.join(dirpath, f), root)
            if (not f.endswith(".rs") or f == "tests.rs" or f.endswith("_tests.rs")
                    or f.endswith("_test.rs") or "/tests/" in rel or not keep(rel)):
                continue
            lines = strip_tests(open(os.path.join(root, rel)).read())
            files += 1
            count += code_lines(lines)
            for lineno, l in lines:
                if re.search(r"\bunsafe\s*(\{|impl\b)", l) and not l.strip().startswith("//"):
                    unsafe_sites.append(f"{rel}:{lineno}: {l.strip()[:70]}")
    total += count
    print(f"| {name} | {files} | {count} |")
print(f"| **total** | | **{total}** |")
print()
print(f"unsafe blocks/impls in the guest path: {len(unsafe_sites)}")
for site in unsafe_sites:
    print(f"  {site}")
