"""Review queue over predicted sessions: which minutes to review first (docs/review.md, "Review queue").

A predicted discrete segment of duration ``d`` seconds and calibrated confidence ``c`` (the mean probability of its
class, ICEP-R predictors and completion: :mod:`nova_infant.icep.calibration`) holds ``d * (1 - c)`` expected error
seconds: the sum over its frames of 1 - confidence, in seconds. Reviewing segments in order of increasing confidence
(highest error density first) catches the most expected errors per reviewed minute; the queue lists them in that
order with the cumulative share of expected errors, and the summary says how many minutes catch half and 80 % of
them. Sessions are ranked by their total expected errors. Garbage rows (id -1) are not predictions and are left out.

Outputs: a self-contained HTML page (inline CSS and JavaScript, no network; click a column heading to sort; the
page also sorts on load by ``#sort=<column>-<asc|desc>``), a CSV, and optionally one NOVA annotation per session
marking the segments below the threshold (scheme ``review``, its own annotator).
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nova_infant.core import nova_db
from nova_infant.core.annotations import discrete_segments, read_annotation, write_annotation
from nova_infant.core.atomic import atomic_file, safe_name
from nova_infant.core.errors import AnnotationError, NovaInfantError

#: columns of the table and the CSV
COLUMNS = ("rank", "session", "start_s", "end_s", "code", "confidence", "expected_errors_s", "cumulative_share")


@dataclass
class QueueItem:
    """One predicted segment to review.

    Attributes
    ----------
    session : str
    start_ms, end_ms : float
    code : str
        Predicted class name.
    confidence : float
        Calibrated mean confidence, 0..1.
    expected_errors_s : float
        ``(end - start) / 1000 * (1 - confidence)``.
    """

    session: str
    start_ms: float
    end_ms: float
    code: str
    confidence: float
    expected_errors_s: float


def items_of(session: str, segments: np.ndarray, names: list[str]) -> list[QueueItem]:
    """Queue items of one predicted annotation (``from``/``to`` ms, ``id``, ``conf``; rows with id < 0 skipped).

    Raises
    ------
    AnnotationError
        A confidence outside 0..1 (naming the session and time).
    """
    out = []
    for row in segments:
        if int(row["id"]) < 0:
            continue
        conf = float(row["conf"])
        if not 0.0 <= conf <= 1.0 or not np.isfinite(conf):
            raise AnnotationError(f"session {session}: segment at {float(row['from']) / 1000:.2f} s has confidence "
                                  f"{conf}, expected 0..1")
        start, end = float(row["from"]), float(row["to"])
        name = names[int(row["id"])] if int(row["id"]) < len(names) else str(int(row["id"]))
        out.append(QueueItem(session, start, end, name, conf, max(end - start, 0.0) / 1000.0 * (1.0 - conf)))
    return out


def rank(items: list[QueueItem]) -> list[QueueItem]:
    """Review order: lowest confidence first (most expected errors per reviewed second), then longer first."""
    return sorted(items, key=lambda it: (it.confidence, -(it.end_ms - it.start_ms), it.session, it.start_ms))


def summary(items: list[QueueItem], shares=(0.5, 0.8)) -> dict:
    """Minutes of review (in :func:`rank` order) that catch each share of the expected errors, per-session totals.

    Returns
    -------
    dict
        ``total_expected_errors_s``, ``total_minutes``, ``minutes_for`` ({"50%": minutes, ...}), ``sessions``
        (list of {session, expected_errors_s, minutes} by decreasing expected errors).
    """
    ordered = rank(items)
    errors = np.array([it.expected_errors_s for it in ordered])
    minutes = np.array([(it.end_ms - it.start_ms) / 60000.0 for it in ordered])
    total = float(errors.sum())
    cum_e, cum_m = np.cumsum(errors), np.cumsum(minutes)
    need = {}
    for share in shares:
        if total <= 0:
            need[f"{int(round(share * 100))}%"] = 0.0
            continue
        k = int(np.searchsorted(cum_e, share * total - 1e-12))
        need[f"{int(round(share * 100))}%"] = float(cum_m[min(k, len(cum_m) - 1)])
    per = {}
    for it in items:
        e, m = per.get(it.session, (0.0, 0.0))
        per[it.session] = (e + it.expected_errors_s, m + (it.end_ms - it.start_ms) / 60000.0)
    sessions = [{"session": s, "expected_errors_s": e, "minutes": m}
                for s, (e, m) in sorted(per.items(), key=lambda kv: -kv[1][0])]
    return {"total_expected_errors_s": total, "total_minutes": float(minutes.sum()), "minutes_for": need,
            "sessions": sessions}


def table_rows(items: list[QueueItem]) -> list[dict]:
    """Rows of the table/CSV in :func:`rank` order with rank and cumulative share of expected errors."""
    ordered = rank(items)
    total = sum(it.expected_errors_s for it in ordered) or 1.0
    rows, cum = [], 0.0
    for i, it in enumerate(ordered, 1):
        cum += it.expected_errors_s
        rows.append({"rank": i, "session": it.session, "start_s": round(it.start_ms / 1000, 3),
                     "end_s": round(it.end_ms / 1000, 3), "code": it.code, "confidence": round(it.confidence, 4),
                     "expected_errors_s": round(it.expected_errors_s, 3), "cumulative_share": round(cum / total, 4)})
    return rows


def write_csv(items: list[QueueItem], path: str | os.PathLike) -> Path:
    """The queue as CSV (:data:`COLUMNS`), written atomically.

    Raises
    ------
    OutputError
        The file cannot be written.
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS))
    writer.writeheader()
    writer.writerows(table_rows(items))
    with atomic_file(path, ".csv") as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    return Path(path)


