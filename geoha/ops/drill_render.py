"""A drill's report written out: report.json, report.md and timeline.png (matplotlib).

`write_report(folder, report)` writes the three files of one drill;
`write_summary(folder, summary)` the summary of several (summary.json, summary.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geoha.ops.drill_analysis import RoleChange
from geoha.ops.drill_report import DrillReport, Summary
from geoha.render.files import File, write_files

ROLE_COLOURS = {"primary": "#1b7837", "replica": "#6baed6", "down": "#bdbdbd"}


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def figure_rows(report: DrillReport) -> list[str]:
    lines = [
        "| client region | reads ok / failed | writes ok / failed | read RTO | write RTO |",
        "|---|---|---|---|---|",
    ]
    for region, r in report["regions"].items():
        lines.append(
            f"| {region} | {r['reads']['ok']} / {r['reads']['failed']} "
            f"| {r['writes']['ok']} / {r['writes']['failed']} "
            f"| {seconds(r['read_rto_s'])} | {seconds(r['write_rto_s'])} |"
        )
    return lines


def markdown(report: DrillReport) -> str:
    verdict = report["verdict"]
    marks, dns, writes = report["marks"], report["dns"], report["writes"]
    lines = [
        f"# Drill: {report['fault']}",
        "",
        f"**{'PASSED' if verdict['ok'] else 'FAILED'}**"
        + ("" if verdict["ok"] else ": " + "; ".join(verdict["broken"])),
        "",
        f"{report['clients']} clients, {report['rate']:g} operations/s for "
        f"{report['duration_s']:g} s; `geoha chaos {report['chaos']['inject']}` at "
        f"{seconds(marks['fault_at_s'])} (command took {seconds(marks['fault_command_s'])}), "
        f"`geoha chaos {report['chaos']['heal']}` at {seconds(marks['heal_at_s'])}; "
        f"{report['replication']} replication; settled: "
        f"{'yes' if report['settled'] else 'NO'} (primary {report['primary'] or 'none'}).",
        "",
        *figure_rows(report),
        "",
        "## DNS",
        "",
        f"- lost region: {dns['lost_region'] or 'none'}; its clients at the fault: "
        f"{dns['clients_on_lost_region']}, moved away: {dns['clients_moved']}",
        f"- DNS RTO (the last of them moved): {seconds(dns['dns_rto_s'])}; median "
        f"{seconds(dns['moved_median_s'])}; until the last of them read again: "
        f"{seconds(dns['client_read_rto_s'])}",
        (
            f"- the DNS marked the region unhealthy {seconds(dns['detect_s'])} after the fault"
            if dns["detect_s"] is not None
            else "- the DNS did not mark the region unhealthy before the heal"
        )
        + f"; healthy again {seconds(dns['restored_s'])} after the heal",
        f"- answers per region: {json.dumps(dns['answers'])}",
        "",
        "## Writes",
        "",
        f"- sent {writes['sent']}: acknowledged {writes['acked']} "
        f"({writes['acked_by_readback']} of them by reading back), failed {writes['failed']}, "
        f"unknown {writes['unknown']}",
        f"- on the primary: lost {len(writes['lost'])} ({writes['lost_read_back']} of them "
        f"acknowledged by reading back), duplicated {len(writes['duplicated'])}, "
        f"failed but stored {len(writes['failed_but_present'])}, "
        f"unknown but stored {writes['unknown_present']}"
        + ("" if writes["verified"] else f" (NOT VERIFIED: {writes['error']})"),
        f"- split brain: {report['split_brain_moments']} sample round(s) with two writable nodes",
        "",
    ]
    lines += [f"- warning: {w}" for w in verdict["warnings"]]
    lines += ["", "## Errors", ""]
    examples = report["error_examples"]
    lines += [
        f"- {kind}: {n}" + "".join(f"\n  - `{e}`" for e in examples.get(kind, []))
        for kind, n in report["errors"].items()
    ] or ["- none"]
    lines += ["", "## Outages after the fault", ""]
    for region, r in report["regions"].items():
        lines += [
            f"- {region} {o['kind']}: {o['start_s']:.2f} s to {seconds(o['end_s'])} "
            f"({o['failures']} failed requests)"
            for o in r["outages"]
        ]
    lines += ["", "## Role changes", ""]
    lines += [
        f"- {c['t']:.2f} s {c['node']}: {c['db']} (Patroni: {c['patroni'] or 'no answer'})"
        for c in report["role_changes"]
    ]
    return "\n".join(lines) + "\n"


def role_spans(
    changes: Sequence[RoleChange], end: float
) -> dict[str, list[tuple[float, float, str]]]:
    """Per node, (start, width, state) from its changes until `end`."""
    spans: dict[str, list[tuple[float, float, str]]] = {}
    by_node: dict[str, list[RoleChange]] = {}
    for c in changes:
        by_node.setdefault(c["node"], []).append(c)
    for node, items in by_node.items():
        for c, following in zip(items, [*items[1:], None], strict=True):
            stop = following["t"] if following else end
            spans.setdefault(node, []).append((c["t"], max(stop - c["t"], 0.0), c["db"]))
    return spans


def timeline_png(report: DrillReport, path: Path) -> None:
    """Requests per second by outcome per client region, DNS answers and health, each
    database node's role; the fault, the heal and the load's end marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    regions = list(report["regions"])
    fig, axes = pyplot.subplots(
        len(regions) + 2, 1, figsize=(12, 3 + 2.2 * (len(regions) + 2)), sharex=True
    )
    timeline = report["timeline"]
    xs = list(range(timeline["seconds"]))
    styles = {
        "read ok": ("#2ca02c", "-"),
        "read failed": ("#d62728", "--"),
        "write ok": ("#1f77b4", "-"),
        "write failed": ("#ff7f0e", "--"),
    }
    for ax, region in zip(axes, regions, strict=False):
        for name, values in timeline["requests"][region].items():
            colour, line = styles[name]
            ax.plot(xs, values, line, color=colour, label=name, linewidth=1.2)
        ax.set_ylabel(f"{region}\nrequests/s")
        ax.legend(loc="upper right", fontsize=7, ncol=4)
    dns_ax = axes[len(regions)]
    for region, values in timeline["dns_answers"].items():
        dns_ax.step(xs, values, where="post", label=f"answers naming {region}")
    unhealthy = [c for c in report["dns"]["health_changes"] if not c["healthy"]]
    for change in unhealthy:
        back = next(
            (
                c["t"]
                for c in report["dns"]["health_changes"]
                if c["region"] == change["region"] and c["healthy"] and c["t"] > change["t"]
            ),
            timeline["seconds"],
        )
        dns_ax.axvspan(change["t"], back, color="#fdd0a2", alpha=0.5)
    dns_ax.set_ylabel("DNS answers/s\n(shaded: unhealthy)")
    dns_ax.legend(loc="upper right", fontsize=7)
    draw_roles(axes[-1], report, timeline["seconds"])
    marks = report["marks"]
    for ax in axes:
        for at, colour, label in (
            (marks["fault_at_s"], "red", "fault"),
            (marks["heal_at_s"], "green", "heal"),
            (marks["load_end_s"], "grey", "load end"),
        ):
            if at is not None:
                ax.axvline(at, color=colour, linestyle=":", linewidth=1.2, label=None)
                if ax is axes[0]:
                    ax.annotate(label, (at, 1.0), xycoords=("data", "axes fraction"), fontsize=8)
    axes[-1].set_xlabel("seconds since the load began")
    fig.suptitle(f"geoha drill failover --fault {report['fault']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    pyplot.close(fig)


def draw_roles(ax: Any, report: DrillReport, seconds_: int) -> None:
    end = report["marks"]["settled_at_s"] or float(seconds_)
    spans = role_spans(report["role_changes"], end)
    for i, node in enumerate(sorted(spans)):
        for state, colour in ROLE_COLOURS.items():
            bars = [(start, width) for start, width, s in spans[node] if s == state]
            if bars:
                ax.broken_barh(bars, (i - 0.35, 0.7), color=colour)
    ax.set_yticks(range(len(spans)), sorted(spans))
    ax.set_ylabel("database role\n(green primary,\nblue replica, grey down)")


def write_report(folder: Path, report: DrillReport) -> None:
    """report.json, report.md and timeline.png in `folder` (created if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_files(
        [
            File(folder / "report.json", json.dumps(report, indent=2) + "\n"),
            File(folder / "report.md", markdown(report)),
        ]
    )
    timeline_png(report, folder / "timeline.png")


def summary_markdown(summary: Summary) -> str:
    failed = ", ".join(str(i) for i in summary["failed"]) or "none"
    lines = [
        f"# {summary['drills']} drills: {summary['fault']}",
        "",
        f"Drills that found a promise broken: {failed}.",
        "",
        "| figure | min | median | max | no value in |",
        "|---|---|---|---|---|",
    ]
    for name, stats in summary["figures"].items():
        cells = [
            "-" if v is None else f"{v:g}" for v in (stats["min"], stats["median"], stats["max"])
        ]
        lines.append(f"| {name} | {' | '.join(cells)} | {stats['missing']} |")
    return "\n".join(lines) + "\n"


def write_summary(folder: Path, summary: Summary) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_files(
        [
            File(folder / "summary.json", json.dumps(summary, indent=2) + "\n"),
            File(folder / "summary.md", summary_markdown(summary)),
        ]
    )
