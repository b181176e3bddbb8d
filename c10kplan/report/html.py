"""`verify --report DIR`: DIR/report.html and the PNGs it shows (plots.py), one static page that
opens from the disk with no server and no network: no scripts, no external style sheets or
fonts, images by relative name. Every piece of text from the run (figures, errno names, the
plan's fixes, the target's address) is HTML-escaped.

The PNGs are written first and report.html last, by rename(2), so a page that exists is whole.
"""

from __future__ import annotations

import datetime as _dt
import os
from html import escape
from pathlib import Path

from c10kplan.counts import plural
from c10kplan.files import atomic_write
from c10kplan.report import plots
from c10kplan.storm.result import http_statuses_label

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto;
       max-width: 1100px; padding: 0 16px; color: #222; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 19px; margin-top: 28px;
     border-bottom: 1px solid #ddd; padding-bottom: 3px; }
.PASS { color: #17803d; } .FAIL, .NO { color: #b42318; font-weight: 600; } .WARN { color: #a15c00; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.how, td.fix { color: #555; font-size: 13px; max-width: 420px; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.muted { color: #666; font-size: 13px; }
"""


def _num(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:,.0f}"


def _table(headers: list[str], rows: list[list[tuple[str, str] | str]]) -> str:
    """rows of cells: a text, or (text, css class). Every text is escaped here."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            text, cls = cell if isinstance(cell, tuple) else (cell, "")
            cells.append(f'<td class="{escape(cls)}">{escape(text)}</td>' if cls else f"<td>{escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(images: dict[str, Path | None], name: str, alt: str, missing: str) -> str:
    if images.get(name) is None:
        return f'<p class="muted">{escape(missing)}</p>'
    return f'<p><img src="{escape(name)}" alt="{escape(alt)}" width="800" height="420"></p>'


def _summary(res) -> str:
    s = res.storm
    failures = ", ".join(f"{k} x{v:,}" for k, v in sorted(s.failures.items())) or "none"
    server_errors = ", ".join(f"{k} x{v:,}" for k, v in sorted(res.server_errors.items())) or "none"
    rows = [
        ["connections", f"{s.established:,} established, {s.held:,} held of {res.connections:,}"],
        ["connect time", f"{s.connect_seconds:.3f} s ({s.connect_rate:,.0f} conn/s)"],
        ["failures (storm)", failures],
        ["server", f"{_num(res.server_active)} active after the hold; errors: {server_errors}"],
        ["messages", f"{s.messages_sent:,} sent, {s.messages_received:,} answered, {s.mismatches:,} mismatched, "
                     f"{s.unanswered:,} unanswered, {s.lost_on_drop:,} lost on drop, {s.missed:,} never sent"],
        *([[http_statuses_label(s.established), ", ".join(f"{k} x{v:,}" for k, v in s.http_statuses.items())]] if s.http_statuses else []),
        *([["WebSocket close codes", ", ".join(f"{k} x{v:,}" for k, v in s.close_codes.items())]]
          if s.close_codes else []),
        ["throughput", f"{s.messages_per_second:,.0f} msg/s, {s.throughput_bytes_per_second:,.0f} B/s"],
        ["processes", f"{plural(res.server_workers, 'server worker')}, "
                      f"{plural(res.storm_processes, 'storm process', 'storm processes')}, "
                      f"{plural(s.source_addresses, 'source address', 'source addresses')}"],
        ["hold", f"{res.duration:g} s at {res.message_rate:g} msg/s per connection"
                 + (" (inside a throwaway network namespace" + (f", profile {res.profile})" if res.profile else ")")
                    if res.netns else "")],
    ]
    return _table(["run", "result"], rows)


def _memory_table(res) -> str:
    points = plots.memory_points(res)
    base = res.before.slab_bytes
    rows = []
    for when, sockets, mib in points:
        planned = None if base is None else (base + res.plan.kernel_bytes_per_socket * sockets) / plots.MIB
        rows.append([when, (f"{sockets:,}", "n"), (_num(mib), "n"), (_num(planned), "n")])
    return _table(["sampled", "sockets", "Slab measured (MiB)", "Slab planned (MiB)"], rows)


def _latency_table(res) -> str:
    s = res.storm
    rows = [[name, (f"{p.count:,}", "n")] + [(f"{v / 1000:,.3f}" if p.count else "-", "n")
                                             for v in (p.p50, p.p90, p.p99, p.p999, p.max)]
            for name, p in (("connect", s.connect_latency_us), ("message (corrected)", s.message_latency_us.corrected),
                            ("message (raw)", s.message_latency_us.raw))]
    return _table(["latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max"], rows)


def _comparisons(res) -> str:
    within = {True: ("yes", ""), False: ("NO", "NO"), None: ("-", "")}
    rows = [[c.figure, (_num(c.measured), "n"), (_num(c.planned), "n"), c.unit,
             ("-" if c.ratio is None else f"{c.ratio:.2f}", "n"), within[c.within], (c.how, "how")]
            for c in res.comparisons]
    return _table(["figure", "measured", "planned", "unit", "ratio", "within 25%", "how"], rows)


def _findings(res) -> str:
    if not res.plan.findings:
        return '<p class="muted">The plan listed no findings.</p>'
    fixes = any(f.fix for f in res.plan.findings)  # a column of blanks says nothing
    rows = [[f.id, (f.status, f.status), f.observed, f.required, *([(f.fix, "fix")] if fixes else [])]
            for f in res.plan.findings]
    return _table(["finding", "status", "observed", "required", *(["fix"] if fixes else [])], rows)


def page(res, images: dict[str, Path | None], generated: str) -> str:
    """The HTML text of the report (images: plots.draw_all's answer)."""
    verdict = res.verdict
    title = f"c10kplan verify: {res.connections:,} connections, {verdict}"
    problems = "".join(f"<li>{escape(p)}</li>" for p in res.problems)
    forced = (f'<p class="WARN">The plan FAILED and --force was given: {escape("; ".join(res.plan.failing))}</p>'
              if res.forced else "")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f'<h1>c10kplan verify: {res.connections:,} connections, <span class="{escape(verdict)}">{escape(verdict)}</span></h1>',
        f'<p class="muted">server {escape(res.server_endpoint)}; storm target {escape(res.storm.target)}; '
        f"written {escape(generated)}</p>",
        forced,
        f"<ul>{problems}</ul>" if problems else "",
        "<h2>Summary</h2>", _summary(res),
        "<h2>Connections over time</h2>",
        _figure(images, "ramp.png", "connections established over time, failures marked",
                "No progress reports were recorded."),
        "<h2>Kernel memory against sockets</h2>",
        _figure(images, "memory.png", "host Slab against sockets, measured and planned",
                "No Slab figure could be read."),
        _memory_table(res),
        "<h2>Message latency by percentile</h2>",
        _figure(images, "latency.png", "latency percentile spectrum, corrected and raw",
                "No message latency: the connections were held idle (--message-rate 0)."),
        _latency_table(res),
        '<p class="muted">corrected: from the intended send time (coordinated omission corrected); '
        "raw: from the actual send.</p>",
        "<h2>CPU per message</h2>",
        _figure(images, "cpu.png", "CPU per message, measured against planned",
                "No CPU per message was measured: no messages were sent (--message-rate 0) or too few."),
        "<h2>Measured against planned</h2>", _comparisons(res),
        "<h2>The plan's findings</h2>", _findings(res),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def write_report(res, folder: str | os.PathLike[str], *, now: _dt.datetime | None = None) -> Path:
    """DIR/report.html and its PNGs; returns the page's path. Raises OSError."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images = plots.draw_all(res, folder)
    for name, path in images.items():
        if path is None and (folder / name).exists():
            (folder / name).unlink()  # an older run's figure must not pass for this one's
    when = (now or _dt.datetime.now(_dt.timezone.utc)).isoformat(timespec="seconds")
    target = folder / "report.html"
    atomic_write(target, page(res, images, when), fsync=False)
    return target
