#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
"""report.py - turn a benchmark run's raw.tsv into results.md and chart.png.

Usage: report.py RESULTS-DIR [--docs docs/BENCHMARK.md]

RESULTS-DIR holds raw.tsv (rep, path, metric, value per line) and meta.txt (key=value),
both written by bench/run. Figures are medians over the repetitions with min and max;
ratios are taken within each repetition first (every path ran side by side in it) and
their median is reported, so slow drifts of a shared machine cancel out. With --docs the
block between the results markers of that file is replaced by the new table.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict

DESC = {
    "direct": "direct TLS to PostgreSQL",
    "pgktls-tls": "pgktls, TLS both hops",
    "pgktls-tcp": "pgktls, client TLS, plain TCP upstream",
    "pgktls-unix": "pgktls, client TLS, unix-socket upstream",
    "pgbouncer-tls": "PgBouncer, TLS both hops",
    "pgbouncer-client": "PgBouncer, client TLS, plain upstream",
    "stunnel-tls": "stunnel, TLS both hops",
    "stunnel-client": "stunnel, client TLS, plain upstream",
    "plain": "plaintext relay (PgBouncer, no TLS)",
    "ktls-tls": "pgktls kTLS, TLS both hops",
    "ktls-tcp": "pgktls kTLS, client TLS, plain TCP upstream",
}
ORDER = list(DESC)
REF = "pgbouncer-tls"
DIRECT = "direct"

# metric, column title, decimals, lower is better
METRICS = [
    ("bulk_mbps", "bulk MB/s", 0, False),
    ("bulk_cpu_s_gb", "proxy CPU s per GB", 2, True),
    ("select_tps", "pgbench -S TPS", 0, False),
    ("select_cpu_us", "proxy CPU µs per query", 1, True),
    ("connect_rate", "new conn/s", 0, False),
    ("connect_cpu_ms", "proxy CPU ms per new conn", 2, True),
]


def load(d):
    raw = defaultdict(dict)  # (path, metric) -> {rep: value}
    with open(os.path.join(d, "raw.tsv")) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                continue
            rep, path, metric, value = parts
            try:
                raw[(path, metric)][rep] = float(value)
            except ValueError:
                pass
    meta = {}
    if os.path.exists(os.path.join(d, "meta.txt")):
        with open(os.path.join(d, "meta.txt")) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    meta[k] = v
    fake = set()
    p = os.path.join(d, "idle-fake.tsv")
    if os.path.exists(p):
        with open(p) as f:
            for line in f:
                fake.add(tuple(line.split()))
    return raw, meta, fake


def fmt(v, dec):
    if v is None:
        return "-"
    if dec == 0:
        return "{:,.0f}".format(v)
    return "{:,.{}f}".format(v, dec)


def cell(vals, dec):
    if not vals:
        return "-"
    v = list(vals.values())
    med = statistics.median(v)
    if len(v) == 1:
        return fmt(med, dec)
    return "%s (%s–%s)" % (fmt(med, dec), fmt(min(v), dec), fmt(max(v), dec))


def ratio(raw, path, ref, metric):
    """Median over repetitions of path/ref, each repetition on its own; None if unknown."""
    a, b = raw.get((path, metric), {}), raw.get((ref, metric), {})
    rs = [a[r] / b[r] for r in a if r in b and b[r] > 0]
    return statistics.median(rs) if rs else None


def fr(v):
    return "-" if v is None else "%.2fx" % v


def paths_in(raw, prefix=""):
    seen = {p for (p, _m) in raw}
    return [prefix + p for p in ORDER if prefix + p in seen]


def idle_counts(raw, prefix=""):
    ns = set()
    for (p, m) in raw:
        if p.startswith(prefix) and m.startswith("idle_kb_"):
            if prefix or not p.startswith("vm:"):
                ns.add(int(m[len("idle_kb_"):]))
    return sorted(ns)


def main_table(raw, fake):
    ns = idle_counts(raw)
    cols = METRICS + [("idle_kb_%d" % n, "idle KB per conn (%s%s)" % (
        "{:,}".format(n), ", stand-in upstream" if any(f[1] == str(n) for f in fake) else ""),
        1, True) for n in ns]
    out = ["| path | " + " | ".join(c[1] for c in cols) + " |",
           "|---|" + "---|" * len(cols)]
    for p in paths_in(raw):
        row = [DESC[p]] + [cell(raw.get((p, c[0]), {}), c[2]) for c in cols]
        out.append("| " + " | ".join(row) + " |")
    return out, cols


def ratio_table(raw, cols, ref, metrics):
    out = ["| path | " + " | ".join(c[1] for c in cols if c[0] in metrics) + " |",
           "|---|" + "---|" * sum(1 for c in cols if c[0] in metrics)]
    for p in paths_in(raw):
        if p == ref:
            continue
        row = [DESC[p]] + [fr(ratio(raw, p, ref, c[0])) for c in cols if c[0] in metrics]
        out.append("| " + " | ".join(row) + " |")
    return out


def vm_table(raw, prefix="vm:"):
    """kTLS mode against userspace mode: in the VM (prefix vm:), or natively (prefix "")."""
    pairs = [("ktls-tls", "pgktls-tls"), ("ktls-tcp", "pgktls-tcp")]
    ns = idle_counts(raw, prefix)
    cols = METRICS + [("idle_kb_%d" % n, "idle KB per conn (%d)" % n, 1, True) for n in ns]
    out = ["| kTLS mode ÷ userspace mode | " + " | ".join(c[1] for c in cols) + " |",
           "|---|" + "---|" * len(cols)]
    any_row = False
    for k, u in pairs:
        if (prefix + k, "bulk_mbps") not in raw and (prefix + k, "select_tps") not in raw:
            continue
        any_row = True
        out.append("| " + DESC[k].replace("pgktls kTLS, ", "") + " | " + " | ".join(
            fr(ratio(raw, prefix + k, prefix + u, c[0])) for c in cols) + " |")
    return (out if any_row else []), ns


def targets(raw, ns):
    t = []

    def chk(name, v, op, limit):
        if v is None:
            t.append("| %s | - | %s %.2f | not measured |" % (name, op, limit))
            return
        ok = v >= limit if op == "≥" else v <= limit
        t.append("| %s | %s | %s %.2f | %s |" % (name, fr(v) if op != "KB" else v, op, limit,
                                                  "met" if ok else "**missed**"))

    chk("bulk MB/s, pgktls TLS both hops ÷ PgBouncer", ratio(raw, "pgktls-tls", REF, "bulk_mbps"),
        "≥", 1.6)
    chk("bulk CPU per GB ÷ PgBouncer", ratio(raw, "pgktls-tls", REF, "bulk_cpu_s_gb"), "≤", 0.5)
    if ("ktls-tls", "bulk_mbps") in raw:
        chk("bulk CPU per GB, kTLS ÷ userspace (this machine's kernel)",
            ratio(raw, "ktls-tls", "pgktls-tls", "bulk_cpu_s_gb"), "≤", 0.6)
        chk("bulk MB/s, kTLS ÷ userspace (this machine's kernel)",
            ratio(raw, "ktls-tls", "pgktls-tls", "bulk_mbps"), "≥", 1.0)
    chk("VM bulk CPU per GB, kTLS ÷ userspace (emulated)",
        ratio(raw, "vm:ktls-tls", "vm:pgktls-tls", "bulk_cpu_s_gb"), "≤", 0.6)
    chk("VM bulk MB/s, kTLS ÷ userspace (emulated)",
        ratio(raw, "vm:ktls-tls", "vm:pgktls-tls", "bulk_mbps"), "≥", 1.0)
    chk("pgbench -S TPS ÷ PgBouncer", ratio(raw, "pgktls-tls", REF, "select_tps"), "≥", 1.3)
    chk("proxy CPU per query ÷ PgBouncer", ratio(raw, "pgktls-tls", REF, "select_cpu_us"),
        "≤", 0.5)
    chk("new conn/s ÷ direct TLS", ratio(raw, "pgktls-tls", DIRECT, "connect_rate"), "≥", 0.9)
    chk("proxy CPU per new conn ÷ PgBouncer", ratio(raw, "pgktls-tls", REF, "connect_cpu_ms"),
        "≤", 1.0)
    for n in ns:
        v = raw.get(("pgktls-tls", "idle_kb_%d" % n))
        med = statistics.median(v.values()) if v else None
        t.append("| idle KB per conn, userspace, %s sessions | %s | ≤ 16 KB | %s |" % (
            "{:,}".format(n), "-" if med is None else "%.1f KB" % med,
            "not measured" if med is None else ("met" if med <= 16 else "**missed**")))
    for n in idle_counts(raw, "vm:"):
        v = raw.get(("vm:ktls-tls", "idle_kb_%d" % n))
        med = statistics.median(v.values()) if v else None
        t.append("| idle KB per conn, kTLS (VM), %s sessions | %s | ≤ 4 KB | %s |" % (
            "{:,}".format(n), "-" if med is None else "%.1f KB" % med,
            "not measured" if med is None else ("met" if med <= 4 else "**missed**")))
    return ["| target | measured | wanted | |", "|---|---|---|---|"] + t


def noise(raw):
    """Spread (max - min) / median per measure, over every host path."""
    spread = defaultdict(list)
    for (p, m), vals in raw.items():
        if p.startswith("vm:") or len(vals) < 2:
            continue
        v = list(vals.values())
        med = statistics.median(v)
        if med > 0:
            spread[m].append((max(v) - min(v)) / med * 100)
    return {m: (statistics.median(s), max(s)) for m, s in spread.items()}


def chart(d, raw, cols):
    gp = shutil.which("gnuplot")
    if not gp:
        return None
    paths = paths_in(raw)
    plots = []
    for metric, title, _dec, lower in cols:
        fn = os.path.join(d, "chart-%s.dat" % metric)
        n = 0
        with open(fn, "w") as f:
            for i, p in enumerate(paths):
                v = list(raw.get((p, metric), {}).values())
                if not v:
                    continue
                f.write('%d "%s" %g %g %g\n' % (i, p, statistics.median(v), min(v), max(v)))
                n += 1
        if n:
            plots.append((fn, title + (" (lower is better)" if lower else "")))
    if not plots:
        return None
    ncol = 4
    nrow = (len(plots) + ncol - 1) // ncol
    script = ['set terminal pngcairo size %d,%d font ",9"' % (420 * ncol, 380 * nrow)
              if "pngcairo" in subprocess.run([gp, "-e", "set terminal"],
                                              capture_output=True, text=True).stderr
              else 'set terminal png size %d,%d' % (420 * ncol, 380 * nrow),
              'set output "%s"' % os.path.join(d, "chart.png"),
              'set multiplot layout %d,%d title "%s"' % (
                  nrow, ncol, "pgktls side-by-side benchmark: median, bars min-max"),
              "set style fill solid 0.6", "set boxwidth 0.7", "set grid ytics",
              "set xtics rotate by -40 left", "set yrange [0:*]", "unset key",
              "set bmargin 7"]
    for fn, title in plots:
        # A pooling relay's connection rate is ten times the others': log scale there.
        if title.startswith("new conn/s"):
            script += ["set logscale y", "set yrange [10:*]"]
            title += " (log scale)"
        else:
            script += ["unset logscale y", "set yrange [0:*]"]
        script.append('set title "%s"' % title.replace("µ", "u"))
        script.append('plot "%s" using 1:3:xtic(2) with boxes lc rgb "#4477aa", '
                      '"" using 1:3:4:5 with yerrorbars lc rgb "black" pt 0' % fn)
    script.append("unset multiplot")
    r = subprocess.run([gp], input="\n".join(script), text=True, capture_output=True)
    if r.returncode != 0:
        print("report.py: gnuplot failed: " + r.stderr, file=sys.stderr)
        return None
    return "chart.png"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--docs")
    a = ap.parse_args()
    raw, meta, fake = load(a.dir)
    table, cols = main_table(raw, fake)
    md = ["# pgktls side-by-side benchmark", ""]
    md.append("Run on %s with `%s`." % (meta.get("date", "?"),
                                         meta.get("command", "bench/run").strip())
              + ((" " + meta["command_note"]) if meta.get("command_note") else ""))
    md.append("")
    md.append("Machine: %s cores (`nproc`), %s, %s RAM; kernel %s; %s; %s; %s; %s; %s." % (
        meta.get("nproc", "?"), meta.get("cpu", "?"), meta.get("mem", "?"),
        meta.get("kernel", "?"), meta.get("openssl", "?"), meta.get("postgresql", "?"),
        meta.get("pgbouncer", "?"), meta.get("stunnel", "?"), meta.get("pgktls", "?")))
    md.append("")
    md.append("Medians over %s repetitions (min–max in brackets), all paths interleaved in each "
              "repetition. Bulk: %s MB `COPY ... TO STDOUT` read by psql; pgbench: %s s, "
              "8 clients, -j 2; MB = 10^6 bytes, GB = 10^9 bytes. Proxy CPU is user + system "
              "time of the proxy process (all threads) from /proc. TLS 1.3, AES-256-GCM, "
              "ECDSA P-256 certificates everywhere." % (
                  meta.get("reps", "?"), meta.get("bulk_mb", "?"), meta.get("secs", "?")))
    md.append("")
    md += table
    md.append("")
    if fake:
        md.append("Idle counts marked *stand-in upstream* ran against tests/integration/fakepg.py (answers "
                  "the startup with AuthenticationOk and ReadyForQuery) instead of PostgreSQL: "
                  "that many PostgreSQL backends do not fit on this machine. The figure is the "
                  "proxy's RSS growth per session, both of its hops included.")
        md.append("")
    if any(m.startswith("idle_kb_") for (p, m) in raw if p.startswith("pgbouncer")):
        md.append("PgBouncer answers a client's startup from the welcome message it cached "
                  "and links a server connection only when the first query arrives, so its "
                  "idle figure holds the client hop only; pgktls and stunnel relay 1:1 and "
                  "hold both hops (two TLS sessions for the *TLS both hops* paths).")
        md.append("")
    notes = []
    if meta.get("idle_note"):
        notes.append("Idle counts: " + meta["idle_note"].rstrip("; ") + ".")
    if os.path.exists(os.path.join(a.dir, "notes.txt")):
        with open(os.path.join(a.dir, "notes.txt")) as f:
            notes += [l.strip() for l in f if l.strip()]
    if notes:
        md += ["Notes:", ""] + ["- " + n for n in notes] + [""]
    rt_metrics = [c[0] for c in cols]
    if REF in paths_in(raw):
        md.append("## Ratios against PgBouncer, TLS both hops (median of per-repetition ratios)")
        md.append("")
        md += ratio_table(raw, cols, REF, rt_metrics)
        md.append("")
    if DIRECT in paths_in(raw):
        md.append("## Ratios against direct TLS to PostgreSQL")
        md.append("")
        md += ratio_table(raw, cols, DIRECT, ["bulk_mbps", "select_tps", "connect_rate"])
        md.append("")
    nt, _nns = vm_table(raw, "")
    if nt:
        md.append("## pgktls with kTLS on this machine's kernel: kTLS mode against userspace mode")
        md.append("")
        md.append("Real crypto on real hardware: `ktls = required` against `ktls = off`, same "
                  "binary, same run, kernel %s. This is the figure that judges the kTLS "
                  "target." % meta.get("kernel", "?"))
        md.append("")
        md += nt
        md.append("")
    elif meta.get("ktls_note"):
        md.append("Note: " + meta["ktls_note"] + ".")
        md.append("")
    vt, vns = vm_table(raw)
    if vt:
        md.append("## pgktls in the kTLS VM (qemu TCG, emulated): kTLS mode against userspace mode")
        md.append("")
        md.append("Ratios only: emulation makes absolute times meaningless. `ktls = required` "
                  "against `ktls = off`, same binary, same VM boot; guest kernel %s." %
                  meta.get("vm_kernel", "?"))
        md.append("")
        md += vt
        for n in vns:
            vals = []
            for p in ("pgktls-tls", "ktls-tls", "pgktls-tcp", "ktls-tcp"):
                v = raw.get(("vm:" + p, "idle_kb_%d" % n))
                if v:
                    vals.append("%s %.1f KB" % (DESC[p], statistics.median(v.values())))
            if vals:
                md.append("")
                md.append("Idle RSS per session in the VM (%d sessions, stand-in upstream): %s." %
                          (n, "; ".join(vals)))
        md.append("")
    md.append("## Targets (issue 7)")
    md.append("")
    md += targets(raw, idle_counts(raw))
    md.append("")
    nz = noise(raw)
    if nz:
        md.append("## Noise")
        md.append("")
        md.append("Spread (max − min) ÷ median over the repetitions, median and worst over the "
                  "paths: " + "; ".join("%s %.0f %% (worst %.0f %%)" % (m, s[0], s[1])
                                        for m, s in sorted(nz.items())) + ".")
        loads = ["%s %s" % (k, v) for k, v in meta.items() if k.startswith("load_")]
        md.append("Load average (1, 5, 15 min) at the start, per repetition and at the end: " +
                  "; ".join(loads) + ". The machine is shared with other work.")
        md.append("")
    png = chart(a.dir, raw, cols)
    if png:
        md.append("![chart](%s)" % png)
        md.append("")
    text = "\n".join(md)
    with open(os.path.join(a.dir, "results.md"), "w") as f:
        f.write(text)
    print(text)
    if a.docs:
        update_docs(a.docs, text)


BEGIN = "<!-- bench-results:begin -->"
END = "<!-- bench-results:end -->"


def update_docs(path, text):
    with open(path) as f:
        doc = f.read()
    if BEGIN not in doc or END not in doc:
        print("report.py: %s has no results markers; not updated" % path, file=sys.stderr)
        return
    # The docs copy has no title and no chart (results/ is not kept in git).
    body = "\n".join(l for l in text.split("\n")[2:] if not l.startswith("![chart]"))
    body = re.sub(r"^## ", "### ", body, flags=re.M)
    head, rest = doc.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    with open(path, "w") as f:
        f.write(head + BEGIN + "\n" + body.rstrip() + "\n" + END + tail)


if __name__ == "__main__":
    main()
