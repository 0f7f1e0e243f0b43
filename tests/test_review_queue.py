"""``nova-infant review queue``: expected errors from calibrated confidence, ranking, the minutes summary, the CSV,
NOVA review marks, and the HTML page rendered and sorted in headless Chromium (Debian ``chromium``)."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nova_infant.cli import main
from nova_infant.icep.schemes import full_scheme, write_discrete_annotation

# (from ms, to ms, id, conf) per session; ids in the full infant scheme
ROWS = {"A": [(0, 10000, 5, 0.95), (10000, 16000, 4, 0.40), (16000, 30000, 5, 0.90), (30000, 31000, -1, 1.0)],
        "B": [(0, 20000, 4, 0.55), (20000, 30000, 1, 0.85)]}


@pytest.fixture()
def predicted(tmp_path):
    from discover_utils.utils.type_definitions import LabelDType

    scheme = full_scheme("infant")
    for name, rows in ROWS.items():
        data = np.array(rows, dtype=LabelDType.DISCRETE.value)
        write_discrete_annotation(tmp_path / "data" / "demo" / name / f"infant.{scheme.name}.icep.annotation", scheme,
                                  data, "infant", "icep", name, "demo")
    return tmp_path


def test_queue_ranks_by_expected_errors_and_writes_csv_summary_and_marks(predicted, capsys):
    out = predicted / "queue"
    assert main(["review", "queue", str(predicted / "data"), "--dataset", "demo", "--out", str(out), "--mark"]) == 0
    printed = capsys.readouterr().out
    with open(out / "review_queue.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = full_scheme("infant").names
    # garbage left out; lowest confidence first; expected errors = duration x (1 - conf)
    assert [(r["session"], float(r["start_s"]), float(r["confidence"])) for r in rows] == [
        ("A", 10.0, 0.40), ("B", 0.0, 0.55), ("B", 20.0, 0.85), ("A", 16.0, 0.90), ("A", 0.0, 0.95)]
    assert rows[0]["code"] == names[4] and float(rows[0]["expected_errors_s"]) == pytest.approx(6 * 0.6)
    total = 6 * 0.6 + 20 * 0.45 + 10 * 0.15 + 14 * 0.1 + 10 * 0.05
    assert float(rows[1]["cumulative_share"]) == pytest.approx((3.6 + 9) / total, abs=1e-3)
    # half of the expected errors are caught after reviewing segments 1-2 (6 s + 20 s)
    assert re.search(r"review 0\.4 min for half", printed) and "  1. A" in printed
    from nova_infant.core.annotations import read_annotation

    marks = read_annotation(predicted / "data" / "demo" / "B" / "infant.review.review.annotation")
    assert marks.data[["from", "to"]].tolist() == [(0, 20000)]
    assert not (predicted / "data" / "demo" / "A" / "infant.review.icep.annotation").exists()


def test_queue_page_renders_and_sorts_in_headless_chromium(predicted, tmp_path):
    import matplotlib.pyplot as plt

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian chromium is required for this test: run scripts/install-review.sh"
    out = predicted / "queue"
    assert main(["review", "queue", str(predicted / "data"), "--dataset", "demo", "--out", str(out)]) == 0
    page = out / "review_queue.html"
    text = page.read_text()
    assert "src=\"http" not in text and "href=\"http" not in text  # self-contained
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    shot = tmp_path / "queue.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,700", page.as_uri()], check=True,
                   capture_output=True, timeout=120)
    image = plt.imread(shot)
    assert image.shape[:2] == (700, 1200)
    pixels = (image[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    assert (np.abs(pixels.astype(int) - [0xfd, 0xe0, 0xe0]).sum(1) < 6).any()  # hatched low-confidence rows drawn

    def sessions_in_order(fragment: str) -> list[tuple[str, str]]:
        dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri() + fragment], check=True,
                             capture_output=True, text=True, timeout=120).stdout
        body = dom.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
        return [tuple(re.findall(r'<td data-v="([^"]*)"', row)[1:3]) for row in body.split("<tr")[1:]]

    by_errors = sessions_in_order("#sort=expected_errors_s-desc")
    assert by_errors[0] == ("B", "0.0") and by_errors[-1] == ("A", "0.0")  # 9 s, then ..., 0.5 s
    by_start = sessions_in_order("#sort=start_s-asc")
    assert [float(s) for _, s in by_start] == sorted(float(s) for _, s in by_start)
    assert sessions_in_order("")[0] == ("A", "10.0")  # the page's own order: review order


def test_queue_over_a_nova_database(tmp_path, monkeypatch, capsys):
    """The same queue from NOVA's database (mongomock around discover-utils' handlers, as tests/test_nova_db.py)."""
    from unittest import mock

    import mongomock
    from discover_utils.data.annotation import DiscreteAnnotation
    from discover_utils.data.handler import nova_db_handler

    from nova_infant.core import nova_db

    monkeypatch.setenv("DISCOVER_USE_TLS", "false")
    scheme = full_scheme("infant")
    patcher = mongomock.patch(servers=(("127.0.0.1", 27017),))
    with patcher, mock.patch.object(nova_db_handler, "MongoClient", patcher.new):
        ctx = nova_db.connect("127.0.0.1", 27017, "coder", "secret", data_dir=tmp_path)
        nova_db.ensure_role(ctx, "lab", "infant")
        nova_db.ensure_annotator(ctx, "lab", "icep")
        nova_db.import_discrete_scheme(ctx, "lab", Path(__file__).resolve().parents[1] / "schemes" /
                                       "icep_r_infant.json")
        for name, rows in ROWS.items():
            nova_db.ensure_session(ctx, "lab", name, duration_ms=31000)
            template = nova_db_handler.AnnotationHandler(**ctx).load(dataset="lab", scheme=scheme.name, session=name,
                                                                     annotator="icep", role="infant", header_only=True)
            data = np.array(rows, dtype=template.annotation_scheme.label_dtype)
            nova_db.save_annotation(ctx, DiscreteAnnotation(scheme=template.annotation_scheme, data=data), "lab", name,
                                    "icep", "infant")
        nova_db.ensure_session(ctx, "lab", "C", duration_ms=31000)  # not predicted yet: left out
        code = main(["review", "queue", "--db", "mongodb://coder:secret@127.0.0.1:27017", "--dataset", "lab",
                     "--scheme", scheme.name, "--annotator", "icep", "--out", str(tmp_path / "q")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    with open(tmp_path / "q" / "review_queue.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["session"], float(r["start_s"])) for r in rows] == [("A", 10.0), ("B", 0.0), ("B", 20.0), ("A", 16.0),
                                                                    ("A", 0.0)]
    assert "5 segments in 2 sessions" in printed
