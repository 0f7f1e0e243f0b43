"""ICEP-R schemes and dataset building: label sampling at frame centres, masking, alignment by time, bad input."""

import re

import numpy as np
import pytest

from nova_infant.core.errors import AlignmentError, AnnotationError, StreamError
from nova_infant.icep import dataset, schemes
from nova_infant.icep.synthetic import write_session
from nova_infant.icep.training import SessionTooShortError, TrainConfig, fit
from nova_infant.core.streams import make_ssi_stream, write_ssi_stream

INFANT = schemes.full_scheme("infant")


def _segments(rows):
    from discover_utils.utils.type_definitions import LabelDType

    out = np.zeros(len(rows), dtype=LabelDType.DISCRETE.value)
    for i, (a, b, c) in enumerate(rows):
        out[i] = (a, b, c, 1.0)
    return out


def _write_anno(folder, rows, scheme=INFANT, name="infant.ICEP-R-infant.gold.annotation"):
    return schemes.write_discrete_annotation(folder / name, scheme, _segments(rows), "infant", "gold")


def _write_stream(path, array, rate):
    write_ssi_stream(make_ssi_stream(array, rate, "feature;video;test", [f"f{i}" for i in range(array.shape[1])]), path)


def test_merged_label_sets_follow_the_paper():
    infant = schemes.label_map("merged", "infant")
    assert infant.target.names == ["Ineg", "Inon", "Ineu", "Ipos"]
    ids = infant.lookup(INFANT.names)
    assert ids[INFANT.names.index("Ipro")] == ids[INFANT.names.index("Iwit")] == 0
    assert ids[INFANT.names.index("Iusc")] == ids[INFANT.names.index("Islp")] == -1
    care = schemes.label_map("merged", "caregiver")
    full = schemes.full_scheme("caregiver").names
    cids = care.lookup(full)
    assert care.target.names == ["Cneg", "Cneu", "Cpos"]
    assert {cids[full.index(n)] for n in ("Cwit", "Cint", "Chos")} == {0}
    assert cids[full.index("Cnon")] == -1


def test_labels_are_sampled_at_frame_centres_without_drift(tmp_path):
    # boundaries off the 40 ms grid: the reference code adds a chunk per such segment and drifts
    rows, t, rng = [], 0, np.random.default_rng(3)
    while t < 60000:
        d = int(rng.integers(300, 3000))
        rows.append((t, t + d, int(rng.choice([3, 4, 5]))))
        t += d
    _write_anno(tmp_path, rows)
    segments, names = dataset.read_annotation(tmp_path / "infant.ICEP-R-infant.gold.annotation")
    lmap = schemes.label_map("full", "infant")
    labels = dataset.sample_labels(segments, 1500, 40.0, lmap.lookup(names))
    for k in (0, 1, 377, 1499):
        centre = k * 40 + 20
        source = next(c for a, b, c in rows if a <= centre < b)
        assert labels[k] == lmap.target.names.index(INFANT.names[source])
    # the last frame still matches: no cumulative drift
    assert (labels >= 0).all()


def test_gaps_garbage_and_excluded_classes_are_masked_in_place(tmp_path):
    unscorable, sleep, ipos, ipro = (INFANT.names.index(n) for n in ("Iusc", "Islp", "Ipos", "Ipro"))
    _write_anno(tmp_path, [(0, 400, ipos), (800, 1200, -1), (1200, 1600, unscorable), (1600, 2000, sleep),
                           (2000, 4000, ipro)])
    segments, names = dataset.read_annotation(tmp_path / "infant.ICEP-R-infant.gold.annotation")
    labels = dataset.sample_labels(segments, 100, 40.0, schemes.label_map("merged", "infant").lookup(names))
    assert len(labels) == 100
    np.testing.assert_array_equal(labels[:10], 3)          # Ipos
    np.testing.assert_array_equal(labels[10:50], -1)       # gap, garbage, Iusc, Islp
    np.testing.assert_array_equal(labels[50:], 0)          # Ipro -> Ineg


@pytest.mark.nova_invalid_files  # broken on purpose
def test_label_outside_the_scheme_is_an_error_naming_the_file(tmp_path):
    path = _write_anno(tmp_path, [(0, 400, 3), (400, 800, 11)])
    with pytest.raises(AnnotationError, match=r"gold\.annotation: label id 11 at 0\.40 s is outside the scheme"):
        dataset.read_annotation(path)  # the one reader refuses it (issue 21) ...
    segments = np.array([(0, 400, 3, 1.0), (400, 800, 11, 1.0)],
                        dtype=[("from", "i4"), ("to", "i4"), ("id", "i4"), ("conf", "f4")])
    names = INFANT.names
    with pytest.raises(AnnotationError, match=r"gold\.annotation: label id 11 at 0\.40 s is outside the scheme"):
        dataset.sample_labels(segments, 20, 40.0, schemes.label_map("merged", "infant").lookup(names), str(path))


