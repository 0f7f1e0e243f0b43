"""Gaps NOVA shows as gaps: every continuous annotation we write spells a missing score ``NaN`` (what .NET's
``double.TryParse`` takes; numpy's ``nan`` becomes a real 0 in NOVA) with confidence 0, and never a non-finite
confidence (NOVA throws). Rule: tests/nova_rules.py ``check_annotation``; writer: nova_infant.core.continuous.
The end-to-end predictor outputs are checked in tests/test_affect.py and tests/test_valence_e2e.py (slow)."""

from __future__ import annotations

import numpy as np
import pytest

import nova_rules
from nova_infant.core.annotations import read_annotation, write_annotation
from nova_infant.taggers.outputs import continuous_annotation

SCORES = np.array([0.5, np.nan, -0.25, np.inf, 0.0], np.float32)
CONFS = np.array([1.0, 1.0, np.nan, 1.0, 0.5], np.float32)


def _data_lines(header):
    return (header.parent / (header.name + "~")).read_text().splitlines()


@pytest.mark.nova_invalid_files
def test_rule_rejects_numpy_nan_inf_and_non_finite_or_nonzero_gap_confidence(tmp_path):
    header = write_annotation(continuous_annotation(np.zeros(2), np.ones(2), 1.0, "v", -1, 1), tmp_path / "a")
    data = header.parent / (header.name + "~")
    for text, why in (("nan;0.00\n0.10;1.00\n", "TryParse fails"), ("inf;0.00\n0.10;1.00\n", "TryParse fails"),
                      ("0.10;nan\n0.10;1.00\n", "not a finite number"), ("0.10;NaN\n0.10;1.00\n", "not a finite"),
                      ("NaN;1.00\n0.10;1.00\n", "a gap has conf 0"), ("Infinity;0.00\n0.1;1\n", "infinite")):
        data.write_text(text)
        assert any(why in e for e in nova_rules.check_annotation(header)), text
    data.write_text("NaN;0.00\n-0.50;1.00\n")
    assert nova_rules.check_annotation(header) == []


def test_our_writer_spells_gaps_nan_with_conf_zero_and_finite_confidences(tmp_path):
    header = write_annotation(continuous_annotation(SCORES, CONFS, 25.0, "valence", -1, 1, "infant", "m"),
                                      tmp_path / "infant.valence.m.annotation")
    assert _data_lines(header) == ["0.50;1.00", "NaN;0.00", "-0.25;0.00", "NaN;0.00", "0.00;0.50"]
    assert nova_rules.check_annotation(header) == []
    back = read_annotation(header)  # and discover-utils reads the gaps back as NaN
    assert np.isnan(back.data["score"][[1, 3]]).all() and back.data["conf"][1] == 0


def test_du_process_file_handler_path_writes_nan_too(tmp_path):
    """du-process saves outputs with discover-utils' FileHandler (savetxt: 'nan'); importing our DISCOVER layer routes
    that through save_atomic, which writes the rows by the gap rule."""
    import nova_infant.discover.common  # noqa: F401  (installs the atomic writer, as every processor module does)
    from discover_utils.data.annotation import ContinuousAnnotation, ContinuousAnnotationScheme
    from discover_utils.data.handler.file_handler import FileHandler

    data = np.zeros(3, dtype=[("score", "<f4"), ("conf", "<f4")])
    data["score"], data["conf"] = [0.2, np.nan, 0.4], [1.0, np.nan, 1.0]
    anno = ContinuousAnnotation(scheme=ContinuousAnnotationScheme(name="valence", sample_rate=1.0, min_val=-1.0,
                                                                  max_val=1.0), data=data)
    path = tmp_path / "infant.valence.du.annotation"
    FileHandler().save(anno, path)
    assert _data_lines(path) == ["0.20;1.00", "NaN;0.00", "0.40;1.00"]
    assert nova_rules.check_annotation(path) == []


def test_valence_and_affect_specs_write_face_gaps_nova_reads_as_gaps(tmp_path):
    """The spec writer (CLI and DISCOVER alike) on the valence predictor's and the affect predictor's results with
    rows without a face: NaN score, conf 0 on disk."""
    from nova_infant.specs.ports import ContinuousData, Result
    from nova_infant.specs.sessions import FileSession
    from nova_infant.specs.writing import write_files
    from nova_infant.specs.registry import SPECS

    values = np.array([10.0, np.nan, -20.0, np.nan], np.float32)
    conf = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    for module, port, lo, hi in (("valence_predict", "valence", -100, 100), ("affect_predict", "valence", -1, 1)):
        spec = SPECS[module]
        folder = tmp_path / module
        folder.mkdir()
        result = Result(annotations={port: ContinuousData(values / hi, conf, 1.0, port, lo, hi)})
        session = FileSession({"video": folder / "infant.video.mp4"}, folder, outputs=[port], name="s1",
                              role="infant")
        paths = write_files(spec, result, session)
        assert len(paths) == 1 and nova_rules.check_annotation(paths[0]) == []
        assert [ln.split(";")[0] for ln in _data_lines(paths[0])][1::2] == ["NaN", "NaN"]
