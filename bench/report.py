"""The benchmark's verdict: targets with PASS/MISS, and the Markdown summary of a report."""

from __future__ import annotations

from typing import Any

MIB = 1024 * 1024

WRITES_PER_JOB = 4.5
THROUGHPUT_SHARE = 0.8
CHAIN_P50_MS = 25
CHAIN_P99_MS = 250
FAILED_CLAIMS = 0.2
OPERATOR_RSS_MB = 300


def ceiling_of_run(report: dict[str, Any]) -> dict[str, Any]:
    """The ceiling the throughput targets use: the median of every measurement of the run.

    The sweep's best level is measured again before each case. On a small machine those
    measurements of the same request at the same concurrency differ by as much as two
    times within minutes (see docs/bench.md), more than any case differs from the next, so
    one of them alone would make the verdict a draw. The median of all of them is what
    the run says the ceiling is.
    """
    sweep = report.get("ceiling") or {}
    samples = [sweep["patches_per_s"]] if sweep.get("patches_per_s") else []
    samples += [c["ceiling"]["patches_per_s"] for c in report.get("cases", [])
                if (c.get("ceiling") or {}).get("patches_per_s")]
    if not samples:
        return {"samples": [], "median": None, "min": None, "max": None}
    ordered = sorted(samples)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return {"samples": samples, "median": round(median, 1), "min": ordered[0],
            "max": ordered[-1]}


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "PASS" if ok else "MISS"