def test_missing_label_annotation_is_a_clear_error(tmp_path):
    _write_stream(tmp_path / "s1" / "infant.feat.stream", np.zeros((60, 4), np.float32), 25.0)
    spec = dataset.SessionSpec(["infant.feat"], ("infant", "ICEP-R-infant", "gold"))
    with pytest.raises(AnnotationError, match=r"s1/infant\.ICEP-R-infant\.gold\.annotation: no such annotation"):
        dataset.load_session(tmp_path / "s1", spec, schemes.label_map())


def test_stream_with_nan_rows_is_an_error_naming_stream_and_row(tmp_path):
    path = tmp_path / "s1" / "infant.feat.stream"
    _write_stream(path, np.ones((60, 4), np.float32), 25.0)
    data = np.fromfile(str(path) + "~", np.float32).reshape(60, 4)
    data[42, 1] = np.nan
    data.tofile(str(path) + "~")
    # a stream from another tool: no data_check in its header (ours would flag the edited data file first)
    path.write_text(re.sub(r' data_check="[0-9a-f:]+"', "", path.read_text()))
    with pytest.raises(StreamError, match=r"infant\.feat\.stream: session s1: row 42 \(1680 ms\) holds NaN"):
        dataset.load_session(tmp_path / "s1", dataset.SessionSpec(["infant.feat"]))


def test_streams_at_different_rates_are_fused_by_time(tmp_path):
    folder = tmp_path / "s1"
    _write_stream(folder / "infant.a.stream", np.arange(100, dtype=np.float32)[:, None], 25.0)
    _write_stream(folder / "session.b.stream", np.arange(200, dtype=np.float32)[:, None], 50.0)
    s = dataset.load_session(folder, dataset.SessionSpec(["infant.a", "session.b"]))
    assert (s.n_frames, s.dim, s.step_ms) == (100, 2, 40.0)
    fused = s.features(0, 100)
    np.testing.assert_array_equal(fused[:, 0], np.arange(100))
    np.testing.assert_array_equal(fused[:, 1], 2 * np.arange(100) + 1)  # the 50 Hz row holding each frame centre


def test_streams_more_than_one_frame_apart_are_an_alignment_error(tmp_path):
    folder = tmp_path / "P011"
    _write_stream(folder / "infant.a.stream", np.zeros((100, 2), np.float32), 25.0)
    _write_stream(folder / "caregiver.a.stream", np.zeros((99, 2), np.float32), 25.0)   # one frame: fine
    _write_stream(folder / "session.b.stream", np.zeros((95, 2), np.float32), 25.0)
    assert dataset.load_session(folder, dataset.SessionSpec(["infant.a", "caregiver.a"])).n_frames == 100
    with pytest.raises(AlignmentError, match="session P011: stream session.b lasts 3800 ms"):
        dataset.load_session(folder, dataset.SessionSpec(["infant.a", "session.b"]))


def test_session_shorter_than_one_window_is_a_clear_error(tmp_path):
    x = np.random.default_rng(0).standard_normal((30, 6)).astype(np.float32)
    write_session(tmp_path, "d", "short1", {"infant.f": (x, 25.0, "feature;video;t")}, np.zeros(30, int), 40.0)
    s = dataset.load_session(tmp_path / "d" / "short1", dataset.SessionSpec(["infant.f"], ("infant", "ICEP-R-infant", "gold")),
                             schemes.label_map())
    with pytest.raises(SessionTooShortError, match="session short1: 30 frames, shorter than one window of 50"):
        fit([s], [], 4, TrainConfig(max_epochs=1, hidden=4))


def test_scheme_templates_load_in_discover_utils(tmp_path):
    from discover_utils.data.handler.file_handler import FileHandler

    paths = schemes.write_scheme_templates(tmp_path)
    assert len(paths) == 4
    anno = FileHandler().load(tmp_path / "ICEP-R-caregiver.annotation")
    names = [anno.annotation_scheme.classes[k]["name"] for k in sorted(anno.annotation_scheme.classes)]
    assert names == ["Cneg", "Cwit", "Cint", "Chos", "Cnon", "Cneu", "Cpvc", "Cpos", "Cusc"]