_SCRIPT = """
function sortBy(col, dir) {
  var body = document.querySelector('#queue tbody');
  var rows = Array.prototype.slice.call(body.rows);
  var num = document.querySelector('#queue th[data-col="' + col + '"]').dataset.num === '1';
  var idx = Array.prototype.indexOf.call(document.querySelectorAll('#queue th'),
                                         document.querySelector('#queue th[data-col="' + col + '"]'));
  rows.sort(function (a, b) {
    var x = a.cells[idx].dataset.v, y = b.cells[idx].dataset.v;
    if (num) { x = parseFloat(x); y = parseFloat(y); }
    return (x < y ? -1 : x > y ? 1 : 0) * (dir === 'desc' ? -1 : 1);
  });
  rows.forEach(function (r) { body.appendChild(r); });
  document.querySelectorAll('#queue th').forEach(function (th) { th.className = ''; });
  document.querySelector('#queue th[data-col="' + col + '"]').className = dir;
  document.body.dataset.sorted = col + '-' + dir;
}
document.querySelectorAll('#queue th').forEach(function (th) {
  th.addEventListener('click', function () {
    sortBy(th.dataset.col, th.className === 'asc' ? 'desc' : 'asc');
  });
});
var m = /sort=([a-z_]+)-(asc|desc)/.exec(window.location.hash);
if (m) { sortBy(m[1], m[2]); }
"""


def render_html(items: list[QueueItem], path: str | os.PathLike, title: str = "Review queue",
                threshold: float = 0.7) -> Path:
    """The self-contained HTML page (summary, per-session totals, sortable table), written atomically.

    Raises
    ------
    OutputError
        The file cannot be written.
    """
    s = summary(items)
    rows = table_rows(items)
    numeric = {"rank", "start_s", "end_s", "confidence", "expected_errors_s", "cumulative_share"}
    heads = {"rank": "#", "session": "session", "start_s": "start (s)", "end_s": "end (s)", "code": "predicted code",
             "confidence": "confidence", "expected_errors_s": "expected errors (s)",
             "cumulative_share": "cumulative share"}
    th = "".join(f'<th data-col="{c}" data-num="{int(c in numeric)}">{heads[c]}</th>' for c in COLUMNS)
    body = []
    for r in rows:
        cells = []
        for c in COLUMNS:
            v = r[c]
            text = f"{v:.2f}" if c in ("start_s", "end_s", "confidence", "expected_errors_s") else (
                f"{100 * v:.0f} %" if c == "cumulative_share" else html.escape(str(v)))
            cells.append(f'<td data-v="{html.escape(str(v))}">{text}</td>')
        low = ' class="low"' if r["confidence"] < threshold else ""
        body.append(f"<tr{low}>{''.join(cells)}</tr>")
    sess = "".join(f"<li>{html.escape(x['session'])}: {x['expected_errors_s']:.1f} s expected errors in "
                   f"{x['minutes']:.1f} min</li>" for x in s["sessions"])
    need = s["minutes_for"]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; font-size: 14px; }}
