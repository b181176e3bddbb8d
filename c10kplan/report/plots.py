"""The report's figures (matplotlib, the `plot` extra), each a PNG, drawn from a VerifyResult
alone. Figures are built with matplotlib.figure.Figure (no pyplot: no global state, no GUI
backend; the Agg canvas renders them).

    ramp.png     connections established over time (ramp and hold), failures marked
    memory.png   host Slab against connections: the measured points and the plan's line
    latency.png  the latency percentile spectrum, corrected and raw (wrk2 / HdrHistogram style:
                 x = 1 / (1 - percentile), log scale)
    cpu.png      CPU per message, measured against planned, server and storm
"""

from __future__ import annotations

from pathlib import Path

from c10kplan.storm.stats import merge_encoded

MIB = 1 << 20
SIZE = (8.0, 4.2)  # inches; at DPI 100: 800 x 420 px
DPI = 100
# The spectrum's percentiles: 0, 50, 75, 87.5, ... halving what is left (HdrHistogram's
# percentile iterator, 5 steps per halving), up to the last sample.
_STEPS_PER_HALF = 5


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    return fig, fig.subplots()


def _save(fig, path: Path) -> Path:
    fig.savefig(path, format="png")
    return path


def ramp_plot(res, path: Path) -> Path | None:
    """Established connections over time; red marks where the failure count rose."""
    samples = res.ramp
    if not samples:
        return None
    fig, ax = _figure()
    t = [s.t for s in samples]
    ax.plot(t, [s.established for s in samples], color="tab:blue", label="established")
    ax.axhline(res.connections, color="gray", linestyle="--", linewidth=1, label=f"target {res.connections:,}")
    rose = [(s.t, s.established, s.failed - p.failed) for p, s in zip(samples, samples[1:]) if s.failed > p.failed]
    if samples[0].failed:
        rose.insert(0, (samples[0].t, samples[0].established, samples[0].failed))
    if rose:
        ax.scatter([r[0] for r in rose], [r[1] for r in rose], color="tab:red", marker="x", zorder=3,
                   label=f"failures ({samples[-1].failed:,} in all)")
        if len(rose) <= 20:  # few enough to say how many failed at each mark
            for t, est, n in rose:
                ax.annotate(f"+{n:,}", (t, est), textcoords="offset points", xytext=(4, -12), color="tab:red",
                            fontsize=8)
    ax.set_xlabel("seconds since the first progress report")
    ax.set_ylabel("connections")
    ax.set_title("Connections established over time")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def memory_points(res) -> list[tuple[str, int, float]]:
    """(when, sockets, Slab MiB) measured: before the storm, at each tenth of the ramp, during
    the hold. Sockets = 2 x connections (both ends are on this host)."""
    points = []
    if res.before.slab_bytes is not None:
        points.append(("before the storm", 0, res.before.slab_bytes / MIB))
    points += [(f"ramp, {s.t:g} s", 2 * s.established, s.slab_bytes / MIB) for s in res.ramp
               if s.slab_bytes is not None]
    if res.during is not None and res.during.slab_bytes is not None:
        points.append(("hold", 2 * res.storm.held, res.during.slab_bytes / MIB))
    return points


def memory_plot(res, path: Path) -> Path | None:
    points = memory_points(res)
    if not points or res.before.slab_bytes is None:
        return None
    fig, ax = _figure()
    top = max(2 * res.connections, max(p[1] for p in points))
    base = res.before.slab_bytes / MIB
    per = res.plan.kernel_bytes_per_socket
    ax.plot([0, top], [base, base + per * top / MIB], color="tab:orange", linestyle="--",
            label=f"plan: Slab before + {per:,} B per socket")
    ax.scatter([p[1] for p in points], [p[2] for p in points], color="tab:blue", zorder=3, label="measured Slab")
    ax.set_xlabel("sockets (2 per connection: both ends on this host)")
    ax.set_ylabel("Slab (MiB)")
    ax.set_title("Kernel memory against sockets")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    return _save(fig, path)


def spectrum(encoded: str) -> list[tuple[float, float]]:
    """(percentile, latency ms) points of one encoded histogram, 0 .. its last sample."""
    if not encoded:
        return []
    hist = merge_encoded([encoded])
    total = hist.get_total_count()
    if not total:
        return []
    out = []
    k = 0
    while True:
        pct = 100.0 * (1.0 - 0.5 ** (k / _STEPS_PER_HALF))
        out.append((pct, hist.get_value_at_percentile(pct) / 1000.0))
        if (100.0 - pct) * total / 100.0 < 1.0:  # less than one sample beyond: the end
            break
        k += 1
    out.append((100.0 * (1 - 1 / (2 * total)), hist.get_max_value() / 1000.0))
    return out


def latency_plot(res, path: Path) -> Path | None:
    lines = [(name, spectrum(getattr(res.storm.histograms, name)), color)
             for name, color in (("corrected", "tab:red"), ("raw", "tab:blue"))]
    lines = [line for line in lines if line[1]]
    if not lines:
        return None
    fig, ax = _figure()
    for name, points, color in lines:
        ax.plot([1 / (1 - p / 100) for p, _ in points], [v for _, v in points], color=color, label=name)
    ax.set_xscale("log")
    right = max(1 / (1 - p / 100) for _, points, _ in lines for p, _ in points)
    ticks = [2, 10] + [10 ** k for k in range(2, 9) if 10 ** k <= 1.5 * right]
    ax.set_xticks(ticks, [_pct_label(1 - 1 / x) for x in ticks])
    ax.minorticks_off()
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Message latency by percentile")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left")
    return _save(fig, path)


def _pct_label(q: float) -> str:
    return f"{100 * q:.10g}%"


def cpu_plot(res, path: Path) -> Path | None:
    rows = [c for c in res.comparisons if c.figure.startswith("CPU per message") and c.planned]
    if not any(c.measured is not None for c in rows):  # idle, or too short to measure: no figure
        return None
    fig, ax = _figure()
    names = [c.figure.removeprefix("CPU per message, ") for c in rows]
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [c.planned for c in rows], width=0.4, color="tab:orange", label="planned")
    ax.bar([i + 0.2 for i in x], [c.measured or 0 for c in rows], width=0.4, color="tab:blue", label="measured")
    for i, c in zip(x, rows):
        ax.annotate(f"{c.planned:g} us", (i - 0.2, c.planned), ha="center", va="bottom")
        ax.annotate("not measured" if c.measured is None else f"{c.measured:g} us", (i + 0.2, c.measured or 0),
                    ha="center", va="bottom")
    top = max(max(c.planned, c.measured or 0) for c in rows)
    ax.set_ylim(0, 1.3 * top)  # room for the labels and the legend above the bars
    ax.set_xticks(list(x), names)
    ax.set_ylabel("CPU us per message (echo round trip)")
    ax.set_title("CPU per message: measured against planned")
    ax.legend(loc="upper left", ncols=2)
    return _save(fig, path)


PLOTS = (("ramp.png", ramp_plot), ("memory.png", memory_plot), ("latency.png", latency_plot),
         ("cpu.png", cpu_plot))


def draw_all(res, folder: Path) -> dict[str, Path | None]:
    """Every figure into `folder`; None for a figure without data (an idle run has no latency)."""
    return {name: fn(res, folder / name) for name, fn in PLOTS}