def test_import_schemes_writes_nova_scheme_documents():
    import mongomock

    db = mongomock.MongoClient()["ffsf"]
    written = schemes.import_schemes(db)
    assert written == ["ICEP-R-infant", "ICEP-R-infant-merged", "ICEP-R-caregiver", "ICEP-R-caregiver-merged"]
    doc = db["Schemes"].find_one({"name": "ICEP-R-infant-merged"})
    assert doc["type"] == "DISCRETE"
    assert [(l["id"], l["name"]) for l in doc["labels"]] == [(0, "Ineg"), (1, "Inon"), (2, "Ineu"), (3, "Ipos")]
    assert all(l["color"].startswith("#FF") for l in doc["labels"])
    assert schemes.import_schemes(db) == []          # existing schemes are left alone
    assert len(schemes.import_schemes(db, replace=True)) == 4
    assert db["Schemes"].count_documents({}) == 4


def test_database_mode_session_uses_the_streams_and_annotation_du_process_loaded():
    """DB mode: du-process hands loaded SSIStreams and a DiscreteAnnotation (no files); same sampling rules."""
    from types import SimpleNamespace

    from discover_utils.data.annotation import DiscreteAnnotation

    from nova_infant.discover.common import SessionIO
    from nova_infant.icep.pipeline import session_from_discover

    ipos, ipro = INFANT.names.index("Ipos"), INFANT.names.index("Ipro")
    feats = make_ssi_stream(np.arange(200, dtype=np.float32).reshape(100, 2), 25.0, "feature;video;dinov2", ["a", "b"])
    anno = DiscreteAnnotation(scheme=INFANT.discover_scheme(), data=_segments([(0, 2000, ipos), (2000, 4000, ipro)]))
    manager = SimpleNamespace(
        data_description=[{"id": "feature_0", "type": "input", "src": "db:stream:ssistream", "name": "dinov2",
                           "role": "infant"},
                          {"id": "labels", "type": "input", "src": "db:annotation", "scheme": "ICEP-R-infant",
                           "annotator": "gold", "role": "infant"}],
        input_data={"feature_0": feats, "labels": anno}, output_data_templates={})
    session = SessionIO("P011", "ffsf", manager, 4000.0, "/nova/data")
    data = session_from_discover(session, schemes.label_map(), "labels")
    assert (data.n_frames, data.dim, data.streams[0].name) == (100, 2, "infant.dinov2")
    np.testing.assert_array_equal(data.labels, [3] * 50 + [0] * 50)
    np.testing.assert_array_equal(data.features(10, 12), [[20, 21], [22, 23]])
    manager.input_data["labels"] = None
    with pytest.raises(AnnotationError, match="session P011: input labels: the label annotation is missing"):
        session_from_discover(session, schemes.label_map(), "labels")


def test_committed_nova_scheme_forms_match_the_json_source():
    """schemes/nova/ is generated (nova-infant icep write-schemes); it must not drift from schemes/*.json."""
    import json

    from discover_utils.data.handler.file_handler import FileHandler

    for scheme in schemes.all_schemes():
        anno = FileHandler().load(schemes.SCHEME_DIR / "nova" / f"{scheme.name}.annotation")
        got = [(int(k), v["name"], v["color"]) for k, v in sorted(anno.annotation_scheme.classes.items(), key=lambda kv: int(kv[0]))]
        assert got == [(c["id"], c["name"], c["color"]) for c in scheme.classes]
    docs = json.loads((schemes.SCHEME_DIR / "nova" / "Schemes.mongo.json").read_text())
    assert docs == [schemes.scheme_document(s) for s in schemes.all_schemes()]


