"""Contract of the module specs: every registered spec runs through du-process (the venv's ``bin/du-process``)
with its default request -- every declared input, the outputs its ``.trainer`` marks active, no option but the
stand-in weights -- on the sample session (``nova-infant sample-session``); training specs train, and the
predictor ``.trainer`` they write predicts. The outputs are checked against NOVA's rules by conftest."""

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nova_infant.specs.registry import SPECS

pytestmark = pytest.mark.slow

REPO_TRAINERS = Path(__file__).resolve().parents[1] / "trainers" / "nova_infant"
SESSIONS = ("s1", "s2")
MEDIA = {"stream:Video": "infant.video.mp4", "stream:Audio": "session.audio.wav"}
#: specs whose trainer -> predictor run through du-process lives in their own test (they need a trained model to
#: predict, made there); a newly registered spec must be covered here or listed here, else the last test fails
_AFFECT = "tests/test_affect.py::test_du_process_trains_on_carphone_then_the_written_predictor_writes_tracks_nova_loads"
_VALENCE = "tests/test_valence_e2e.py::test_du_process_trains_then_predicts_a_continuous_valence_track"
_CRY = "tests/test_cry_reason_nova.py::test_trainer_and_predictor_run_through_du_process_on_a_session_with_a_real_cry"
#: each completion spec: its own du-process case (first third coded, NOVA's default request)
_COMPLETE = ("tests/test_icep_complete.py::"
             "test_completion_keeps_the_coded_rows_and_predicts_after_the_split_in_a_tier_of_its_own[{}]")
COVERED_ELSEWHERE = {"affect_train": _AFFECT, "affect_predict": _AFFECT, "valence_train": _VALENCE,
                     "valence_predict": _VALENCE, "cry_reason_train": _CRY, "cry_reason_predict": _CRY,
                     **{name: _COMPLETE.format(name) for name in SPECS if name.startswith("icep_complete_")}}
EXTRACTORS = [name for name, spec in SPECS.items() if not spec.trains and name not in COVERED_ELSEWHERE
              and all(p.data in MEDIA for p in spec.inputs if p.declared)]
TRAINERS = [name for name, spec in SPECS.items() if spec.trains and name not in COVERED_ELSEWHERE]


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_dinov2, tiny_w2v_bert):
    from nova_infant.cli import main
    from nova_infant.discover.registry import write_all_trainers

    base = tmp_path_factory.mktemp("contract")
    root = base / "data"
    for name in SESSIONS:
        assert main(["sample-session", str(root), "--dataset", "demo", "--session", name]) == 0
    cml = base / "cml" / "nova_infant"
    shutil.copytree(REPO_TRAINERS, cml, ignore=shutil.ignore_patterns("icep_models", "icep_*-*.trainer",
                                                                      "__pycache__"))
    write_all_trainers(cml)
    return {"base": base, "root": root, "cml": cml, "options": {"dinov2_pca": {"model": tiny_dinov2},
                                                                 "w2v_bert": {"model": tiny_w2v_bert}}}


def du_process(world, trainer: str, data: list, options: dict, sessions=SESSIONS):
    """Run the venv's du-process like DISCOVER does (file mode)."""
    exe = Path(sys.executable).parent / "du-process"
    base = world["base"]
    cmd = [str(exe), "--trainer_file_path", f"nova_infant\\{trainer}", "--cml_dir", str(world["cml"].parent),
           "--cache_dir", str(base / "c"), "--tmp_dir", str(base / "t"), "--log_dir", str(base / "l"),
           "--dataset", "demo", "--sessions", json.dumps(list(sessions)), "--data", json.dumps(data),
           "--options", json.dumps(options)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=base)


def default_request(world, trainer: str, inputs: dict) -> tuple[list, dict]:
    """NOVA's default request: every declared input, every output the .trainer marks active (file names
    ``<session>/contract.<output id>.<stream|annotation>``). Returns (data, {output id: path template})."""
    from conftest import active_outputs
    from nova_rules import nova_request

    tpl = f"{world['root']}/{{dataset}}/{{session}}"
    entries, outputs = dict(inputs), {}
    for out in active_outputs(world["cml"] / trainer):
        kind = "stream" if out["data"].startswith("stream") else "annotation"
        src = "file:stream:ssistream" if kind == "stream" else f"file:annotation:{out['data'].split(':')[1].lower()}"
        outputs[out["id"]] = f"{tpl}/contract.{out['id']}.{kind}"
        entries[out["id"]] = {"src": src, "uri_template": outputs[out["id"]]}
    return nova_request(world["cml"] / trainer, entries), outputs


def _media_inputs(world, spec) -> dict:
    tpl = f"{world['root']}/{{dataset}}/{{session}}"
    return {p.id: {"src": "file:" + p.data.lower(), "uri_template": f"{tpl}/{MEDIA[p.data]}"}
            for p in spec.inputs if p.declared}


