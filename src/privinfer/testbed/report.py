"""The testbed's status for people (a table) and for scripts (JSON)."""

from __future__ import annotations

from privinfer.testbed.control import ServerStatus


def status_lines(found: list[ServerStatus]) -> list[str]:
    """A table: one line per server (a single line when no testbed is up)."""
    if not found:
        return ["no testbed is up (privinfer testbed up)"]
    header = f"{'namespace':<15}{'address':<18}{'to server':>11}{'to client':>11}{'loss':>7}"
    lines = [header + f"{'threads':>9}{'cpus':>6}{'budget':>8}{'pid':>9}  state"]
    for s in found:
        spec, shape = s.server.spec, s.shape
        loss = "-" if shape.loss is None else f"{shape.loss:g}%"
        state = "live" if s.live else ("running, not answering" if s.running else "down")
        budget = "-" if s.cpu_budget is None else f"{s.cpu_budget:g}"
        lines.append(
            f"{s.server.link.namespace:<15}{s.server.address:<18}{_rate(shape.to_server_bits):>11}"
            f"{_rate(shape.to_client_bits):>11}{loss:>7}{spec.threads or '-':>9}{spec.cpus or '-':>6}"
            f"{budget:>8}{s.server.pid:>9}  {state}"
        )
    return lines


def status_json(found: list[ServerStatus]) -> list[dict]:
    return [
        {
            "namespace": s.server.link.namespace,
            "address": s.server.address,
            "host_address": s.server.link.host_address,
            "device": s.server.link.host_device,
            "to_server_bits": s.shape.to_server_bits,
            "to_client_bits": s.shape.to_client_bits,
            "loss_percent": s.shape.loss,
            "threads": s.server.spec.threads,
            "cpus": s.server.spec.cpus,
            "cpu_budget": s.cpu_budget,  # cores, read back from the kernel's CFS quota
            "pid": s.server.pid,
            "log": str(s.server.log),
            "running": s.running,
            "live": s.live,
        }
        for s in found
    ]


def _rate(bits: float | None) -> str:
    if bits is None:
        return "unshaped"
    for unit, scale in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)):
        if bits >= scale:
            return f"{bits / scale:g}{unit}"
    return f"{bits:g}bit"
