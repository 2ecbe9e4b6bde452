"""The benchmarks' figures: a table on the terminal, bench/results.json, bench/results.png
and the generated part of docs/benchmarks.md.

A run of some benchmarks replaces their entries and keeps the others', each with the date
it was measured on; the machine is read again at each write.
"""

from __future__ import annotations

import json
import os
import platform
import re
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
CHART = ROOT / "bench" / "results.png"
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- figures: start (written by python -m bench) -->", "<!-- figures: end -->"


def _sign(check: dict[str, Any]) -> str:
    return ">=" if check["direction"] == "min" else "<="


def _value(number: float) -> str:
    return f"{number:,.0f}" if abs(number) >= 100 else f"{number:.3g}"


def checks_of(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for r in results.values() for c in r.get("checks", ())]


def print_table(results: dict[str, dict[str, Any]]) -> None:
    checks = checks_of(results)
    if not checks:
        return
    width = max(len(c["figure"]) for c in checks)
    print()
    print(f"{'benchmark':<11} {'figure':<{width}} {'value':>10}  {'target':<12} verdict")
    for c in checks:
        target = f"{_sign(c)} {_value(c['target'])} {c['unit']}"
        value = f"{_value(c['value'])} {c['unit']}"
        verdict = "met" if c["met"] else "NOT met"
        print(f"{c['benchmark']:<11} {c['figure']:<{width}} {value:>10}  {target:<12} {verdict}")


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU, memory, system, and the services' versions."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    memory = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.MULTILINE)
    found: dict[str, Any] = {
        "cpu": model.group(1).strip() if model else platform.processor() or None,
        "cores": os.cpu_count(),
        "memory_gib": round(int(memory.group(1)) / 2**20, 1) if memory else None,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    for package in ("scrapy", "rq", "sqlalchemy", "fastapi", "uvicorn"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    found.update(_services())
    return found


def _services() -> dict[str, Any]:
    from redis import Redis
    from sqlalchemy import create_engine, text

    from tests.utils import services

    versions: dict[str, Any] = {"postgresql": None, "redis": None}
    try:
        engine = create_engine(f"{services.PG_URL_BASE}/postgres")
        with engine.connect() as connection:
            versions["postgresql"] = connection.execute(text("SHOW server_version")).scalar()
        engine.dispose()
    except Exception as error:  # a figure of context, not a result
        versions["postgresql"] = f"unknown ({type(error).__name__})"
    try:
        info = Redis.from_url(services.REDIS_URL).info("server")
        versions["redis"] = info.get("redis_version")
    except Exception as error:
        versions["redis"] = f"unknown ({type(error).__name__})"
    return versions


def merged(results: dict[str, dict[str, Any]], now: datetime) -> dict[str, Any]:
    """bench/results.json with these benchmarks' figures in place of their old ones."""
    kept: dict[str, Any] = {}
    if RESULTS.exists():
        try:
            kept = json.loads(RESULTS.read_text()).get("benchmarks", {})
        except (json.JSONDecodeError, AttributeError):
            kept = {}
    stamp = now.isoformat(timespec="seconds")
    for name, figures in results.items():
        kept[name] = {"measured_at": stamp, **figures}
    return {"written_at": stamp, "machine": machine(), "benchmarks": kept}


def write(results: dict[str, dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    document = merged(results, now)
    RESULTS.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    chart(document)
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(with_figures(DOC.read_text() if DOC.exists() else "", document))
    print(f"\nwrote {RESULTS}, {CHART}, {DOC}")


def margin(check: dict[str, Any]) -> float:
    """How far past its target a figure is: > 1 met, < 1 missed, whichever way it points."""
    value, target = float(check["value"]), float(check["target"])
    if check["direction"] == "min":
        return value / target if target else float("inf")
    return target / value if value else float("inf")


def chart(document: dict[str, Any]) -> None:
    """bench/results.png: the 160-chapter fiction against the rivals, and every target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benchmarks = document["benchmarks"]
    checks = [c for b in benchmarks.values() for c in b.get("checks", ())]
    rivals = benchmarks.get("rivals", {})
    times = rivals.get("medians_s", {})
    panels = 2 if times else 1
    figure, axes = plt.subplots(
        1, panels, figsize=(13 if panels == 2 else 8, max(3.5, 0.45 * len(checks) + 1.5))
    )
    axes = list(axes) if panels == 2 else [axes]
    if times:
        ax = axes[0]
        names = list(times)
        ax.barh(names, [times[n] for n in names], color=["#2a7", "#d83", "#c44"][: len(names)])
        ax.set_xscale("log")
        ax.set_xlim(min(times.values()) / 3, max(times.values()) * 2)
        ax.set_xlabel("seconds, median (log scale)")
        ax.set_title(f"one {rivals.get('chapters', 160)}-chapter Royal Road fiction")
        for y, name in enumerate(names):
            ax.text(times[name], y, f" {times[name]:.2f} s", va="center")
        ax.invert_yaxis()
    ax = axes[-1]
    labels = [f"{c['benchmark']}: {c['figure']}" for c in checks]
    margins = [margin(c) for c in checks]
    colours = ["#2a7" if c["met"] else "#c44" for c in checks]
    ax.barh(labels, [m - 1 for m in margins], left=1, color=colours)  # from the target out
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    finite = [m for m in margins if 0 < m < float("inf")] or [1.0]
    ax.set_xlim(min(0.5, min(finite) / 1.5), max(2.0, max(finite) * 1.5))
    for y, (c, m) in enumerate(zip(checks, margins, strict=True)):
        label = f"{_value(c['value'])} {c['unit']} ({_sign(c)} {_value(c['target'])})"
        # beside the target line, on the side the bar is not: never over the axis labels
        ax.text(1.0, y, f" {label} ", va="center", fontsize=7, ha="right" if m >= 1 else "left")
    ax.set_xlabel("figure / target (1 = on target; right of it: met)")
    ax.set_title("targets")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=8)
    figure.suptitle(
        f"measured {document['written_at'][:10]} on {document['machine']['cores']}"
        f" cores ({document['machine']['cpu']})",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(CHART, dpi=110)
    plt.close(figure)


def with_figures(doc: str, document: dict[str, Any]) -> str:
    """docs/benchmarks.md with its generated part (between the markers) written anew."""
    part = f"{START}\n{figures_markdown(document)}\n{END}"
    if START in doc and END in doc:
        before, rest = doc.split(START, 1)
        return before + part + rest.split(END, 1)[1]
    return (doc.rstrip() + "\n\n" if doc.strip() else "# Benchmarks\n\n") + part + "\n"


def figures_markdown(document: dict[str, Any]) -> str:
    m = document["machine"]
    lines = [
        f"Written {document['written_at']} by `scripts/bench.sh`.",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, {m['system']};"
        f" Python {m['python']}, PostgreSQL {m['postgresql']}, Redis {m['redis']};"
        f" Scrapy {m['scrapy']}, RQ {m['rq']}, SQLAlchemy {m['sqlalchemy']},"
        f" FastAPI {m['fastapi']}, uvicorn {m['uvicorn']}.",
        "",
        "| benchmark | figure | value | target | | measured | what bounds it |",
        "|---|---|---:|---|---|---|---|",
    ]
    for name, figures in document["benchmarks"].items():
        for c in figures.get("checks", ()):
            verdict = "met" if c["met"] else "**not met**"
            lines.append(
                f"| {name} | {c['figure']} | {_value(c['value'])} {c['unit']} |"
                f" {_sign(c)} {_value(c['target'])} {c['unit']} | {verdict} |"
                f" {figures['measured_at'][:10]} | {c['bound']} |"
            )
    lines += ["", "![the figures against their targets](../bench/results.png)"]
    return "\n".join(lines)
