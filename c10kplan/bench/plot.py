"""The scaling figure as a PNG: log-log axes, one line per backend (matplotlib, optional).

matplotlib is the optional extra `plot`; without it `require_matplotlib` raises one clear
error naming the extra, before any measurement starts. The figure is drawn on an Agg canvas
directly (no pyplot: no global state, no display needed).
"""

from __future__ import annotations

from pathlib import Path

from c10kplan.bench.backends import BackendsBench
from c10kplan.errors import BadInput, EnvironmentProblem
from c10kplan.reactor.backends.select import FD_SETSIZE

INSTALL_HINT = "pip install 'c10kplan[plot]'"


def require_matplotlib() -> None:
    """Fail early, with the install command, when the `plot` extra is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        raise EnvironmentProblem(
            f"--plot needs matplotlib, which is not installed: {INSTALL_HINT}"
        ) from None


def check_plot_path(path: Path) -> Path:
    """The PNG's path must end in .png and its folder must exist (checked before measuring)."""
    if path.suffix.lower() != ".png":
        raise BadInput(f"--plot: {path} must end in .png")
    if not path.parent.is_dir():
        raise BadInput(f"--plot: folder {path.parent} does not exist")
    if path.is_dir():
        raise BadInput(f"--plot: {path} is a folder")
    return path


def write_plot(bench: BackendsBench, path: Path) -> Path:
    """Draw median cost (us) against registered descriptors, p10..p90 shaded; save as PNG."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig = Figure(figsize=(8, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name in dict.fromkeys(p.backend for p in bench.points):
        pts = [p for p in bench.points if p.backend == name and p.measured]
        if not pts:
            continue
        xs = [p.fds for p in pts]
        (line,) = ax.plot(xs, [p.median_us for p in pts], marker="o", label=name)
        ax.fill_between(
            xs, [p.p10_us for p in pts], [p.p90_us for p in pts], color=line.get_color(), alpha=0.2
        )
    if max(p.fds for p in bench.points) >= FD_SETSIZE:  # where select(2) has to stop
        ax.axvline(FD_SETSIZE, color="grey", linestyle=":", linewidth=1)
        ax.annotate(
            f"FD_SETSIZE {FD_SETSIZE}",
            (FD_SETSIZE, 0.55),
            xycoords=("data", "axes fraction"),
            rotation=90,
            color="grey",
            fontsize=8,
            ha="right",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("descriptors registered for reading (N)")
    ax.set_ylabel("one loop iteration, wait + dispatch (us, median)")
    ax.set_title(
        f"select / poll / epoll: {bench.active} active, {bench.writes} chained writes, "
        f"{bench.repeat} runs (shaded p10..p90)",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path, format="png")
    except OSError as exc:
        raise EnvironmentProblem(f"--plot: cannot write {path}: {exc.strerror}") from exc
    return path
