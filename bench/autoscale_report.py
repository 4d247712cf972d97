"""bench/autoscale.py's report: the summary against the targets and the docs section, from
its results alone (bench/results/autoscale.json)."""

from __future__ import annotations

from typing import Any

from bench.common import min_median_max_of

TARGET_SERVING_S = 5.0
"""Load step -> new instance serving traffic (issue: autoscaling)."""
TARGET_OVERHEAD_PERCENT = 2.0
"""The autoscalers' CPU, percent of one core."""
TICK_S = 1.0
"""The controller's cycle once READY (CYCLE_INTERVAL_S): one autoscaler tick each."""


def stats(values: list[float | None]) -> str:
    return min_median_max_of(values, "missing")


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def column(runs: list[dict[str, Any]], key: str) -> list[Any]:
    return [r["figures"][key] for r in runs]


def summary(data: dict[str, Any]) -> dict[str, Any]:
    runs, over = data["runs"], data["overhead"]
    serving = column(runs, "decision_to_first_answer_s")
    step = column(runs, "step_to_first_answer_s")
    failed = [f or 0 for f in column(runs, "light_failed")]
    complete = all(v is not None for v in serving)
    return {
        "runs": len(runs),
        "decision_to_first_answer_s": stats(serving),
        "step_to_decision_s": stats(column(runs, "step_to_decision_s")),
        "step_to_first_answer_s": stats(step),
        "wrk_stop_to_left_s": stats(column(runs, "wrk_stop_to_left_s")),
        "light_requests": sum(r or 0 for r in column(runs, "light_requests")),
        "light_failed": sum(failed),
        "shrinks_inside_load": sum(1 for v in column(runs, "shrink_inside_load") if v),
        "lefts_inside_load": sum(1 for v in column(runs, "left_inside_load") if v),
        "serving_met": complete and max(serving) <= TARGET_SERVING_S,
        "step_met": all(v is not None and v <= TARGET_SERVING_S for v in step),
        "failed_met": sum(failed) == 0 and all(v is not None for v in column(runs, "light_failed")),
        "overhead_met": all(
            o["autoscaler_percent"] < TARGET_OVERHEAD_PERCENT for o in over.values()
        ),
    }


def verdict(met: bool, why_not: str) -> str:
    return "met" if met else f"**missed**: {why_not}"


def method(data: dict[str, Any]) -> str:
    a, p, settings = data["args"], data["policy"], data["settings"]
    probe_ms, poll_ms = settings["probe_interval_s"] * 1000, settings["poll_s"] * 1000
    return (
        f"Method: one bench deployment (whole stack, sync replication). delhi's API tier: min "
        f"{p['min']}, desired {p['desired']}, max {p['max']}, the reference thresholds (grow "
        f"above {p['scale_up_cpu_percent']} % average CPU by more than the 10 % tolerance, "
        f"i.e. above 77 %; shrink below {p['scale_down_cpu_percent']} %), CPU averaged over "
        f"{p['window_s']} s, scale-out cooldown {p['scale_out_cooldown_s']} s, scale-in "
        f"stabilization {p['scale_in_stabilization_s']} s, step 1; every other tier is pinned "
        "at 2 instances (min = desired = 2, as tests/deployment.py pins the tiers a run does "
        "not scale) and the bench waits until every group is at its min before measuring. "
        "The autoscalers tick once per cycle of the "
        f"controller's reconcile loop once it is READY: every {TICK_S:g} s, sooner (at most "
        "every 0.1 s) when an action finishes or the desired state changes. "
        f"{settings['themes']} themes are seeded. Each run starts with one "
        f"delhi API instance serving: `wrk -t1 -c{a['connections']}` on delhi's entry reading "
        "`/api/v1/themes?limit=100` (the API's heaviest read) is the load step (t0); a prober "
        f"reads `/api/v1/themes?limit=1` there every {probe_ms:.0f} ms and the "
        f"controller's status is read every {poll_ms:.0f} ms. The decision, start, "
        "health and LB enable times are the controller's events (wall clock); the first "
        "answer is the arrival of the first probe answer whose `X-Served-By` names the new "
        "instance. Then wrk stops and `geoha load --region delhi --rate "
        f"{a['light_rate']:g} --duration {a['light_duration']:g}` (the drill's browser-like "
        "clients, reads and writes) runs while the tier shrinks back to one: the scale-in "
        "decision, the drain in the backend LB (`draining`, then out of it and stopped once "
        "no request is in flight) and the load's failed requests. The next run starts once "
        "the tier is back to one instance and the one that left has stopped. Overhead: the "
        "controller's `autoscaler_cpu_s` (the whole process's CPU while the autoscaler's "
        "ticks ran: an upper bound of its own cost) and the controller process's total CPU, "
        f"over {a['idle_window']:g} s with the deployment idle and READY, and over "
        f"{a['load_window']:g} s under the same wrk (the tier growing meanwhile). The "
        "prober's resolution is 100 ms; everything, wrk included, shares the 2 cores."
    )


def runs_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| run | CPU at the decision, % | load step -> decision, s | decision -> started "
        "| -> healthy | -> enabled in the LB | **-> first answer from the new instance** "
        "| load step -> first answer | wrk stop -> scale-in decision | draining -> left "
        "| wrk stop -> left | light load: requests / failed | scale-in (decision / left) "
        "inside the light load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        f = r["figures"]
        keys = [
            "step_to_decision_s", "decision_to_started_s", "decision_to_healthy_s",
            "decision_to_enabled_s", "decision_to_first_answer_s", "step_to_first_answer_s",
            "wrk_stop_to_shrink_decision_s", "draining_to_left_s", "wrk_stop_to_left_s",
        ]  # fmt: skip
        values = " | ".join(cell(f[k]) for k in keys)
        inside = f"{cell(f['shrink_inside_load'])} / {cell(f['left_inside_load'])}"
        lines.append(
            f"| {r['run']} | {cell(r.get('decision_cpu_percent'))} | {values} | "
            f"{cell(f['light_requests'])} / {cell(f['light_failed'])} | {inside} |"
        )
    return lines