def test_upper_case_class_names_train(tmp_path):
    upper = schemes.Scheme("ICEP-R-infant", [{**c, "name": c["name"].upper()} for c in INFANT.classes], role="infant")
    ineg, ipos, islp = (INFANT.names.index(n) for n in ("Ineg", "Ipos", "Islp"))
    folder = tmp_path / "ffsf" / "P001"
    _write_stream(folder / "infant.feat.stream", np.random.default_rng(0).standard_normal((100, 4)).astype(np.float32), 25.0)
    _write_anno(folder, [(0, 1600, ineg), (1600, 3200, ipos), (3200, 3600, islp)], scheme=upper)
    spec = dataset.SessionSpec(["infant.feat"], ("infant", "ICEP-R-infant", "gold"))
    s = dataset.load_session(folder, spec, schemes.label_map("merged", "infant"))
    np.testing.assert_array_equal(s.labels[:40], 0)        # INEG -> Ineg
    np.testing.assert_array_equal(s.labels[40:80], 3)      # IPOS -> Ipos
    assert (s.labels[80:] == -1).all()                     # ISLP excluded, then the gap
    assert s.masked == {"frames": 100, "masked": pytest.approx(0.2), "gap": pytest.approx(0.1),
                        "garbage": 0.0, "excluded": pytest.approx(0.1)}
    fitted = fit([s], [], 4, TrainConfig(model="mlp", mlp_hidden=(4,), max_epochs=1, window=20, stride=20))
    assert fitted.class_weights[0] > 0 and fitted.class_weights[3] > 0


def test_class_name_neither_mapped_nor_excluded_names_file_name_and_time(tmp_path):
    odd = schemes.Scheme("ICEP-R-infant", INFANT.classes + [{"id": 8, "name": "Icry", "color": "#FF000000"}],
                         role="infant")
    path = _write_anno(tmp_path, [(0, 1200, 3), (1200, 2000, 8)], scheme=odd)
    segments, names = dataset.read_annotation(path)
    with pytest.raises(AnnotationError, match=r"gold\.annotation: class 'Icry' at 1\.20 s is neither mapped nor "
                                              r"excluded"):
        dataset.sample_labels(segments, 50, 40.0, schemes.label_map("merged", "infant").lookup(names), str(path), names)


def test_caregiver_label_sets_state_the_cpvc_decision_and_offer_the_other():
    merged, other = schemes.label_map("merged", "caregiver"), schemes.label_map("merged-no-cpvc", "caregiver")
    full = schemes.full_scheme("caregiver").names
    assert merged.lookup(["Cpvc"])[0] == merged.target.names.index("Cneu") and "Cpvc" in merged.note
    assert other.lookup(["CPVC"])[0] == -1 and other.note == ""
    assert (other.lookup(full) > -2).all()                 # every caregiver code is mapped or excluded
    assert "Cpvc" in merged.to_json()["note"] and schemes.label_map("merged", "infant").note == ""


def _pca_session(root, name, meta, dim=6):
    x = np.random.default_rng(len(name)).standard_normal((100, dim)).astype(np.float32)
    write_session(root, "ffsf", name, {"infant.dinov2": (x, 25.0, "feature;video;dinov2", meta)},
                  np.zeros(100, int), 40.0)
    spec = dataset.SessionSpec(["infant.dinov2"], ("infant", "ICEP-R-infant", "gold"))
    return dataset.load_session(root / "ffsf" / name, spec, schemes.label_map())


def test_trainer_refuses_session_pca_streams_and_mixed_bases_in_one_line(tmp_path):
    from nova_infant.icep.pipeline import check_consistent

    dataset_basis = {"pca_mode": "dataset", "pca_basis": "aaaa1111", "pca_k": "4", "model": "facebook/dinov2-large"}
    a, b = _pca_session(tmp_path, "P001", dataset_basis), _pca_session(tmp_path, "P002", dataset_basis)
    check_consistent([a, b])                                       # one basis: fine
    c = _pca_session(tmp_path, "P003", {**dataset_basis, "pca_basis": "bbbb2222"})
    with pytest.raises(StreamError, match=r"^stream infant.dinov2: sessions P001 \(PCA basis aaaa1111\) and P003 "
                                          r"\(PCA basis bbbb2222\) .*re-extract them with one basis file") as err:
        check_consistent([a, b, c])
    assert "\n" not in str(err.value)
    d = _pca_session(tmp_path, "P004", {"pca_mode": "session", "pca_basis": "cccc3333"})
    with pytest.raises(StreamError, match=r"P004/infant.dinov2.stream: made with a per-session PCA .* re-extract "
                                          r"every session with pca=dataset") as err:
        check_consistent([a, d])
    assert "\n" not in str(err.value)
    old = _pca_session(tmp_path, "P005", {"pca": "session", "k": "4"})   # written before pca_mode existed
    with pytest.raises(StreamError, match="per-session PCA"):
        check_consistent([a, old])


