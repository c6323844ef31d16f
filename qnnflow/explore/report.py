"""The sweep's reports: ``report.html`` (self-contained: the plots inline, no server, no network) and
one ``points/<name>/report.md`` per point with links to its units' folders and logs."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path

from qnnflow.explore.pareto import front, label, parse_objective, resolve_metric

COLUMNS = ("name", "precision", "method", "folding", "board", "status", "accuracy", "sw_accuracy", "flips",
           "jaccard", "ii_estimated", "cycles_measured", "luts_est", "luts", "ffs", "brams", "dsps", "fmax_mhz",
           "fps", "fps_per_lut", "lut_est_error_pct")  # fmt: skip

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:0.85em;margin-bottom:1.5em}
th,td{border:1px solid #ccc;padding:0.2em 0.5em;text-align:right}
th{background:#eee;cursor:pointer;position:sticky;top:0}
td:first-child,th:first-child{text-align:left}
tr.front td{background:#eef7ee}
img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}
.bad{color:#a00}
"""
# click a header to sort the table by that column (numbers as numbers)
_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.dataset.asc !== 'true';
    th.dataset.asc = asc;
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
document.getElementById('count').textContent = document.querySelectorAll('#results tbody tr').length;
"""


def _fmt(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer() and abs(v) >= 10:  # a count that went through a float
        return f"{int(v):,}"
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _table(rows: Sequence[dict], columns: Sequence[str], table_id: str, front_names: set[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            text = html.escape(_fmt(v))
            if c == "name":
                text = f'<a href="points/{html.escape(r["name"])}/report.md">{text}</a>'
            cls = ' class="bad"' if c == "status" and v != "ok" else ""
            cells.append(f'<td data-v="{html.escape("" if v is None else str(v))}"{cls}>{text}</td>')
        cls = ' class="front"' if r["name"] in front_names else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (
        f'<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def write_html(out: Path, rows: Sequence[dict], objectives: Sequence[str], plots: dict[str, Path], title: str,
               notes: Sequence[str] = ()) -> Path:  # fmt: skip
    """``out/report.html``: the results table, each objective's plot and front, the notes."""
    cols = [c for c in COLUMNS if any(r.get(c) is not None for r in rows)]
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p><span id=\"count\">{len(rows)}</span> points; rows on a Pareto front of the first objective are "
             "shaded. Click a column's header to sort by it. Each name links to the point's report.</p>"]  # fmt: skip
    parts += [f"<p>{html.escape(n)}</p>" for n in notes]
    first = set()
    for k, obj in enumerate(objectives):
        y, x = (resolve_metric(rows, m) for m in parse_objective(obj))
        best = front(rows, y, x)
        if k == 0:
            first = {r["name"] for r in best}
        parts.append(f"<h2>{html.escape(label(rows, y))} against {html.escape(label(rows, x))}</h2>")
        if obj in plots:
            data = base64.b64encode(plots[obj].read_bytes()).decode()
            parts.append(f'<img alt="{html.escape(obj)}" src="data:image/png;base64,{data}">')
        names = (
            ", ".join(f"{r['name']} ({_fmt(r.get(y))}, {_fmt(r.get(x))})" for r in best) or "none (no point has both)"
        )
        parts.append(f"<p>Pareto front: {html.escape(names)}</p>")
    parts.insert(2, "<h2>All points</h2>" + _table(rows, cols, "results", first))
    head = f'<meta charset="utf-8"><title>{html.escape(title)}</title><style>{_STYLE}</style>'
    body = f'{"".join(parts)}<script>{_SCRIPT}</script>'
    page = f'<!DOCTYPE html><html lang="en"><head>{head}</head><body>{body}</body></html>'
    path = out / "report.html"
    path.write_text(page)
    return path


def write_point_report(out: Path, row: dict, records: dict[str, dict]) -> Path:
    """``points/<name>/report.md``: the point's parameters and metrics, and where its units are."""
    folder = out / "points" / row["name"]
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# {row['name']}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in row.items() if v is not None]
    lines += ["", "## Units", "", "| stage | reused | seconds | folder | log |", "|---|---|---:|---|---|"]
    for kind, rec in records.items():
        if rec.get("key") is None:
            lines.append(f"| {kind} | | | {rec.get('error', '')} | |")
            continue
        rel = Path("../..") / "units" / kind / rec["key"]
        lines.append(f"| {kind} | {'yes' if rec.get('cached') else 'no'} | {rec.get('seconds', '')} | "
                     f"[{rec['key']}]({rel}) | [log.txt]({rel / 'log.txt'}) |")  # fmt: skip
        if rec.get("error"):
            lines.append(f"| | | | {rec['error']} | |")
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n")
    (folder / "units.json").write_text(json.dumps({k: r["key"] for k, r in records.items() if r.get("key")}, indent=1))
    return path
