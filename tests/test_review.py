"""Review helpers: timeline (PNG + HTML rendered in headless Chromium), agreement report against scikit-learn,
ELAN/CSV export and ELAN import. Annotations are real NOVA ``.annotation`` files written with discover-utils; the
feature strip comes from the real carphone video."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from discover_utils.data.annotation import DiscreteAnnotation, DiscreteAnnotationScheme
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score

from nova_infant.core import streams
from nova_infant.cli import main
from nova_infant.core.errors import AnnotationError
from nova_infant.review import agreement, elan, timeline
from nova_infant.review.annotations import read_annotation, sample_frames, write_annotation

SCHEME = {"name": "ICEP-R-infant", "classes": [
    {"id": 0, "name": "Ineg", "color": "#FFD62728"}, {"id": 1, "name": "Inon", "color": "#FF1F77B4"},
    {"id": 2, "name": "Ineu", "color": "#FF7F7F7F"}, {"id": 3, "name": "Ipos", "color": "#FF2CA02C"}]}
GOLD_S1 = [(0, 1000, 2), (1000, 2400, 3), (2400, 2600, -1), (2600, 4000, 1)]
PRED_S1 = [(0, 1200, 2), (1200, 2000, 3), (2000, 3000, 0), (3000, 4000, 1)]
GOLD_S2 = [(0, 1500, 0), (1500, 3000, 3), (3200, 4000, 2)]  # 3000-3200 is a gap
PRED_S2 = [(0, 1000, 0), (1000, 4000, 3)]


def make_annotation(rows, annotator, scheme=SCHEME, role="infant"):
    classes = {c["id"]: {"name": c["name"], "color": c["color"]} for c in scheme["classes"]}
    s = DiscreteAnnotationScheme(name=scheme["name"], classes=classes)
    data = np.array([(a, b, i, 0.9) for a, b, i in rows], dtype=s.label_dtype)
    return DiscreteAnnotation(scheme=s, data=data, role=role, annotator=annotator)


def write(folder: Path, rows, annotator, scheme=SCHEME) -> Path:
    return write_annotation(make_annotation(rows, annotator, scheme),
                            folder / f"infant.{scheme['name']}.{annotator}.annotation")


def labels_at_centres(rows, step_ms, n):
    """Independent reference: the label whose [from, to) holds each frame centre, -2 if none."""
    out = []
    for k in range(n):
        c = (k + 0.5) * step_ms
        out.append(next((i for a, b, i in rows if a <= c < b), -2))
    return np.array(out)


@pytest.fixture(scope="module")
def video_features(carphone_session, tmp_path_factory):
    """A real feature stream: 4x4-grid mean colours (48 dims) of every carphone frame at 29.97 Hz."""
    from nova_infant.core.media import VideoSource

    src = VideoSource(str(carphone_session["video"]))
    frames = src.read(np.arange(src.info.n_frames)).astype(np.float32)
    n, h, w, _ = frames.shape
    grid = frames[:, : h // 4 * 4, : w // 4 * 4].reshape(n, 4, h // 4, 4, w // 4, 3).mean(axis=(2, 4))
    stream = streams.make_ssi_stream(grid.reshape(n, 48), src.info.fps, "feature;video;colourgrid",
                                     [f"c{i}" for i in range(48)])
    path = tmp_path_factory.mktemp("feat") / "infant.colourgrid.stream"
    return streams.write_ssi_stream(stream, path)


@pytest.fixture
def coded(tmp_path):
    """Two sessions, each with a coder (gold) and a model (pred) annotation on disk."""
    out = {}
    for name, gold, pred in (("S1", GOLD_S1, PRED_S1), ("S2", GOLD_S2, PRED_S2)):
        folder = tmp_path / name
        out[name] = (write(folder, gold, "coder"), write(folder, pred, "model"))
    return out


# --- frame sampling and agreement --------------------------------------------------------------------------------

def test_frame_sampling_takes_the_label_at_each_centre_and_marks_gaps_and_garbage():
    ann = make_annotation(GOLD_S2 + [(4000, 4100, -1)], "coder")
    got = sample_frames(ann, 40.0, 105)
    np.testing.assert_array_equal(got[:100], labels_at_centres(GOLD_S2, 40.0, 100))
    assert got[75] == -2 and got[79] == -2 and got[80] == 2  # gap 3000-3200: centre 3180 in gap, 3220 labelled
    assert got[101] == -1 and got[103] == -2  # garbage 4000-4100, then nothing


def test_kappa_and_f1_match_scikit_learn_on_the_same_frame_labels(coded):
    report = agreement.agreement_report([(s, *paths) for s, paths in coded.items()], step_ms=40.0)
    pooled_ref, pooled_hyp = [], []
    for session, gold, pred in (("S1", GOLD_S1, PRED_S1), ("S2", GOLD_S2, PRED_S2)):
        ref, hyp = labels_at_centres(gold, 40, 100), labels_at_centres(pred, 40, 100)
        keep = (ref >= 0) & (hyp >= 0)
        ref, hyp = ref[keep], hyp[keep]
        pooled_ref.append(ref)
        pooled_hyp.append(hyp)
        got = report["sessions"][session]
        assert got["n_frames"] == keep.sum() and got["n_masked"] == (~keep).sum() > 0
        assert got["kappa"] == pytest.approx(cohen_kappa_score(ref, hyp))
        assert got["f1_macro"] == pytest.approx(f1_score(ref, hyp, average="macro"))
    ref, hyp = np.concatenate(pooled_ref), np.concatenate(pooled_hyp)
    pooled = report["pooled"]
    assert pooled["kappa"] == pytest.approx(cohen_kappa_score(ref, hyp))
    assert pooled["f1_weighted"] == pytest.approx(f1_score(ref, hyp, average="weighted"))
    per_class = f1_score(ref, hyp, average=None, labels=[0, 1, 2, 3])
    assert [pooled["per_class"][c["name"]]["f1"] for c in SCHEME["classes"]] == pytest.approx(per_class)
    assert pooled["confusion"]["matrix"] == confusion_matrix(ref, hyp, labels=[0, 1, 2, 3]).tolist()
    assert 0 < pooled["kappa"] < 1


def test_hypothesis_classes_are_matched_by_name_not_by_id(tmp_path):
    reordered = {"name": "ICEP-R-infant", "classes": [dict(c, id=3 - c["id"]) for c in SCHEME["classes"]]}
    gold = write(tmp_path, GOLD_S1, "coder")
    same = write(tmp_path, [(a, b, 3 - i if i >= 0 else i) for a, b, i in GOLD_S1], "model", reordered)
    report = agreement.agreement_report([("S1", gold, same)])
    assert report["pooled"]["kappa"] == pytest.approx(1.0) and report["pooled"]["accuracy"] == 1.0


def test_hypothesis_class_missing_from_the_reference_scheme_is_named(tmp_path):
    other = {"name": "ICEP-R-infant", "classes": SCHEME["classes"][:3] + [{"id": 3, "name": "Islp", "color": "#FF9467BD"}]}
    gold, pred = write(tmp_path, GOLD_S1, "coder"), write(tmp_path, PRED_S1, "model", other)
    with pytest.raises(AnnotationError, match=r"hypothesis classes \['Islp'\] are not in the reference scheme"):
        agreement.agreement_report([("S1", gold, pred)])


def test_agreement_cli_writes_report_json_and_confusion_png(coded, tmp_path, capsys):
    args = ["review", "agreement", "--json", str(tmp_path / "r.json"), "--png", str(tmp_path / "cm.png")]
    for gold, pred in coded.values():
        args += ["--reference", str(gold), "--hypothesis", str(pred)]
    assert main(args) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report["sessions"]) == {"S1", "S2"} and report["pooled"]["n_sessions"] == 2
    assert "POOLED: frames=" in capsys.readouterr().out
    import matplotlib.pyplot as plt

    assert plt.imread(tmp_path / "cm.png").shape[0] > 200


@pytest.mark.nova_invalid_files  # broken on purpose
def test_missing_data_file_is_a_one_line_error(coded, capsys):
    gold, pred = coded["S1"]
    Path(str(pred) + "~").unlink()
    assert main(["review", "agreement", "--reference", str(gold), "--hypothesis", str(pred)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "infant.ICEP-R-infant.model.annotation: data file" in err


# --- timeline ----------------------------------------------------------------------------------------------------

def _has_colour(image: np.ndarray, nova_color: str, tol: int = 6) -> bool:
    rgb = np.array([int(nova_color[i:i + 2], 16) for i in (3, 5, 7)])
    pixels = (image[..., :3] * (255 if image.dtype != np.uint8 else 1)).astype(int)
    return bool((np.abs(pixels - rgb).max(axis=-1) <= tol).sum() > 50)


def test_png_timeline_stacks_feature_strip_over_tracks_in_scheme_colours(coded, video_features, tmp_path):
    import matplotlib.pyplot as plt

    tracks = timeline.build_tracks([*coded["S1"], video_features])
    assert [t.kind for t in tracks] == ["feature", "discrete", "discrete"]
    assert tracks[0].strip.shape == (32, 120) and np.isfinite(tracks[0].strip).all()
    png = timeline.render_png(tracks, tmp_path / "t.png", title="demo/S1")
    image = plt.imread(png)
    for c in SCHEME["classes"]:
        assert _has_colour(image, c["color"]), c["name"]
    assert _has_colour(image, "#FF404040")  # garbage segment
    assert not _has_colour(image, "#FF9467BD")  # a colour no track uses


def test_html_timeline_renders_in_headless_chromium(coded, video_features, tmp_path):
    import matplotlib.pyplot as plt

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian chromium is required for this test: run scripts/install-review.sh"
    html_path = tmp_path / "timeline.html"
    assert main(["review", "timeline", str(coded["S1"][0]), str(coded["S1"][1]), str(video_features),
                 "--html", str(html_path), "--title", "demo/S1"]) == 0
    page = html_path.read_text()
    assert "<svg" in page and "data:image/png;base64," in page
    assert "src=\"http" not in page and "href=\"http" not in page  # self-contained
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--screenshot={shot}",
                    "--window-size=1400,600", html_path.as_uri()], check=True, capture_output=True, timeout=120)
    image = plt.imread(shot)
    assert image.shape[:2] == (600, 1400)
    assert len(np.unique((image[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50
    for c in SCHEME["classes"]:
        assert _has_colour(image, c["color"]), c["name"]


def test_timeline_cli_takes_a_session_folder(coded, tmp_path):
    folder = coded["S2"][0].parent
    assert main(["review", "timeline", str(folder), "--png", str(tmp_path / "s2.png")]) == 0
    assert (tmp_path / "s2.png").stat().st_size > 10_000
    assert not list(tmp_path.glob(".partial-*"))


# --- ELAN and CSV ------------------------------------------------------------------------------------------------

def test_elan_export_and_import_round_trip_segments_and_garbage(coded, tmp_path):
    gold, pred = coded["S1"]
    eaf = elan.export_elan([gold, pred], tmp_path / "S1.eaf", media=tmp_path / "infant.video.mp4")
    assert elan.elan_tier(eaf, "infant.ICEP-R-infant.coder") == [
        (a, b, "GARBAGE" if i == -1 else SCHEME["classes"][i]["name"]) for a, b, i in GOLD_S1]
    scheme_json = tmp_path / "scheme.json"
    scheme_json.write_text(json.dumps(SCHEME))
    out = tmp_path / "back" / "infant.ICEP-R-infant.elan.annotation"
    assert main(["review", "import-elan", str(eaf), "--tier", "infant.ICEP-R-infant.coder", "--out", str(out),
                 "--scheme", str(scheme_json), "--role", "infant", "--annotator", "elan"]) == 0
    back = read_annotation(out)
    assert back.data[["from", "to", "id"]].tolist() == GOLD_S1
    assert back.annotation_scheme.name == "ICEP-R-infant" and back.meta_data.annotator == "elan"
    assert back.annotation_scheme.classes["3"]["color"] == "#FF2CA02C"


ELAN_WRITTEN = """<?xml version="1.0" encoding="UTF-8"?>
<ANNOTATION_DOCUMENT AUTHOR="" DATE="2024-05-02T10:00:00+01:00" FORMAT="3.0" VERSION="3.0"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:noNamespaceSchemaLocation="http://www.mpi.nl/tools/elan/EAFv3.0.xsd">
  <HEADER MEDIA_FILE="" TIME_UNITS="milliseconds"><PROPERTY NAME="lastUsedAnnotation">4</PROPERTY></HEADER>
  <TIME_ORDER><TIME_SLOT TIME_SLOT_ID="ts1" TIME_VALUE="0"/><TIME_SLOT TIME_SLOT_ID="ts2" TIME_VALUE="1320"/>
    <TIME_SLOT TIME_SLOT_ID="ts3" TIME_VALUE="2750"/><TIME_SLOT TIME_SLOT_ID="ts4" TIME_VALUE="3000"/>
    <TIME_SLOT TIME_SLOT_ID="ts5" TIME_VALUE="5210"/></TIME_ORDER>
  <TIER LINGUISTIC_TYPE_REF="default-lt" TIER_ID="Infant">
    <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a1" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts2">
      <ANNOTATION_VALUE>Ineu</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
    <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a2" TIME_SLOT_REF1="ts2" TIME_SLOT_REF2="ts3">
      <ANNOTATION_VALUE>Ipos</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
    <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a3" TIME_SLOT_REF1="ts4" TIME_SLOT_REF2="ts5">
      <ANNOTATION_VALUE>Ineu</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
  </TIER>
  <TIER LINGUISTIC_TYPE_REF="default-lt" TIER_ID="Mother">
    <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a4" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts5">
      <ANNOTATION_VALUE>Mtouch</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
  </TIER>
  <LINGUISTIC_TYPE GRAPHIC_REFERENCES="false" LINGUISTIC_TYPE_ID="default-lt" TIME_ALIGNABLE="true"/>