def _budget_note(report: dict[str, Any], case: dict[str, Any], target: float) -> str:
    """What the throughput target leaves for the operator's and runners' own work.

    At ``target`` jobs/s the machine's cores allow ``cores / target`` of CPU per job. The
    protocol with its lean Python clients (the writes and the watches, nothing decided,
    nothing logged) takes part of that; what is left is all the operator and the runners
    may add, in their own processes and in the API server's, for everything else they do.
    """
    proto = report.get("protocol") or {}
    floor = proto.get("with_clients_ms_per_job")
    cores = (report.get("meta") or {}).get("machine", {}).get("cores")
    usage = case.get("usage") or {}
    if not floor or not cores or not target or not usage:
        return ""
    allowed = 1000 * cores / target
    spent = sum(1000 * usage[role]["cpu_seconds"] / case["jobs"]
                for role in ("operator", "runners", "kube-apiserver", "etcd") if role in usage)
    return (f"; at {target:.0f} jobs/s a job may cost {allowed:.1f} ms of CPU in all, the "
            f"protocol with lean Python clients takes {floor:.1f} of it, leaving "
            f"{allowed - floor:.1f} ms for everything else the operator and runners do; they "
            f"add {spent - floor:.1f}")


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target, the value measured against it, and whether it was met."""
    cases = [c for c in report.get("cases", []) if "writes" in c]
    run_ceiling = ceiling_of_run(report)["median"]
    protocol_bound = (report.get("protocol") or {}).get("bound_jobs_per_s") or None
    out: list[dict[str, Any]] = []

    def add(name: str, target: str, value: Any, ok: bool | None, note: str = "") -> None:
        out.append({"name": name, "target": target, "value": value, "result": _verdict(ok),
                    "note": note})

    for case in cases:
        wpj = case["writes"]["successful_per_job"]
        add(f"writes per job, {case['label']} r{case['runners']}", f"<= {WRITES_PER_JOB}",
            wpj, wpj is not None and wpj <= WRITES_PER_JOB,
            f"+ {case['writes']['conflicts_per_job']} conflicts/job")

    if cases and not any(c["runners"] == 4 and c["shape"] != "chain" for c in cases):
        add("throughput, r4", "needs a case with 4 runners", None, None,
            "not measured in this run")
    if cases and not any(c["runners"] == 16 and c["shape"] == "independent" for c in cases):
        add("failed claims per successful claim, independent r16",
            "needs independent with 16 runners", None, None, "not measured in this run")
    for case in cases:
        if case["runners"] != 4 or case["shape"] == "chain":
            continue
        wpj = case["writes"]["successful_per_job"]
        ceiling = run_ceiling
        if not ceiling or not wpj or case.get("jobs_per_s") is None:
            add(f"throughput, {case['label']} r4", "no ceiling measured", case.get("jobs_per_s"),
                None)
            continue
        bound = ceiling / wpj
        note = f"{case['jobs_per_s'] / bound:.0%} of {bound:.0f} (ceiling {ceiling} patches/s)"
        if protocol_bound:
            note += (f"; the protocol alone allows at most {protocol_bound:.0f} jobs/s on this "
                     f"machine ({case['jobs_per_s'] / protocol_bound:.0%} of it)")
        note += _budget_note(report, case, THROUGHPUT_SHARE * bound)
        add(f"throughput, {case['label']} r4",
            f">= {THROUGHPUT_SHARE:.0%} of ceiling/writes = {THROUGHPUT_SHARE * bound:.0f} jobs/s",
            case["jobs_per_s"], case["jobs_per_s"] >= THROUGHPUT_SHARE * bound, note)

    for case in cases:
        if case["shape"] != "chain":
            continue
        h = case["handoff"]["total"]
        add(f"chain hand-off p50, r{case['runners']}", f"<= {CHAIN_P50_MS} ms", h["p50_ms"],
            h["p50_ms"] is not None and h["p50_ms"] <= CHAIN_P50_MS)
        add(f"chain hand-off p99, r{case['runners']}", f"<= {CHAIN_P99_MS} ms", h["p99_ms"],
            h["p99_ms"] is not None and h["p99_ms"] <= CHAIN_P99_MS)

    for case in cases:
        if case["shape"] != "independent" or case["runners"] != 16:
            continue
        ratio = case["claims"]["failed_per_successful"]
        add("failed claims per successful claim, independent r16", f"<= {FAILED_CLAIMS}",
            ratio, ratio is not None and ratio <= FAILED_CLAIMS,
            "upper bound: every 409 on jobs/status")

    for case in cases:
        if case["shape"] != "layered":
            continue
        sizes = case["sizes"]
        # The object as stored (compact JSON) is what the limit is about; kubectl's indented
        # output of the same object is shown beside it.
        biggest = max(sizes.get("graph_compact_json_bytes") or 0,
                      sizes.get("biggest_job_compact_json_bytes") or 0,
                      sizes.get("manifest_bytes") or 0)
        rss = case["usage"]["operator"]["peak_rss_mb"]
        ok = case["completed"] and biggest <= MIB and rss < OPERATOR_RSS_MB
        add(f"{case['label']} completes, objects <= 1 MiB, operator RSS < {OPERATOR_RSS_MB} MB, "
            f"r{case['runners']}", "all three",
            f"{'completed' if case['completed'] else 'NOT completed'}, {biggest} B, {rss} MB", ok,
            f"kubectl get -o json of the graph: {sizes.get('graph_kubectl_json_bytes')} B")
    return out


def _code_line(code: dict[str, Any]) -> str:
    changed = code.get("uncommitted_changes") or []
    state = (f", with uncommitted changes to {', '.join(changed)}" if changed
             else ", with no uncommitted changes")
    return f"Code: commit {code.get('commit') or 'unknown'}{state}."


def _per(cpu_percent: float | None, rate: float) -> str:
    """ms of CPU per request, from percent of one core and requests per second."""
    if cpu_percent is None or not rate:
        return "-"
    return f"{10 * cpu_percent / rate:.2f}"


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    v, m = meta["versions"], meta["machine"]
    lines = [
        f"# Overseer benchmark, {meta['started']}",
        "",
        f"Command: `{meta['command']}`",
        "",
        _code_line(meta.get("code") or {}),
        "",
        (f"Machine: {m['cores']} cores ({m['cpu_model']}), {m['memory_gb']} GB. "
        f"Versions: kubernetes {v.get('kubernetes')}, etcd {v.get('etcd')}, "
        f"python {v.get('python')}, kopf {v.get('kopf')}, celery {v.get('celery')}, "
        f"redis {v.get('redis')}. Everything (etcd, apiserver, operator, runners, client) "
        "shares those cores."),
        "",
    ]
    ceiling = report.get("ceiling")
    if ceiling:
        lines += ["## Ceiling: preconditioned merge-patch of jobs/status", "",
                  ("| processes x connections | patches/s | p50 ms | p99 ms | client CPU %/proc "
                  "| apiserver CPU % | etcd CPU % | others CPU % |"),
                  "|---|---|---|---|---|---|---|---|"]
        for row in ceiling["levels"]:
            cpu = row["cpu_percent"]
            lines.append(
                f"| {row['processes']} x {row['connections_per_process']} | "
                f"{row['patches_per_s']} | {row['latency_ms_p50']} | {row['latency_ms_p99']} | "
                f"{row['client_cpu_percent_per_process']} | {cpu.get('kube-apiserver', '-')} | "
                f"{cpu.get('etcd', '-')} | {row.get('others_cpu_percent', '-')} |")
        spread = ceiling_of_run(report)
        lines += ["", f"Ceiling of the sweep: {ceiling['patches_per_s']} patches/s "
                  "(CPU in % of one core; 'others' is CPU of processes that are not the "
                  f"benchmark's). Measured again at {ceiling['best_level']['processes']} x "
                  f"{ceiling['best_level']['connections_per_process']} before every case: "
                  f"{len(spread['samples'])} measurements from {spread['min']} to "
                  f"{spread['max']}, median **{spread['median']} patches/s**, which the "
                  "throughput targets use. The API server's CPU per patch in the sweep: "
                  + ", ".join(
                      f"{row['processes']}x{row['connections_per_process']}: "
                      f"{_per(row['cpu_percent'].get('kube-apiserver'), row['patches_per_s'])} ms"
                      for row in ceiling["levels"]) + ".", ""]
    proto = report.get("protocol")
    if proto:
        lines += ["## The protocol alone: Overseer's writes and watches, no operator or runner",
                  "",
                  ("Each job: create, then the Eligible, claim and outcome status patches, with "
                   "the operator's and runner's own bodies, from a lean client. CPU in ms per "
                   "job."), "",
                  ("| watches | jobs/s | kube-apiserver | etcd | client CPU %/proc | clients "
                   "and others CPU % |"),
                  "|---|---|---|---|---|---|"]
        for row in proto["rows"]:
            cpu = row["server_cpu_ms_per_job"]
            lines.append(f"| {row['watches']} | {row['jobs_per_s']} | "
                         f"{cpu.get('kube-apiserver', '-')} | {cpu.get('etcd', '-')} | "
                         f"{row['client_cpu_percent_per_process']} | "
                         f"{row.get('others_and_clients_cpu_percent', '-')} |")
        if proto["bound_jobs_per_s"]:
            lines += ["", (f"With the watches, the API server and etcd alone spend "
                           f"**{proto['server_ms_per_job']} ms** of CPU per job: all cores of "
                           f"this machine on them and nothing else would run at most "
                           f"**{proto['bound_jobs_per_s']} jobs/s**, whatever the operator and "
                           "runners cost. That holds for a quiet machine: the last column is "
                           "the load clients' CPU (about 25% of a core for two of them) plus "
                           "that of everything else, and another process's load makes the API "
                           "server's CPU per request look higher."), ""]
            if proto.get("with_clients_ms_per_job"):
                lines += [(f"With the lean Python clients that send those writes and read "
                           f"those watches (the bare I/O of an operator and runners that "
                           f"decide and log nothing), the protocol costs "
                           f"**{proto['with_clients_ms_per_job']} ms** of CPU per job in all: "
                           f"at most **{proto['bound_with_clients_jobs_per_s']} jobs/s** on "
                           "this machine."), ""]
        else:
            lines += ["", ("The API server and etcd do not run on this machine (a cluster of "
                           "KUBECONFIG's), so their CPU was not measured."), ""]
    cases = report.get("cases") or []
    if cases:
        lines += ["## Overseer", "",
                  ("| shape | jobs | runners (procs x conc) | seconds | jobs/s | writes/job ok | "
                  "409/job | hand-off p50/p95/p99 ms | failed/ok claims | operator RSS MB | "
                  "runner RSS MB | other load (% of a core) | ceiling just before, patches/s |"),
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in cases:
            if "writes" not in c:
                lines.append(f"| {c['label']} | {c['jobs']} | {c['runners']} | failed: "
                             f"{c.get('error', '')[:80]} |||||||")
                continue
            h = c["handoff"]["total"]
            lines.append(
                f"| {c['label']}{'' if c['completed'] else ' (INCOMPLETE)'} | {c['jobs']} | "
                f"{c['runners']} ({c['runner_processes']}x{c['concurrency_per_process']}) | "
                f"{c['seconds']} | {c['jobs_per_s']} | {c['writes']['successful_per_job']} | "
                f"{c['writes']['conflicts_per_job']} | "
                f"{_ms(h['p50_ms'])} / {_ms(h['p95_ms'])} / {_ms(h['p99_ms'])} | "
                f"{c['claims']['failed_per_successful']} | "
                f"{c['usage']['operator']['peak_rss_mb']} | {c['usage']['runners']['peak_rss_mb']} | "
                f"{c['usage']['machine']['others_cpu_percent_of_one_core']} | "
                f"{(c.get('ceiling') or {}).get('patches_per_s', '-')} |")
        lines += ["", ("'seconds' runs from the JobGraph's create request to the last job's "
                       "finishedAt. 'ceiling just before' is the sweep's best level measured "
                       "again right before the case, on the server as the case found it; the "
                       "throughput targets use the median of those measurements."), "",
                  ("CPU per job, in ms (from each process's CPU time over the case; the "
                  "machine's cores are shared, so this is what the jobs cost, whatever the "
                  "load):"), "",
                  "| shape | runners | operator | all runners | kube-apiserver | etcd | total |",
                  "|---|---|---|---|---|---|---|"]
        for c in cases:
            if "usage" not in c:
                continue
            roles = ("operator", "runners", "kube-apiserver", "etcd")
            per = [1000 * c["usage"][r]["cpu_seconds"] / c["jobs"] if r in c["usage"] else None
                   for r in roles]
            total = sum(p for p in per if p is not None)
            lines.append(f"| {c['label']} | {c['runners']} | " + " | ".join(
                "-" if p is None else f"{p:.1f}" for p in per) + f" | {total:.1f} |")
        lines += ["", "Writes per job by resource (successful / 409):", ""]
        for c in cases:
            if "writes" not in c:
                continue
            parts = [f"{name} {row['ok_per_job']}/{row['conflict_per_job']}"
                     for name, row in c["writes"]["by_resource"].items()]
            lines.append(f"- {c['label']} r{c['runners']}: " + ", ".join(parts))
        lines.append("")
        layered = [c for c in cases if c["shape"] == "layered" and "sizes" in c]
        for c in layered:
            s, e = c["sizes"], c["expansion"]
            lines.append(
                f"- {c['label']} r{c['runners']}: manifest {s['manifest_bytes']} B; graph "
                f"{s.get('graph_compact_json_bytes')} B compact, "
                f"{s['graph_kubectl_json_bytes']} B as kubectl -o json; biggest Job "
                f"{s.get('biggest_job_compact_json_bytes')} B compact, "
                f"{s['biggest_job_kubectl_json_bytes']} B kubectl; operator created all Jobs "
                f"in {e['seconds_to_graph_expanded_log']} s ('graph.expanded')")
        lines.append("")
    peer = report.get("peer") or {}
    if peer.get("cases"):
        lines += ["## Peer: Celery on Redis", "",
                  "| shape | jobs | workers | s | jobs/s | hand-off p50/p95/p99 ms |",
                  "|---|---|---|---|---|---|"]
        for c in peer["cases"]:
            h = c["handoff"]["total"]
            lines.append(f"| {c['shape']}{'' if c['completed'] else ' (INCOMPLETE)'} | "
                         f"{c['jobs']} | {c['workers']} | {c['seconds']} | {c['jobs_per_s']} | "
                         f"{_ms(h['p50_ms'])} / {_ms(h['p95_ms'])} / {_ms(h['p99_ms'])} |")
        lines.append("")
    elif peer:
        lines += [f"Peer: not run ({peer.get('reason')}).", ""]
    lines += ["## Targets", "", "| target | wanted | measured | result | note |",
              "|---|---|---|---|---|"]
    for t in report.get("targets", []):
        lines.append(f"| {t['name']} | {t['target']} | {t['value']} | {t['result']} | "
                     f"{t['note']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Render ``report.md`` (and the targets) again from a ``report.json``."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m bench.report")
    parser.add_argument("report", type=Path, help="a report.json written by bench.run")
    args = parser.parse_args(argv)
    data = json.loads(args.report.read_text())
    data["targets"] = targets(data)
    args.report.write_text(json.dumps(data, indent=2) + "\n")
    args.report.with_name("report.md").write_text(markdown(data))


if __name__ == "__main__":
    main()
