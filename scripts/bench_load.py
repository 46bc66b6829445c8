#!/usr/bin/env python3
"""Starts N `sealgate unseal` processes at once against one KBS URL, each fetching one of the
bench secrets into its own sealed directory below OUTDIR (on a tmpfs), waits for all, checks
that every one succeeded and wrote exactly its secret (no partial file, no temporary), and
prints the slowest guest's wall time in milliseconds. Used by scripts/bench.
    bench_load.py AGENT URL RESDIR OUTDIR N"""
import os, subprocess, sys, time

agent, url, resdir, outdir, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
guests = []
for i in range(n):
    sealed = os.path.join(outdir, f"g{i}")
    os.makedirs(sealed, 0o700)
    k = f"k{i % 100 + 1}"
    args = [agent, "unseal", "--kbs", url, "--tee", "sample", "--kernel-cmdline", "/dev/null",
            "--config", "/dev/null", "--sealed-dir", sealed, "--no-mount", "--log-level", "error",
            "--deadline", "120", "--resource", f"kbs:///bench/s/{k}={k}"]
    guests.append((sealed, k, time.perf_counter(), subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
# Waited for in turn, but each guest's end is taken from when it exited: poll all.
ends = {}
while len(ends) < n:
    for i, (_, _, _, p) in enumerate(guests):
        if i not in ends and p.poll() is not None:
            ends[i] = time.perf_counter()
    time.sleep(0.002)
slowest = 0.0
for i, (sealed, k, start, p) in enumerate(guests):
    err = p.stderr.read().decode(errors="replace")
    if p.returncode != 0:
        sys.exit(f"guest {i} failed (status {p.returncode}): {err}")
    want = open(os.path.join(resdir, "bench", "s", k), "rb").read()
    if os.listdir(sealed) != [k] or open(os.path.join(sealed, k), "rb").read() != want:
        sys.exit(f"guest {i}: {sealed} holds {os.listdir(sealed)}, not exactly its secret")
    slowest = max(slowest, (ends[i] - start) * 1000)
print(f"{slowest:.0f}")
