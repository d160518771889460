"""The report's picture: throughput and lag against the paced rate, and CPU per command by component.

matplotlib is optional (`pip install -e '.[bench]'`, which `just bench` does); without it the report
has no PNG and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.cpu import COMPONENTS, CpuFigure

if TYPE_CHECKING:
    from bench.report import Report

COLOURS = {"bare": "tab:gray", "serve": "tab:blue", "api + worker": "tab:orange"}
MARKER_SIZES = {"bare": 12, "serve": 8, "api + worker": 5}  # drawn in this order: none hides another
COMPONENT_COLOURS = {
    "api": "tab:blue",
    "api + supervisor": "tab:purple",
    "supervisor": "tab:orange",
    "postgres": "tab:green",
    "redis": "tab:red",
}
SETUP_NAMES = {"bare": "bare", "serve": "serve", "api+worker": "api + worker"}


def draw(report: Report, path: Path) -> bool:
    """Write the PNG; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure = plt.figure(figsize=(16, 11), layout="constrained")
    grid = figure.add_gridspec(2, 2)
    throughput, lag = figure.add_subplot(grid[0, 0]), figure.add_subplot(grid[0, 1])
    cpu = figure.add_subplot(grid[1, :])
    _throughput(throughput, report)
    _lag(lag, report)
    _cpu(cpu, report.cpu)
    load = " / ".join(f"{x:.1f}" for x in report.load_average)
    figure.suptitle(
        f"just bench — {report.started_at} — {report.machine.removeprefix('machine').strip()}"
        f"\nthe machine's load average at start / end: {load}",
        fontsize=10,
    )
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def _throughput(ax: Any, report: Report) -> None:
    top = 0.0
    for name, setup in [("bare", report.bare), *((s.name, s) for s in report.setups)]:
        steps = sorted(setup.steps, key=lambda s: s.rate)
        colour = COLOURS.get(name, "black")
        ax.plot([s.rate for s in steps], [s.load.rate for s in steps], "-", color=colour, alpha=0.6)
        held = [s for s in steps if s.held]
        missed = [s for s in steps if not s.held]
        size = MARKER_SIZES.get(name, 6)
        ax.plot(
            [s.rate for s in held], [s.load.rate for s in held], "o", color=colour, ms=size,
            fillstyle="none" if name == "bare" else "full", label=f"{name}: held",
        )  # fmt: skip
        ax.plot(
            [s.rate for s in missed], [s.load.rate for s in missed], "x", color=colour, ms=size + 2,
            label=f"{name}: missed",
        )  # fmt: skip
        if setup.sustained:
            ax.axvline(setup.sustained, color=colour, ls=":", lw=1)
        top = max(top, *(s.rate for s in steps), 1.0)
    ax.plot([0, top], [0, top], "--", color="black", lw=0.7, label="answers = offered")
    ax.set_title(
        "Throughput: 2xx answers/s against the paced rate\n(dotted: sustained rate; serve/api+worker also need read models caught up)",
        fontsize=9,
    )
    ax.set_xlabel("offered commands/s")
    ax.set_ylabel("2xx answers/s")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _lag(ax: Any, report: Report) -> None:
    for setup in report.setups:
        colour = COLOURS.get(setup.name, "black")
        lags = sorted(setup.lags, key=lambda lag: lag.rate)
        rates = [lag.rate for lag in lags]
        ax.plot(rates, [lag.p50_ms for lag in lags], "o-", color=colour, label=f"{setup.name}: lag p50")
        ax.plot(rates, [lag.p99_ms for lag in lags], "s--", color=colour, label=f"{setup.name}: lag p99")
        ax.plot(
            rates,
            [lag.load.p99_ms for lag in lags],
            ":",
            color=colour,
            alpha=0.6,
            label=f"{setup.name}: answer p99",
        )
    ax.axhline(25, color="red", lw=0.8, ls="-.", label="target: p99 < 25 ms at 50 %")
    ax.set_yscale("log")
    ax.set_title(
        "Commit → last identity read model lag against the paced rate\n(25/50/75 % of each sustained rate)",
        fontsize=9,
    )
    ax.set_xlabel("commands/s")
    ax.set_ylabel("ms (log scale)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _cpu(ax: Any, figures: list[CpuFigure]) -> None:
    rates = sorted({f.rate for f in figures})
    setups = list(dict.fromkeys(f.setup for f in figures))
    width = 0.8 / max(len(setups), 1)
    ticks, labels = [], []
    drawn_target = False
    for i, rate in enumerate(rates):
        for j, setup in enumerate(setups):
            found = [f for f in figures if f.rate == rate and f.setup == setup]
            if not found:
                continue
            f, x, bottom = found[0], i + (j - (len(setups) - 1) / 2) * width, 0.0
            for component in COMPONENTS:
                if component not in f.cpu_seconds:
                    continue
                height = f.ms_per_command(component)
                ax.bar(x, height, width * 0.9, bottom=bottom, color=COMPONENT_COLOURS[component])
                bottom += height
            ax.text(x, bottom, f"{bottom:.2f}", ha="center", va="bottom", fontsize=7)
            ticks.append(x)
            behind = f"\n({f.load.rate:,.0f}/s answered)" if f.load.rate < 0.95 * rate else ""
            labels.append(f"{SETUP_NAMES.get(setup, setup)}\n{rate:g}/s{behind}")
        bare = [f for f in figures if f.rate == rate and f.setup == "bare"]
        if bare:
            ax.hlines(
                2 * bare[0].total_ms, i - 0.45, i + 0.45, colors="black", linestyles="--", lw=0.8,
                label=None if drawn_target else "2 x bare at each rate (the target at 300/s)",
            )  # fmt: skip
            drawn_target = True
    present = [c for c in COMPONENTS if any(c in f.cpu_seconds for f in figures)]
    for component in reversed(present):  # the legend lists them top down, as they are stacked
        ax.bar(0, 0, 0, color=COMPONENT_COLOURS[component], label=component)
    ax.set_xticks(ticks, labels, fontsize=8)
    ax.set_title("CPU per end-to-end command by component (ms), at fixed paced rates", fontsize=9)
    ax.set_ylabel("ms CPU per command")
    if figures:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
