"""`privinfer bench`: run the chosen sections in one process, write their JSON, the summary and the plots."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime

import torch

from privinfer.bench import report
from privinfer.bench.context import BenchContext, BenchOptions, device_name, machine
from privinfer.bench.machine_load import CpuSample, other_work_share
from privinfer.bench.registry import Section, select


def run_bench(options: BenchOptions, progress: Callable[[str], None] = print) -> dict:
    """Measure, then write ``<out>/<section>.json``, ``summary.json``, ``summary.md`` and plots.
    The summary also shows the sections measured into ``out`` by earlier runs and not by this one.

    Returns the summary. Raises ConfigError for bad options, before anything is measured.
    """
    import matplotlib

    matplotlib.use("Agg")
    options.validate()
    sections = select(options.only, options.skip)
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()[0]
    cpu_start = CpuSample.now()
    header = {
        "machine": machine(),
        "device": device_name(options.device),
        "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": options.quick,
        "frames_per_measurement": options.frame_count,
        "servers": options.servers,
        "backend": options.backend,
        "client_torch_threads": options.threads or torch.get_num_threads(),
        "cores": os.cpu_count(),
    }
    results = _measure(options, sections, header, progress)
    header["load_average"] = {"start": load_start, "end": os.getloadavg()[0]}
    # After every pool and testbed is closed, so that the servers' CPU time counts as the benchmark's own.
    header["other_work_cpu_share"] = other_work_share(cpu_start, CpuSample.now())
    header["sections"] = [s.name for s in sections]
    # Sections not run this time but measured into the same folder before stay in the summary,
    # named as earlier measurements (an `--only alternatives` run refreshes one table, not all).
    earlier = report.load_earlier(out, exclude=header["sections"])
    header["earlier_sections"] = {name: result["created"] for name, result in earlier.items()}
    header["notes"] = report.notes(header)
    header["options"] = {k: str(v) if v is not None and not isinstance(v, bool | int) else v
                         for k, v in asdict(options).items()}  # fmt: skip
    results = {**earlier, **results}
    shown, plots = _render(select(), results, earlier, out, header["notes"])
    summary = report.summarize(results, header)
    report.write_json(out / "summary.json", summary)
    report.write_markdown(out, summary, results, shown, plots)
    progress(f"benchmark written to {out}/summary.md")
    return summary


def _render(
    sections: list[Section], results: dict[str, dict], earlier: dict[str, dict], out, notes: list[str]
) -> tuple[list[Section], dict[str, str | None]]:
    """The sections shown in the summary and their plots. An earlier measurement that this code can
    no longer draw (its JSON is from an older version of its section) is left out with a note,
    instead of failing the run that measured something else."""
    shown, plots = [], {}
    for section in sections:
        if section.name not in results:
            continue
        try:
            section.markdown(results[section.name])
            plots[section.name] = section.plot(results[section.name], out) if section.plot else None
        except (KeyError, AttributeError, TypeError, ValueError) as error:
            if section.name not in earlier:
                raise
            notes.append(
                f"the earlier {section.name} results in {out} are from an older version of that section "
                f"({type(error).__name__}: {error}) and are not shown: rerun with --only {section.name}"
            )
            continue
        shown.append(section)
    return shown, plots


def _measure(options: BenchOptions, sections: list[Section], header: dict, progress) -> dict[str, dict]:
    """Run each section, writing its JSON as soon as it is done (a later failure keeps it)."""
    results: dict[str, dict] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(options.threads or threads)
    try:
        with BenchContext(options, progress) as ctx:
            header["privacy_source"] = ctx.privacy.describe()
            for section in sections:
                started = time.perf_counter()
                progress(f"== {section.name}: {section.title}")
                results[section.name] = {**section.run(ctx), "seconds": time.perf_counter() - started}
                content = {"section": section.name, **header, **results[section.name]}
                report.write_json(options.out / f"{section.name}.json", content)
    finally:
        torch.set_num_threads(threads)  # this process's setting, as it was
    return results
