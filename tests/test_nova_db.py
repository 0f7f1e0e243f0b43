"""NOVA database mode through discover-utils' real handlers (AnnotationHandler, StreamHandler, SessionHandler,
DatasetManager with ``db:`` data descriptions).

Every test runs on mongomock (in-process; no MongoDB server can be installed here) and, when
``NOVA_TEST_MONGO_URI=mongodb://user:pass@host:port`` is set, a second time on that real server (each test uses a
fresh dataset database and drops it afterwards).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from discover_utils.data.annotation import DiscreteAnnotation, DiscreteAnnotationScheme
from discover_utils.data.handler import nova_db_handler
from discover_utils.data.provider.data_manager import DatasetManager

from nova_infant.core import nova_db
from nova_infant.core import streams
from nova_infant.core.errors import AnnotationError
from nova_infant.specs.registry import import_package_schemes

REPO = Path(__file__).resolve().parents[1]
SCHEME = {"name": "ICEP-R-infant-test", "type": "DISCRETE", "color": "#FFFFFFFF",
          "classes": [{"id": 0, "name": "Ineg", "color": "#FFD62728"}, {"id": 1, "name": "Inon", "color": "#FF1F77B4"},
                      {"id": 2, "name": "Ineu", "color": "#FF7F7F7F"}, {"id": 3, "name": "Ipos", "color": "#FF2CA02C"}]}
SESSION, ROLE, CODER, MODEL = "P01", "infant", "coder_a", "icep-bilstm"
GOLD_MS = [(0, 2000, 1), (2000, 5000, 3), (5000, 5500, -1), (5500, 10000, 0)]  # (from, to, id); -1 = garbage


def _backends():
    return ["mongomock"] + (["mongodb"] if os.environ.get("NOVA_TEST_MONGO_URI") else [])


@pytest.fixture(params=_backends())
def nova(request, tmp_path, monkeypatch):
    """A NOVA dataset with one 10 s session, role ``infant``, a coder, a model annotator and a 4-class scheme.

    Yields ``{"ctx", "dataset", "data_dir"}``.
    """
    monkeypatch.setenv("DISCOVER_USE_TLS", os.environ.get("DISCOVER_USE_TLS", "false"))
    data_dir = tmp_path / "nova-data"
    data_dir.mkdir()
    dataset = f"nova_infant_test_{uuid.uuid4().hex[:8]}"

    def populate(ctx):
        nova_db.ensure_session(ctx, dataset, SESSION, duration_ms=10000)
        nova_db.ensure_role(ctx, dataset, ROLE)
        nova_db.ensure_annotator(ctx, dataset, CODER)
        nova_db.ensure_annotator(ctx, dataset, MODEL)
        nova_db.import_discrete_scheme(ctx, dataset, SCHEME)
        return {"ctx": ctx, "dataset": dataset, "data_dir": data_dir}

    if request.param == "mongomock":
        import mongomock

        patcher = mongomock.patch(servers=(("127.0.0.1", 27017),))
        # discover-utils did `from pymongo import MongoClient`, so its module attribute is patched as well
        with patcher, mock.patch.object(nova_db_handler, "MongoClient", patcher.new):
            yield populate(nova_db.connect("127.0.0.1", 27017, "coder", "secret", data_dir=data_dir))
    else:
        ctx = nova_db.connect(os.environ["NOVA_TEST_MONGO_URI"], data_dir=data_dir)
        try:
            yield populate(ctx)
        finally:
            nova_db_handler.NovaDBHandler(**ctx).client.drop_database(dataset)


def _annotation(rows, scheme=SCHEME):
    classes = {c["id"]: {"name": c["name"], "color": c["color"]} for c in scheme["classes"]}
    data = np.array([(a, b, i, 1.0) for a, b, i in rows], dtype=DiscreteAnnotation(
        scheme=DiscreteAnnotationScheme(name=scheme["name"], classes=classes)).annotation_scheme.label_dtype)
    return DiscreteAnnotation(scheme=DiscreteAnnotationScheme(name=scheme["name"], classes=classes), data=data)


def _client(nova):
    return nova_db_handler.NovaDBHandler(**nova["ctx"]).client[nova["dataset"]]


def test_imported_scheme_is_read_back_by_annotation_handler_with_nova_colours(nova):
    handler = nova_db_handler.AnnotationHandler(**nova["ctx"])
    template = handler.load(dataset=nova["dataset"], scheme=SCHEME["name"], session=SESSION, annotator=MODEL,
                            role=ROLE, header_only=True)
    classes = template.annotation_scheme.classes
    assert [classes[i]["name"] for i in sorted(classes)] == ["Ineg", "Inon", "Ineu", "Ipos"]
    assert classes[3]["color"] == "#FF2CA02C"
    assert _client(nova)["Schemes"].count_documents({"name": SCHEME["name"]}) == 1


def test_repository_icep_scheme_file_imports_with_all_its_classes(nova):
    import json

    path = REPO / "schemes" / "icep_r_infant.json"
    nova_db.import_discrete_scheme(nova["ctx"], nova["dataset"], path)
    doc = _client(nova)["Schemes"].find_one({"name": json.loads(path.read_text())["name"]})
    assert [lab["name"] for lab in doc["labels"]] == [c["name"] for c in json.loads(path.read_text())["classes"]]
    assert [lab["id"] for lab in doc["labels"]] == list(range(len(doc["labels"])))


def test_scheme_with_a_gap_in_class_ids_is_rejected(nova):
    bad = {**SCHEME, "name": "gappy", "classes": [{"id": 0, "name": "a"}, {"id": 2, "name": "b"}]}
    with pytest.raises(AnnotationError, match=r"gappy.*ids must be 0\.\.1"):
        nova_db.import_discrete_scheme(nova["ctx"], nova["dataset"], bad)
    assert _client(nova)["Schemes"].count_documents({"name": "gappy"}) == 0


def test_coder_annotation_round_trips_through_handler_in_seconds_with_garbage_kept(nova):
    nova_db.save_annotation(nova["ctx"], _annotation(GOLD_MS), nova["dataset"], SESSION, CODER, ROLE)
    stored = _client(nova)["AnnotationData"].find_one({})["labels"]
    assert [(d["from"], d["to"], d["id"]) for d in stored] == [(a / 1000, b / 1000, i) for a, b, i in GOLD_MS]
    back = nova_db.load_annotation(nova["ctx"], nova["dataset"], SESSION, SCHEME["name"], CODER, ROLE)
    assert [tuple(int(v) for v in r) for r in back.data[["from", "to", "id"]].tolist()] == GOLD_MS
    assert back.meta_data.is_locked is False


@pytest.mark.filterwarnings("ignore:Overwriting existing annotation")
def test_prediction_overwrites_unlocked_annotation_through_dataset_manager(nova):
    nova_db.save_annotation(nova["ctx"], _annotation(GOLD_MS), nova["dataset"], SESSION, CODER, ROLE)
    description = [
        {"id": "gold", "type": "input", "src": "db:annotation:Discrete", "scheme": SCHEME["name"],
         "annotator": CODER, "role": ROLE},
        {"id": "pred", "type": "output", "src": "db:annotation:Discrete", "scheme": SCHEME["name"],
         "annotator": MODEL, "role": ROLE},
    ]
    for rows in ([(0, 10000, 2)], [(0, 4000, 3), (4000, 10000, 0)]):
        ds = DatasetManager(description, source_context={"db": nova["ctx"]}, dataset=nova["dataset"],
                            session_names=[SESSION])
        ds.load()
        assert ds.sessions[SESSION]["info"].duration == 10000  # SessionHandler reads NOVA's seconds
        manager = ds.sessions[SESSION]["manager"]
        assert manager.input_data["gold"].data["id"].tolist() == [i for _, _, i in GOLD_MS]
        template = manager.output_data_templates["pred"]
        assert template.annotation_scheme.classes[1]["name"] == "Inon"  # DB scheme, not a generic template
        template.data = _annotation(rows).data
        ds.save()
    model_id = _client(nova)["Annotators"].find_one({"name": MODEL})["_id"]
    docs = list(_client(nova)["Annotations"].find({"annotator_id": model_id}))
    assert len(docs) == 1 and docs[0]["isLocked"] is False
    back = nova_db.load_annotation(nova["ctx"], nova["dataset"], SESSION, SCHEME["name"], MODEL, ROLE)
    assert back.data[["from", "to", "id"]].tolist() == [(0, 4000, 3), (4000, 10000, 0)]


def test_locked_annotation_is_refused_with_its_name_and_left_unchanged(nova):
    nova_db.save_annotation(nova["ctx"], _annotation(GOLD_MS), nova["dataset"], SESSION, CODER, ROLE)
    nova_db.set_locked(nova["ctx"], nova["dataset"], SESSION, SCHEME["name"], CODER, ROLE)
    with pytest.raises(AnnotationError, match=rf"{SESSION} scheme={SCHEME['name']} annotator={CODER} "
                                              rf"role={ROLE}: is locked"):
        nova_db.save_annotation(nova["ctx"], _annotation([(0, 10000, 2)]), nova["dataset"], SESSION, CODER, ROLE)
    back = nova_db.load_annotation(nova["ctx"], nova["dataset"], SESSION, SCHEME["name"], CODER, ROLE)
    assert back.data["id"].tolist() == [i for _, _, i in GOLD_MS] and back.meta_data.is_locked is True


def test_label_outside_the_database_scheme_is_refused(nova):
    with pytest.raises(AnnotationError, match=r"label ids \[7\] are not classes"):
        nova_db.save_annotation(nova["ctx"], _annotation([(0, 1000, 7)]), nova["dataset"], SESSION, CODER, ROLE)
    assert _client(nova)["Annotations"].count_documents({}) == 0


def test_missing_annotator_is_named_instead_of_a_type_error(nova):
    with pytest.raises(nova_db.NovaDatabaseError, match="no annotator 'nobody'"):
        nova_db.save_annotation(nova["ctx"], _annotation(GOLD_MS), nova["dataset"], SESSION, "nobody", ROLE)


def test_feature_stream_is_registered_and_loads_back_through_dataset_manager(nova):
    data = np.random.default_rng(3).standard_normal((250, 8)).astype(np.float32)
    stream = streams.make_ssi_stream(data, 25.0, "feature;video;dinov2", [f"pc{i}" for i in range(8)])
    path = nova_db.save_stream(nova["ctx"], stream, nova["dataset"], SESSION, ROLE, "dinov2")
    assert path == nova["data_dir"] / nova["dataset"] / SESSION / "infant.dinov2.stream" and path.is_file()
    doc = _client(nova)["Streams"].find_one({"name": "dinov2"})
    assert doc["type"] == "feature;video;dinov2" and doc["fileExt"] == "stream" and doc["sr"] == pytest.approx(25.0)
    assert [d["name"] for d in doc["dimlabels"]] == [f"pc{i}" for i in range(8)]
    ds = DatasetManager([{"id": "feat", "type": "input", "src": "db:stream:SSIStream:dinov2", "name": "dinov2",
                          "role": ROLE}], source_context={"db": nova["ctx"]}, dataset=nova["dataset"],
                        session_names=[SESSION])
    ds.load()
    loaded = ds.sessions[SESSION]["manager"].input_data["feat"]
    np.testing.assert_array_equal(loaded.data, data)
    assert loaded.meta_data.sample_rate == pytest.approx(25.0)


def test_unreachable_server_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("DISCOVER_USE_TLS", "false")
    with pytest.raises(nova_db.NovaDatabaseError, match=r"mongodb://127\.0\.0\.1:1: cannot connect") as err:
        nova_db.connect("mongodb://u:p@127.0.0.1:1")
    assert "\n" not in str(err.value)


def _uri(ctx) -> str:
    auth = f"{ctx['db_user']}:{ctx['db_password']}@" if ctx.get("db_user") else ""
    return f"mongodb://{auth}{ctx['db_host']}:{ctx['db_port']}"


def test_import_schemes_creates_every_scheme_nova_must_preselect(nova, capsys):
    """NOVA uses an output's default scheme only if it exists (else the first of its type): after `nova-infant
    import-schemes` every output annotation of every trainer finds its scheme, continuous ones included."""
    from nova_infant.cli import main
    from nova_infant.discover.registry import trainer_specs
    from nova_infant.icep.bundle import predictor_spec
    from nova_infant.icep.schemes import label_map
    from nova_infant.specs.icep import predictor_options

    assert main(["import-schemes", "--db", _uri(nova["ctx"]), "--dataset", nova["dataset"]]) == 0
    assert "valence" in capsys.readouterr().out
    schemes = {d["name"]: d for d in _client(nova)["Schemes"].find({})}
    specs = list(trainer_specs().values())
    features = {"step_ms": 40.0, "streams": [{"name": "infant.dinov2", "media_type": "feature;video;dinov2"}]}
    specs += [predictor_spec(features, label_map(ls, role), "m", "m", predictor_options()) for ls in ("merged", "full")
              for role in ("infant", "caregiver")]
    outputs = [io for spec in specs for io in spec.io if io.type == "output" and io.data.startswith("annotation")]
    assert len(outputs) > 30
    for io in outputs:
        doc = schemes.get(io.default_value)
        assert doc is not None, f"output {io.id}: no scheme {io.default_value!r}"
        assert doc["type"] == io.data.split(":")[1].upper() and doc["isValid"] is True
    valence = schemes["valence"]
    assert isinstance(valence["sr"], float) and valence["sr"] == 25.0 and (valence["min"], valence["max"]) == (-1.0, 1.0)
    assert valence["min_color"].startswith("#") and valence["max_color"].startswith("#")
    # discover-utils reads the continuous scheme back (what DISCOVER resamples to) and saves into it
    handler = nova_db_handler.AnnotationHandler(**nova["ctx"])
    template = handler.load(dataset=nova["dataset"], scheme="valence", session=SESSION, annotator=MODEL, role=ROLE,
                            header_only=True)
    assert template.annotation_scheme.sample_rate == 25.0 and template.annotation_scheme.min_val == -1.0
    from nova_infant.taggers.outputs import continuous_annotation

    nova_db.save_annotation(nova["ctx"], continuous_annotation(np.linspace(-1, 1, 250), np.ones(250), 25.0, "valence",
                                                               -1, 1), nova["dataset"], SESSION, MODEL, ROLE)
    back = nova_db.load_annotation(nova["ctx"], nova["dataset"], SESSION, "valence", MODEL, ROLE)
    assert len(back.data) == 250 and back.data["score"][-1] == pytest.approx(1.0)
    assert main(["import-schemes", "--db", _uri(nova["ctx"]), "--dataset", nova["dataset"]]) == 0  # idempotent
    assert _client(nova)["Schemes"].count_documents({}) == len(schemes)


def test_continuous_scheme_document_has_the_fields_nova_reads():
    import json

    doc = nova_db.scheme_document(json.loads((REPO / "schemes" / "emotion_valence.json").read_text()))
    assert doc["type"] == "CONTINUOUS" and isinstance(doc["sr"], float) and doc["sr"] == 25.0
    assert (doc["min"], doc["max"]) == (-1.0, 1.0) and {"min_color", "max_color", "attributes", "examples"} <= set(doc)
    assert "labels" not in doc and doc["isValid"] is True


def test_continuous_scheme_needs_a_rate_and_a_range(nova):
    with pytest.raises(AnnotationError, match=r"track.*needs sr > 0 and min < max"):
        nova_db.import_scheme(nova["ctx"], nova["dataset"], {"name": "track", "type": "CONTINUOUS", "sr": 25,
                                                             "min": 1, "max": 0})
    with pytest.raises(AnnotationError, match="FREE, expected DISCRETE or CONTINUOUS"):
        nova_db.scheme_document({"name": "x", "type": "FREE"})


def test_module_names_a_missing_output_scheme_in_database_mode(nova):
    """NOVA fills an output with the first scheme of its type when ours is missing: the module refuses to write
    valence into it and says to run import-schemes."""
    from nova_infant.discover.common import SessionIO

    nova_db.import_scheme(nova["ctx"], nova["dataset"], {"name": "arousal", "type": "CONTINUOUS", "sr": 25.0,
                                                         "min": 0, "max": 1})
    for scheme, fails in (("arousal", True), ("valence", False)):
        if not fails:
            import_package_schemes(nova["ctx"], nova["dataset"])
        ds = DatasetManager([{"id": "valence", "type": "output", "src": "db:annotation:Continuous", "scheme": scheme,
                              "annotator": MODEL, "role": ROLE, "active": True}],
                            source_context={"db": nova["ctx"]}, dataset=nova["dataset"], session_names=[SESSION])
        ds.load()
        session = SessionIO.from_provider(ds)
        if fails:
            with pytest.raises(nova_db.NovaDatabaseError, match=r"output 'valence' needs the continuous scheme "
                                                                r"'valence'.*got 'arousal'.*nova-infant import-schemes"):
                session.check_scheme("valence", "valence", "CONTINUOUS")
        else:
            session.check_scheme("valence", "valence", "CONTINUOUS")


def test_taggers_refuse_to_write_into_the_scheme_nova_fell_back_to(nova):
    """Without our schemes NOVA offers the first discrete scheme (here the ICEP-R one) for an audio-event track and
    the first continuous one for valence: the adapters stop before writing and name the command that fixes it."""

    import numpy as np

    from nova_infant.discover.common import SessionIO
    from nova_infant.specs.ports import ContinuousData, DiscreteData, Result
    from nova_infant.discover.processor import DiscoverSession, processor_class

    nova_db.import_scheme(nova["ctx"], nova["dataset"], {"name": "arousal", "type": "CONTINUOUS", "sr": 25.0,
                                                         "min": 0, "max": 1})
    empty = np.zeros(0, dtype=[("from", "<f8"), ("to", "<f8"), ("id", "<i4"), ("conf", "<f4")])
    for module, io_id, kind, fallback, expected, data in (
            ("audio_events", "baby_crying", "Discrete", SCHEME["name"], "audio_event_baby_crying",
             DiscreteData(empty, ["baby_crying"], "audio_event_baby_crying")),
            ("emotion_tagger", "valence", "Continuous", "arousal", "valence",
             ContinuousData(np.zeros(1, np.float32), np.ones(1, np.float32), 25.0, "valence", -1, 1))):
        ds = DatasetManager([{"id": io_id, "type": "output", "src": f"db:annotation:{kind}", "scheme": fallback,
                              "annotator": MODEL, "role": ROLE, "active": True}],
                            source_context={"db": nova["ctx"]}, dataset=nova["dataset"], session_names=[SESSION])
        ds.load()
        processor = processor_class(module)(model_io=[], opts={}, trainer=None)
        processor.session = DiscoverSession(SessionIO.from_provider(ds))
        with pytest.raises(nova_db.NovaDatabaseError, match=rf"'{expected}'.*got '{fallback}'.*import-schemes"):
            processor.to_output(Result(annotations={io_id: data}))


def _uri(ctx, with_password=True) -> str:
    from urllib.parse import quote

    auth = ""
    if ctx.get("db_user"):
        auth = quote(ctx["db_user"], safe="")
        auth += (":" + quote(ctx["db_password"] or "", safe="") if with_password else "") + "@"
    return f"mongodb://{auth}{ctx['db_host']}:{ctx['db_port']}"


def test_sessions_are_listed_from_the_database_by_pattern(nova):
    for name in ("P02", "Q01", "P03_old"):
        nova_db.ensure_session(nova["ctx"], nova["dataset"], name)
    _client(nova)["Sessions"].update_one({"name": "P03_old"}, {"$set": {"isValid": False}})  # hidden in NOVA
    assert nova_db.list_sessions(nova["ctx"], nova["dataset"]) == ["P01", "P02", "Q01"]
    assert nova_db.list_sessions(nova["ctx"], nova["dataset"], "P0?") == ["P01", "P02"]
    with pytest.raises(nova_db.NovaDatabaseError, match=r"/%s: no session matches 'X\*' \(3 sessions" % nova["dataset"]):
        nova_db.list_sessions(nova["ctx"], nova["dataset"], "X*")
    with pytest.raises(nova_db.NovaDatabaseError, match="no_such_dataset_1: no session in this NOVA database"):
        nova_db.list_sessions(nova["ctx"], "no_such_dataset_1")


def test_batch_runs_the_database_sessions_in_file_mode(nova, carphone_session, tiny_w2v_bert, capsys, monkeypatch):
    """``nova-infant batch --db ... --dataset ... --session-pattern``: the sessions come from NOVA's database, their
    media and outputs are files in NOVA's data folder; a listed session without media fails alone."""
    import shutil

    from nova_infant.core import batch, dataset_sessions
    from nova_infant.cli import main

    data_dir, dataset = nova["data_dir"], nova["dataset"]
    for name in ("P02", "P03", "Q01"):
        nova_db.ensure_session(nova["ctx"], dataset, name)
    for name in ("P01", "P02", "Q01"):  # P03 is in the database, its media are not in the data folder
        shutil.copytree(carphone_session["dir"], data_dir / dataset / name, dirs_exist_ok=True)
    ctx = nova["ctx"]
    uri = _uri(ctx, with_password=False)  # the password from the environment, not the command line
    if ctx.get("db_password"):
        monkeypatch.setenv("NOVA_DB_PASSWORD", ctx["db_password"])
    code = main(["batch", "w2v_bert", "--root", str(data_dir), "--dataset", dataset, "--db", uri,
                 "--session-pattern", "P*", "--role", "session", "--option", f"model={tiny_w2v_bert}",
                 "--option", "device=cpu", "--retries", "0"])
    out = capsys.readouterr().out
    assert code == 1 and out.splitlines()[-1] == "2 done, 0 skipped, 1 failed", out
    assert "P03" in out and "session.audio.wav: input file missing" in out and "Q01" not in out
    for name in ("P01", "P02"):
        assert load_stream_rows(data_dir / dataset / name / "session.w2vbert.stream") == 100
    assert not (data_dir / dataset / "Q01" / "session.w2vbert.stream").exists()
    with pytest.raises(batch.BatchError, match="no session matches 'Z\\*'"):
        dataset_sessions.sessions_in_db(_uri(ctx), dataset, "Z*")
    assert main(["batch", "w2v_bert", "--root", str(data_dir), "--dataset", dataset, "--session-pattern", "P*"]) == 2
    assert "--session-pattern: needs --db" in capsys.readouterr().err


def load_stream_rows(path) -> int:
    return int(streams.load_ssi_stream(path).data.shape[0])


def test_batch_db_password_comes_from_the_environment(monkeypatch):
    from nova_infant.cli.batch import _db_uri

    monkeypatch.setenv("NOVA_DB_PASSWORD", "s@cret:1")
    assert _db_uri("mongodb://coder@nova-db:27017") == "mongodb://coder:s%40cret%3A1@nova-db:27017"
    assert nova_db.parse_mongo_uri(_db_uri("mongodb://coder@nova-db"))["db_password"] == "s@cret:1"
    assert _db_uri("mongodb://coder:given@nova-db") == "mongodb://coder:given@nova-db"  # a given password wins
    monkeypatch.delenv("NOVA_DB_PASSWORD")
    assert _db_uri("mongodb://coder@nova-db") == "mongodb://coder@nova-db"


def test_a_coders_database_annotation_is_never_replaced_by_a_prediction(nova):
    """Write policy (issue #21), database mode: a document without our ``generator`` field is a coder's; a job
    that reads an annotator's annotation never saves a prediction under that name."""
    from nova_infant.core import write_policy
    from nova_infant.core.errors import PathError

    nova_db.save_annotation(nova["ctx"], _annotation(GOLD_MS), nova["dataset"], SESSION, CODER, ROLE)
    doc = _client(nova)["Annotations"].find_one({})
    assert doc["generator"] == "nova-infant"  # ours: a re-run replaces it
    _client(nova)["Annotations"].update_one({"_id": doc["_id"]}, {"$unset": {"generator": ""}})  # as NOVA saves
    with pytest.raises(PathError, match=rf"annotator={CODER} role={ROLE}: exists and was not written by nova-infant"):
        nova_db.save_annotation(nova["ctx"], _annotation([(0, 10000, 2)]), nova["dataset"], SESSION, CODER, ROLE)
    back = nova_db.load_annotation(nova["ctx"], nova["dataset"], SESSION, SCHEME["name"], CODER, ROLE)
    assert [tuple(int(v) for v in r) for r in back.data[["from", "to", "id"]].tolist()] == GOLD_MS
    with write_policy.job("test"):
        nova_db.load_annotation(nova["ctx"], nova["dataset"], SESSION, SCHEME["name"], CODER, ROLE)
        with pytest.raises(PathError, match=rf"annotator '{CODER}' is an annotator this job reads"):
            nova_db.save_annotation(nova["ctx"], _annotation([(0, 10000, 2)]), nova["dataset"], SESSION, CODER,
                                    ROLE, scheme=SCHEME["name"])
        nova_db.save_annotation(nova["ctx"], _annotation([(0, 10000, 2)]), nova["dataset"], SESSION, MODEL, ROLE)
    assert _client(nova)["Annotations"].count_documents({}) == 2
