#!/usr/bin/env python3
"""Runs `sealgate unseal` N times for a given number of secrets and prints the medians of
wall time, CPU time (user+sys of sealgate alone) and peak RSS, as
"<wall_ms> <cpu_ms> <rss_kib>". CPU and RSS come from the static launcher bench/rusage.c
(wait4 of sealgate's own process). Arguments after RUNS go to sealgate (`--kbs-cert FILE`
for an https:// URL: one TLS handshake per run, every secret over that connection). Used by
scripts/bench."""
import os, statistics, subprocess, sys, shutil, time

launcher, agent, url, outdir = sys.argv[1:5]
n, runs = int(sys.argv[5]), int(sys.argv[6])
args = [launcher, agent, "unseal", "--kbs", url, "--tee", "sample", "--kernel-cmdline", "/dev/null",
        "--sealed-dir", outdir, "--no-mount", "--log-level", "error"] + sys.argv[7:]
for i in range(1, n + 1):
    args += ["--resource", f"kbs:///bench/s/k{i}=k{i}"]

def once():
    shutil.rmtree(outdir, ignore_errors=True)
    os.mkdir(outdir, 0o700)
    t = time.perf_counter()
    proc = subprocess.run(args, stdout=subprocess.PIPE, text=True)
    wall = (time.perf_counter() - t) * 1000
    if proc.returncode != 0 or len(os.listdir(outdir)) != n:
        sys.exit(f"sealgate failed during the benchmark (status {proc.returncode})")
    rss, cpu = proc.stdout.split()
    return wall, float(cpu), float(rss)

once()  # warm-up (page cache, KBS threads)
samples = [once() for _ in range(runs)]
print(" ".join(f"{statistics.median(col):.2f}" for col in zip(*samples)))