th, td {{ border: 1px solid #bbb; padding: 3px 8px; text-align: right; }}
th {{ background: #e8eef7; cursor: pointer; user-select: none; }}
th.asc::after {{ content: " \\25B2"; }} th.desc::after {{ content: " \\25BC"; }}
td:nth-child(2), td:nth-child(5) {{ text-align: left; }}
tr.low td {{ background: repeating-linear-gradient(45deg, #fde0e0, #fde0e0 4px, #fff 4px, #fff 8px); }}
.summary {{ font-size: 16px; background: #f4f4f4; padding: 0.6em 1em; border-left: 4px solid #d62728; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="summary" id="summary">Review <b>{need.get('50%', 0):.1f} min</b> to catch half and <b>{need.get('80%', 0):.1f}
min</b> to catch 80 % of the {s['total_expected_errors_s']:.1f} s of expected errors in {s['total_minutes']:.1f} min of
predictions (segments in order of increasing confidence; hatched rows are below {threshold:g}, as NOVA hatches them).</p>
<ul id="sessions">{sess}</ul>
<p>Expected errors of a segment = its duration x (1 - calibrated confidence). Click a heading to sort.</p>
<table id="queue"><thead><tr>{th}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table>
<script>{_SCRIPT}</script>
<script type="application/json" id="queue-data">{html.escape(json.dumps(s))}</script>
</body></html>
"""
    with atomic_file(path, ".html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    return Path(path)


def write_review_marks(session_dir: str | os.PathLike, items: list[QueueItem], role: str, annotator: str,
                       threshold: float = 0.7, dataset: str = "") -> Path:
    """A NOVA discrete annotation ``<role>.review.<annotator>.annotation`` marking the session's segments below
    ``threshold`` (class ``review``, conf = the segment's confidence), written atomically.

    Raises
    ------
    PathError
        ``role`` or ``annotator`` is not a plain name.
    OutputError
        The file cannot be written.
    """
    from discover_utils.data.annotation import DiscreteAnnotation, DiscreteAnnotationScheme
    from discover_utils.utils.type_definitions import LabelDType

    safe_name(role, "role")
    safe_name(annotator, "annotator")
    session_dir = Path(session_dir)
    low = [it for it in items if it.confidence < threshold]
    data = np.zeros(len(low), dtype=LabelDType.DISCRETE.value)
    for i, it in enumerate(sorted(low, key=lambda it: it.start_ms)):
        data[i] = (it.start_ms, it.end_ms, 0, it.confidence)
    scheme = DiscreteAnnotationScheme(name="review", classes={0: {"name": "review", "color": "#FFD62728"}})
    anno = DiscreteAnnotation(scheme=scheme, data=data, role=role, annotator=annotator, session=session_dir.name,
                              dataset=dataset)
    return write_annotation(anno, session_dir / f"{role}.review.{annotator}.annotation")


def collect_files(root: str | os.PathLike, dataset: str | None, role: str, scheme: str | None,
                  annotator: str) -> tuple[list[QueueItem], dict, list[str]]:
    """Queue items of every session folder under ``<root>/<dataset>`` holding
    ``<role>.<scheme>.<annotator>.annotation`` (``scheme`` None: any scheme of that role and annotator).

    Returns
    -------
    (items, folders, problems) : list of QueueItem, {session: folder}, one line per unreadable annotation
    """
    base = Path(root) / dataset if dataset else Path(root)
    items, folders, problems = [], {}, []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        pattern = f"{role}.{scheme or '*'}.{annotator}.annotation"
        for path in sorted(folder.glob(pattern)):
            try:
                segments, names = discrete_segments(read_annotation(path), str(path))
                items += items_of(folder.name, segments, names)
                folders[folder.name] = folder
            except NovaInfantError as exc:  # one bad file: reported, the others are queued
                problems.append(f"{path}: {exc}")
    return items, folders, problems


def collect_db(ctx: dict, dataset: str, role: str, scheme: str, annotator: str,
               pattern: str | None = None) -> tuple[list[QueueItem], list[str]]:
    """Queue items of every session of a NOVA database that has the annotation (scheme, role, annotator).

    Returns
    -------
    (items, problems)
        Sessions without that annotation (not predicted yet) are left out silently.
    """
    items, problems = [], []
    for name in nova_db.list_sessions(ctx, dataset, pattern):
        try:
            anno = nova_db.load_annotation(ctx, dataset, name, scheme, annotator, role)
        except NovaInfantError as exc:
            if not str(exc).endswith(": not found"):  # a session not predicted yet is simply not in the queue
                problems.append(f"session {name}: {exc}")
            continue
        if anno is None or anno.data is None or not len(anno.data):
            continue
        segments, names = discrete_segments(anno, f"session {name}")
        items += items_of(name, segments, names)
    return items, problems