</ANNOTATION_DOCUMENT>
"""


def test_elan_tier_without_scheme_takes_its_values_as_classes(tmp_path):
    eaf = tmp_path / "coded.eaf"
    eaf.write_text(ELAN_WRITTEN)
    out = elan.import_elan_tier(eaf, "Infant", tmp_path / "infant.Infant.lab.annotation", role="infant")
    back = read_annotation(out)
    assert back.data[["from", "to", "id"]].tolist() == [(0, 1320, 0), (1320, 2750, 1), (3000, 5210, 0)]
    assert [back.annotation_scheme.classes[k]["name"] for k in ("0", "1")] == ["Ineu", "Ipos"]
    assert back.annotation_scheme.name == "Infant"


def test_elan_values_outside_the_given_scheme_are_listed_and_nothing_is_written(tmp_path):
    eaf = tmp_path / "coded.eaf"
    eaf.write_text(ELAN_WRITTEN)
    out = tmp_path / "infant.ICEP-R-infant.lab.annotation"
    with pytest.raises(AnnotationError, match=r"coded.eaf tier 'Mother': values \['Mtouch'\] are not classes"):
        elan.import_elan_tier(eaf, "Mother", out, scheme=SCHEME)
    assert list(tmp_path.iterdir()) == [eaf]


def test_missing_elan_tier_lists_the_tiers_there_are(tmp_path):
    eaf = tmp_path / "coded.eaf"
    eaf.write_text(ELAN_WRITTEN)
    with pytest.raises(AnnotationError, match=r"no tier 'Baby' \(tiers: \['Infant', 'Mother'\]\)"):
        elan.import_elan_tier(eaf, "Baby", tmp_path / "x.annotation")


def test_csv_export_has_one_row_per_segment_in_seconds(coded, tmp_path):
    out = tmp_path / "gold.csv"
    assert main(["review", "export-csv", str(coded["S2"][0]), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [(float(r["start_s"]), float(r["end_s"]), int(r["label_id"]), r["label"]) for r in rows] == [
        (a / 1000, b / 1000, i, SCHEME["classes"][i]["name"]) for a, b, i in GOLD_S2]
    assert float(rows[0]["confidence"]) == pytest.approx(0.9)


def test_continuous_tagger_track_is_a_line_and_exports_one_csv_row_per_sample(tmp_path):
    from discover_utils.data.annotation import ContinuousAnnotation, ContinuousAnnotationScheme

    scheme = ContinuousAnnotationScheme(name="crying", sample_rate=25, min_val=0, max_val=1)
    scores = np.linspace(0, 1, 100)
    ann = ContinuousAnnotation(scheme=scheme, data=np.array(list(zip(scores, np.ones(100))), dtype=scheme.label_dtype),
                               role="infant", annotator="tagger")
    path = write_annotation(ann, tmp_path / "infant.crying.tagger.annotation")
    track = timeline.annotation_track(read_annotation(path))
    assert track.kind == "continuous" and track.end_ms == pytest.approx(4000.0)
    np.testing.assert_allclose(track.times_ms[:2], [20.0, 60.0])
    rows = list(csv.DictReader(elan.export_csv(path, tmp_path / "c.csv").open()))
    assert len(rows) == 100 and float(rows[-1]["time_s"]) == pytest.approx(3.98)
    assert float(rows[50]["score"]) == pytest.approx(scores[50], abs=0.01)
    with pytest.raises(AnnotationError, match="only discrete and free annotations map to ELAN tiers"):
        elan.export_elan([path], tmp_path / "c.eaf")
    assert not (tmp_path / "c.eaf").exists()