@pytest.mark.parametrize("name", EXTRACTORS)
def test_spec_runs_under_du_process_with_its_default_request(world, name):
    from nova_infant.core.annotations import read_annotation
    from nova_infant.core.streams import load_ssi_stream

    spec = SPECS[name]
    data, outputs = default_request(world, f"{name}.trainer", _media_inputs(world, spec))
    run = du_process(world, f"{name}.trainer", data, world["options"].get(name, {}))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert outputs, f"{name}: the .trainer marks no output active"
    for session in SESSIONS:
        rows = set()
        for port, template in outputs.items():
            path = Path(template.format(dataset="demo", session=session))
            assert path.is_file(), f"{name}: {path.name} not written for {session}"
            if path.suffix == ".stream":
                stream = load_ssi_stream(path)
                assert stream.data.dtype == np.float32 and np.isfinite(stream.data).all()
                rows.add(len(stream.data))
            else:
                read_annotation(path)
        assert len(rows) <= 1, f"{name}: streams of one session differ in length {rows}"


def _icep_labels(world, session: str, role: str, n_frames: int = 100) -> str:
    """A coder's ICEP-R annotation of the sample session (full scheme of ``role``): the merged scheme's first two
    codes alternating every second. Returns the file name."""
    from nova_infant.core.annotations import frames_to_segments
    from nova_infant.icep.schemes import full_scheme, label_map, write_discrete_annotation

    scheme, target = full_scheme(role), label_map("merged", role).target
    ids = np.repeat([scheme.names.index(target.names[i % 2]) for i in range(n_frames // 25)], 25)
    name = f"infant.ICEP-R-{role}.gold.annotation"
    write_discrete_annotation(world["root"] / "demo" / session / name, scheme,
                              frames_to_segments(ids, 40.0, skip_ids=(-2,)), role, "gold", session, "demo")
    return name


@pytest.mark.parametrize("name", TRAINERS)
def test_training_spec_trains_under_du_process_and_its_predictor_predicts(world, name):
    from nova_infant.core.annotations import read_annotation

    spec = SPECS[name]
    tpl = f"{world['root']}/{{dataset}}/{{session}}"
    features = {}
    for port in spec.inputs:  # the feature streams come from the extractor specs' default requests
        if port.id.startswith("feature_"):
            token = port.data.split(":")[-1]
            extractor = {"dinov2": ("dinov2_pca", "dinov2_pca"), "w2vbert": ("w2v_bert", "w2v_bert"),
                         "people": ("people", "people"), "skeleton": ("people", "pose"),  # issue 25
                         "hands": ("people", "hands")}[token]
            features[port.id] = {"src": "file:stream:ssistream",
                                 "uri_template": f"{tpl}/contract.{extractor[1]}.stream"}
            if not Path(features[port.id]["uri_template"].format(dataset="demo", session=SESSIONS[-1])).is_file():
                data, _ = default_request(world, f"{extractor[0]}.trainer", _media_inputs(world, SPECS[extractor[0]]))
                run = du_process(world, f"{extractor[0]}.trainer", data, world["options"].get(extractor[0], {}))
                assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    role = name.split("_")[2]
    for session in SESSIONS:
        label_file = _icep_labels(world, session, role)
    labels = {"src": "file:annotation:discrete", "uri_template": f"{tpl}/{label_file}"}
    from nova_rules import nova_request

    request = nova_request(world["cml"] / f"{name}.trainer", {**features, "labels": labels})
    model = f"contract-{name}"
    train = du_process(world, f"{name}.trainer", request, {"model_name": model, "model": "mlp", "hidden": 4,
                                                             "epochs": 1, "window": 20, "stride": 10})
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    predictor = world["cml"] / f"icep_{model}.trainer"
    assert predictor.is_file() and 'trained="true"' in predictor.read_text()
    data, outputs = default_request(world, predictor.name, features)
    run = du_process(world, predictor.name, data, {}, sessions=SESSIONS[:1])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    anno = read_annotation(Path(outputs["annotation"].format(dataset="demo", session=SESSIONS[0])))
    assert anno.annotation_scheme.name == f"ICEP-R-{role}-merged" and len(anno.data) >= 1
    if list(features) == ["feature_0"]:  # the generic icep_predict.trainer, pointed at the bundle by option
        data, outputs = default_request(world, "icep_predict.trainer", features)
        bundle = world["cml"] / "icep_models" / model
        run = du_process(world, "icep_predict.trainer", data, {"bundle": str(bundle)}, sessions=SESSIONS[1:])
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert len(read_annotation(Path(outputs["annotation"].format(dataset="demo", session=SESSIONS[1]))).data)


def test_every_registered_spec_is_covered_by_this_contract():
    assert set(EXTRACTORS) | set(TRAINERS) | {"icep_predict"} | set(COVERED_ELSEWHERE) == set(SPECS)
    for where in set(COVERED_ELSEWHERE.values()):
        path, name = where.split("::")
        name, _, case = name.partition("[")
        assert f"def {name}(" in (Path(__file__).resolve().parents[1] / path).read_text(), where
        if case:  # a parametrized test: the case must be one of its parameters
            test = getattr(importlib.import_module(Path(path).stem), name)
            params = [getattr(v, "values", (v,))[0] for mark in test.pytestmark if mark.name == "parametrize"
                      for v in mark.args[1]]
            assert case.rstrip("]") in params, where
    assert {"dinov2_pca", "w2v_bert", "audio_events", "emotion_tagger"} <= set(EXTRACTORS)