def cpu_range(runs: list[dict[str, Any]]) -> str:
    seen = [r["decision_cpu_percent"] for r in runs if r.get("decision_cpu_percent") is not None]
    return f"{min(seen)}-{max(seen)} %" if seen else "no decision"


def targets_table(data: dict[str, Any], s: dict[str, Any]) -> list[str]:
    idle, load = data["overhead"]["idle"], data["overhead"]["load"]
    window, stabilization = data["policy"]["window_s"], data["policy"]["scale_in_stabilization_s"]
    return [
        "| measurement | min / median / max | target | verdict |",
        "|---|---|---|---|",
        f"| decision -> new instance serving (first answer), s | "
        f"{s['decision_to_first_answer_s']} | <= {TARGET_SERVING_S:g} (cloud: 5-10 min with "
        "cloud-init, < 2 min with pre-baked images) | "
        + verdict(s["serving_met"], "see the runs")
        + " |",
        f"| load step -> decision, s | {s['step_to_decision_s']} | | the {window} s CPU "
        f"window filling past 77 % (the decisions saw {cpu_range(data['runs'])}) |",
        f"| load step -> new instance serving, s | {s['step_to_first_answer_s']} | <= "
        f"{TARGET_SERVING_S:g} read literally | "
        + verdict(
            s["step_met"],
            f"most of it is the {window} s CPU window the policy averages over "
            "before deciding; a shorter `window_s` trades it for decisions on noisier figures",
        )
        + " |",
        f"| failed requests of the light load during scale-in | {s['light_failed']} of "
        f"{s['light_requests']} ({s['shrinks_inside_load']} of {s['runs']} scale-in decisions "
        f"and {s['lefts_inside_load']} instances leaving inside the load) | 0 | "
        + verdict(s["failed_met"], "see the runs")
        + " |",
        f"| wrk stop -> the new instance left, s | {s['wrk_stop_to_left_s']} | | the CPU "
        f"window falling below 30 %, then {stabilization} s of "
        "stabilization, then the drain |",
        f"| autoscalers' CPU, % of one core ({idle['groups']} groups) | idle "
        f"{idle['autoscaler_percent']:.2f} (about {idle['autoscaler_percent'] * 10:.1f} ms a "
        f"tick at one tick a second), under wrk {load['autoscaler_percent']:.2f} | "
        f"< {TARGET_OVERHEAD_PERCENT:g} | " + verdict(s["overhead_met"], "see the windows") + " |",
        f"| whole controller process, % of one core | idle {idle['controller_percent']:.2f}, "
        f"under wrk {load['controller_percent']:.2f} | | (reconcile loop, probes, DNS, "
        "monitor and autoscalers together) |",
    ]


def profile_lines(profile: dict[str, Any] | None) -> list[str]:
    if not profile or not profile["samples"]:
        return ["", "No profile of the idle controller: py-spy is not installed."]
    total = profile["samples"]
    shares = sorted(profile["where"].items(), key=lambda kv: -kv[1])
    return [
        "",
        f"Where the idle controller's CPU goes: py-spy ({profile['rate_hz']} Hz, "
        f"`--nonblocking`, {profile['seconds']:.0f} s right after the idle window) kept "
        f"{total} on-CPU samples; a sample whose stack is in the autoscaler's code counts as "
        "the autoscalers', the others go to bench/dns.py's buckets: "
        + "; ".join(f"{label} {100 * n / total:.0f} %" for label, n in shares)
        + ".",
    ]


def report(data: dict[str, Any]) -> str:
    facts, a = data["machine"], data["args"]
    s = data["summary"]
    lines = [
        "## Autoscaler (issue: autoscaling)"
        + (
            ""
            if data["policy"]["window_s"] == 10
            else f", with a {data['policy']['window_s']:g} s CPU window"
        ),
        "",
        f"Machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, kernel "
        f"{facts['kernel']}, Python {facts['python']}. Measured {data['date']} at commit "
        f"{facts.get('commit', 'unknown')}.",
        "",
        "Reproduce: `.venv/bin/python -m bench.autoscale` (add `--runs N`, `--connections C`, "
        "`--light-rate R`, `--light-duration S`, `--idle-window S`, `--load-window S`, "
        "`--profile-window S`, `--window S`)"
        + (
            ""
            if data["policy"]["window_s"] == 10
            else f"; this one: `--window {data['policy']['window_s']:g}`"
        )
        + ".",
        "",
        method(data),
        "",
        f"Runs ({a['runs']}; seconds; the decision -> columns are from the scale-out decision):",
        "",
        *runs_table(data["runs"]),
        "",
        *targets_table(data, s),
    ]
    lines += profile_lines(data["idle_profile"])
    errors = [f"run {r['run']}: {r['error']}" for r in data["runs"] if r.get("error")]
    if errors:
        lines += ["", "Runs that did not complete: " + "; ".join(errors) + "."]
    sentences = sorted({r["decision"] for r in data["runs"] if r.get("decision")})
    shrinks = sorted({r["shrink_decision"] for r in data["runs"] if r.get("shrink_decision")})
    if sentences:
        lines += [
            "",
            "The decisions, as the controller logged them: "
            + "; ".join(f"`{x}`" for x in sentences[:3] + shrinks[:2])
            + ".",
        ]
    return "\n".join(lines)