def test_trainer_warns_in_one_line_when_sessions_differ_in_precision(tmp_path, caplog):
    from nova_infant.icep.pipeline import check_consistent

    meta = {"pca_mode": "dataset", "pca_basis": "aaaa1111", "pca_k": "4", "precision": "fp32"}
    a, b = _pca_session(tmp_path, "P001", meta), _pca_session(tmp_path, "P002", meta)
    old = _pca_session(tmp_path, "P003", {k: v for k, v in meta.items() if k != "precision"})  # before the key
    with caplog.at_level("WARNING", logger="nova_infant.icep"):
        check_consistent([a, b, old])
    assert not [r for r in caplog.records if "precision" in r.getMessage()]
    c = _pca_session(tmp_path, "P004", {**meta, "precision": "int8"})
    with caplog.at_level("WARNING", logger="nova_infant.icep"):
        check_consistent([a, b, c])                       # warned, not refused
    lines = [r.getMessage() for r in caplog.records if "precision" in r.getMessage()]
    assert lines == ["stream infant.dinov2: sessions were extracted in different precisions (fp32: P001, P002 "
                     "(2 sessions); int8: P004 (1 session)); re-extract them in one precision so features mean "
                     "the same in every session"]


def test_icep_train_command_refuses_mixed_bases_in_one_line(tmp_path, capsys):
    from nova_infant.cli import main

    for name, basis in (("P001", "aaaa1111"), ("P002", "bbbb2222")):
        _pca_session(tmp_path, name, {"pca_mode": "dataset", "pca_basis": basis, "pca_k": "4"})
    code = main(["icep", "train", "--root", str(tmp_path), "--dataset", "ffsf", "--streams", "infant.dinov2",
                 "--model", "mlp", "--window", "20", "--stride", "10", "--epochs", "1", "--out", str(tmp_path / "bundle")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(err) == 1 and "different PCA bases" in err[0] and "pca_basis" in err[0]
    assert not (tmp_path / "bundle").exists()


def test_predictor_refuses_a_session_extracted_with_another_basis(tmp_path):
    from nova_infant.icep.bundle import feature_spec, load_bundle, save_bundle
    from nova_infant.icep.predict import predict_session

    a = _pca_session(tmp_path, "P001", {"pca_mode": "dataset", "pca_basis": "aaaa1111", "pca_k": "4"})
    fitted = fit([a], [], 4, TrainConfig(model="mlp", mlp_hidden=(4,), max_epochs=1, window=20, stride=20))
    bundle = load_bundle(save_bundle(tmp_path / "bundle", fitted, schemes.label_map(), feature_spec(a)))
    assert bundle.features["streams"][0]["pca_basis"] == "aaaa1111"
    assert len(predict_session(bundle, a).labels) == 100
    other = _pca_session(tmp_path, "P009", {"pca_mode": "dataset", "pca_basis": "bbbb2222", "pca_k": "4"})
    with pytest.raises(StreamError, match="session P009: stream infant.dinov2 was extracted with PCA basis bbbb2222, "
                                          "model .* was trained on basis aaaa1111"):
        predict_session(bundle, other)


def test_database_mode_stream_keeps_the_pca_basis_of_its_header(tmp_path):
    """du-process's DB loader drops header <meta>; the header in NOVA's data folder still names the basis."""
    from types import SimpleNamespace

    from discover_utils.data.annotation import DiscreteAnnotation

    from nova_infant.discover.common import SessionIO
    from nova_infant.icep.pipeline import session_from_discover

    meta = {"pca_mode": "session", "pca_basis": "cccc3333"}
    feats = make_ssi_stream(np.zeros((100, 2), np.float32), 25.0, "feature;video;dinov2", ["a", "b"], custom_meta=meta)
    write_ssi_stream(feats, tmp_path / "ffsf" / "P011" / "infant.dinov2.stream")
    loaded = make_ssi_stream(np.zeros((100, 2), np.float32), 25.0, "feature;video;dinov2", ["a", "b"])  # no meta
    anno = DiscreteAnnotation(scheme=INFANT.discover_scheme(), data=_segments([(0, 4000, 4)]))
    manager = SimpleNamespace(
        data_description=[{"id": "feature_0", "type": "input", "src": "db:stream:ssistream", "name": "dinov2",
                           "role": "infant"},
                          {"id": "labels", "type": "input", "src": "db:annotation", "role": "infant"}],
        input_data={"feature_0": loaded, "labels": anno}, output_data_templates={})
    data = session_from_discover(SessionIO("P011", "ffsf", manager, 4000.0, str(tmp_path)), schemes.label_map(), "labels")
    assert data.streams[0].meta["pca_mode"] == "session" and data.streams[0].meta["pca_basis"] == "cccc3333"
