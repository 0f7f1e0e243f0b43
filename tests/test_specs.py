"""The module spec framework (nova_infant.specs): options declared once and checked once, the .trainer, the CLI
and the DISCOVER Processor generated from one spec, and the generated files kept current."""

import json
import types
from pathlib import Path

import numpy as np
import pytest

from nova_infant.core.errors import OptionError
from nova_infant.core.annotations import read_annotation
from nova_infant.core.streams import load_ssi_stream
from nova_infant.core.trainer_files import option_string
from nova_infant.specs.module_spec import ModuleSpec
from nova_infant.specs.options import Option
from nova_infant.specs.ports import ContinuousData, DiscreteData, Port, Result, StreamData
from nova_infant.specs.sessions import FileSession
from nova_infant.specs.writing import nova_objects, write_files
from nova_infant.specs.registry import SPECS, generated_files

REPO_TRAINERS = Path(__file__).resolve().parents[1] / "trainers" / "nova_infant"


def _toy_run(session, o):
    """Rows count the grid, so a test sees the option and the input's duration arrive."""
    n = int(o["seconds"] * 1000 // o["step"])
    data = np.tile(np.arange(n, dtype=np.float32)[:, None], (1, 2)) * o["gain"]
    from discover_utils.utils.type_definitions import LabelDType

    segments = np.array([(0, 500, 0, 0.9)], dtype=LabelDType.DISCRETE.value)
    return Result(streams={"rows": StreamData(data, 1000 / o["step"], ["a", "b"], "feature;toy", {"gain": o["gain"]})},
                  annotations={"track": DiscreteData(segments, ["yes"], "toy_scheme", description="one segment"),
                               "level": ContinuousData(np.full(n, 0.5, np.float32), np.ones(n, np.float32),
                                                       1000 / o["step"], "toy_level", 0, 1)},
                  notes=[f"{n} rows"])


TOY = ModuleSpec(
    name="toy_module", create="ToyModule", category="Feature", description="toy rows for tests",
    inputs=(Port("audio", "stream:Audio", "audio", "any file"),),
    outputs=(Port("rows", "stream:SSIStream:toy", "toyrows", "row index x gain"),
             Port("track", "annotation:Discrete", "toy_scheme", "one segment"),
             Port("level", "annotation:Continuous", "toy_level", "constant 0.5")),
    options=(Option("gain", "float", 1.0, "row factor", minimum=0, max_open=True, maximum=10),
             Option("step", "int", 40, "ms", minimum=1),
             Option("seconds", "float", 2.0, "s", minimum=0, min_open=True),
             Option("mode", "choice", "fast", "how", choices=("slow", "fast")),
             Option("flag", "bool", False, "on/off"),
             Option("grid", "json", "", "a JSON list")),
    run=_toy_run)


def test_option_parse_accepts_nova_text_and_python_values_and_refuses_in_one_line():
    gain, step = TOY.option("gain"), TOY.option("step")
    assert gain.parse("0.5") == 0.5 and gain.parse(2) == 2.0 and gain.parse("None") == 1.0 and gain.parse("") == 1.0
    assert step.parse("3") == 3 and step.parse(3.0) == 3
    with pytest.raises(OptionError, match=r"^option step: expected an integer, got '3.5'$"):
        step.parse("3.5")
    with pytest.raises(OptionError, match=r"^option gain: must be < 10, got '10'$"):
        gain.parse("10")
    assert TOY.option("mode").parse("SLOW") == "slow"
    with pytest.raises(OptionError, match="^option mode: expected one of slow, fast"):
        TOY.option("mode").parse("medium")
    assert TOY.option("flag").parse("True") is True and TOY.option("flag").parse("0") is False
    assert TOY.option("grid").parse('[{"lr": 0.1}]') == [{"lr": 0.1}] and TOY.option("grid").parse("") is None
    with pytest.raises(OptionError, match="^option grid: not JSON"):
        TOY.option("grid").parse("[{")


def test_parse_options_fills_defaults_refuses_unknown_options_and_runs_the_cross_check():
    assert TOY.parse_options({"gain": "2"}) == {"gain": 2.0, "step": 40, "seconds": 2.0, "mode": "fast",
                                                "flag": False, "grid": None}
    with pytest.raises(OptionError, match=r"^module toy_module: unknown option\(s\) gian"):
        TOY.parse_options({"gian": "2"})
    checked = ModuleSpec(**{**TOY.__dict__, "check": lambda o: o if o["step"] <= 100 else
                            (_ for _ in ()).throw(OptionError("option step: too big for seconds"))})
    with pytest.raises(OptionError, match="too big"):
        checked.parse_options({"step": "200"})


def test_a_spec_refuses_a_duplicated_option_and_a_choice_default_outside_its_choices():
    with pytest.raises(ValueError, match="declared twice"):
        ModuleSpec(**{**TOY.__dict__, "options": TOY.options + (Option("gain", "int", 1, "again"),)})
    with pytest.raises(ValueError, match="not among"):
        Option("mode", "choice", "medium", "how", choices=("slow", "fast"))


def test_trainer_spec_writes_every_option_once_with_nova_types():
    spec = TOY.trainer_spec()
    assert spec.script == "toy_module.py" and spec.create == "ToyModule"
    assert [(io.type, io.id) for io in spec.io] == [("input", "audio"), ("output", "rows"), ("output", "track"),
                                                    ("output", "level")]
    assert option_string(spec.options) == ("{gain:STRING:1};{step:STRING:40};{seconds:STRING:2};"
                                           "{mode:LIST:fast,slow};{flag:BOOL:False};{grid:STRING:}")


def test_one_writer_gives_the_same_nova_objects_to_the_cli_and_writes_them(tmp_path):
    wav = tmp_path / "infant.audio.wav"
    wav.write_bytes(b"")
    session = FileSession({"audio": wav}, tmp_path / "out", role="infant")
    result = TOY.run(session, TOY.parse_options({"gain": "2", "seconds": "1"}))
    objects = nova_objects(TOY, result, session)
    assert list(objects) == ["rows", "track", "level"]
    assert objects["track"].meta_data.description == "one segment"
    paths = write_files(TOY, result, session)
    assert [p.name for p in paths] == ["infant.toyrows.stream", "infant.toy_scheme.annotation",
                                       "infant.toy_level.annotation"]
    stream = load_ssi_stream(paths[0])
    assert stream.data.shape == (25, 2) and stream.data[3, 0] == 6.0 and stream.meta_data.sample_rate == 25
    anno = read_annotation(paths[1])
    assert anno.annotation_scheme.name == "toy_scheme" and len(anno.data) == 1
    only = FileSession({"audio": wav}, tmp_path / "only", outputs=["level"], role="infant")
    assert [p.name for p in write_files(TOY, result, only)] == ["infant.toy_level.annotation"]


def test_processor_class_parses_trainer_defaults_then_request_options_once():
    from nova_infant.discover.processor import processor_class

    cls = processor_class("toy_module", TOY)
    assert cls.__name__ == "ToyModule"
    trainer = types.SimpleNamespace(model_optstr="{gain:STRING:3};{mode:LIST:slow,fast};{retired:STRING:x}")
    proc = cls([], {"step": "20", "seconds": "None"}, trainer)
    assert proc.options["gain"] == 3.0 and proc.options["mode"] == "slow" and proc.options["step"] == 20
    assert proc.options["seconds"] == 2.0


def test_processor_class_refuses_a_bad_option_in_one_line_before_any_session(capsys):
    from nova_infant.discover.processor import processor_class

    cls = processor_class("toy_module", TOY)
    with pytest.raises(SystemExit) as exit_info:
        cls([], {"gain": "-1"}, None)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "error: toy_module: option gain: must be >= 0, got '-1'"


def test_every_registered_spec_generates_a_trainer_nova_parses_and_a_cli_command():
    from nova_infant.cli import build_parser

    parser = build_parser()
    for name, spec in SPECS.items():
        spec.parse_options({})  # every default passes its own check
        assert spec.trainer_spec().options, name
        args = parser.parse_args(["run", spec.command, "--out", "x"]
                                 + [a for p in spec.inputs if not p.optional
                                    for a in ("--" + p.id.replace("_", "-"), "in")])
        assert args.spec_name == name


@pytest.mark.parametrize("name", sorted(generated_files()))
def test_committed_generated_file_equals_what_the_specs_generate(name):
    from nova_infant.core.package_data import TRAINER_DIR

    for folder in (TRAINER_DIR, REPO_TRAINERS):  # the package's CML folder and the checkout's copy of it
        committed = folder / name
        assert committed.is_file(), f"{committed} missing: run `nova-infant write-trainers`"
        assert committed.read_text(encoding="utf-8") == generated_files()[name], (
            f"{committed} is stale: run `nova-infant write-trainers`")


def test_readme_has_per_module_io_options_request_citation_and_licence():
    text = generated_files()["README.md"]
    for spec in SPECS.values():
        section = text.split(f"## {spec.name}\n", 1)[1].split("\n## ", 1)[0]
        assert "| io | id | NOVA type |" in section and "| option | type | default | range |" in section
        for opt in spec.options:
            assert opt.hidden or f"| `{opt.name}` |" in section
        body = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
        assert body["trainerFilePath"] == f"nova_infant\\{spec.name}.trainer"
        assert {d["id"] for d in body["data"]} == {p.id for p in spec.inputs + spec.outputs if p.declared}
        assert "Citation: " in section and "Licence: " in section


def test_run_command_writes_w2v_bert_outputs_in_novas_layout(tmp_path, carphone_session, tiny_w2v_bert, capsys):
    from nova_infant.cli import main

    audio = carphone_session["audio"]
    code = main(["run", "w2v-bert", "--audio", str(audio), "--out", str(tmp_path), "--model", tiny_w2v_bert,
                 "--device", "cpu", "--frame-step", "100ms"])
    assert code == 0
    out = capsys.readouterr().out
    path = Path(out.strip().splitlines()[-1])
    assert path.name == "session.w2vbert.stream"
    stream = load_ssi_stream(path)
    assert stream.meta_data.sample_rate == 10 and stream.data.dtype == np.float32
    assert main(["run", "w2v-bert", "--audio", str(audio), "--out", str(tmp_path), "--chunk-s", "2",
                 "--overlap-s", "2"]) == 2
    assert capsys.readouterr().err.strip() == "error: option overlap_s (--overlap-s): must be < chunk_s (2), got 2"


def test_run_command_trains_an_icep_module_per_session_then_predicts_with_the_bundle(tmp_path, capsys):
    """``nova-infant run icep-train-...`` takes one path per session for every input, skips a session it cannot
    read in one line, fits once; ``nova-infant run icep-predict`` writes the annotation in NOVA's layout."""
    from nova_infant.cli import main
    from nova_infant.icep.synthetic import context_task, write_session

    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for name in ("A1", "A2", "A3"):
        x, y = context_task(120, 6, rng, cue=0.5)
        write_session(root, "ds", name, {"infant.feat": (x, 25.0, "feature;video;dinov2")}, y, 40.0)
    folders = [root / "ds" / n for n in ("A1", "A2", "A3")]
    (folders[2] / "infant.ICEP-R-infant.gold.annotation").unlink()  # not coded
    code = main(["run", "icep-train-infant-dinov2", "--feature-0", *[str(f / "infant.feat.stream") for f in folders],
                 "--labels", *[str(f / "infant.ICEP-R-infant.gold.annotation") for f in folders],
                 "--out", str(tmp_path / "models"), "--model", "mlp", "--hidden", "4", "--epochs", "1",
                 "--window", "20", "--stride", "10", "--model-name", "m1"])
    captured = capsys.readouterr()
    assert code == 1 and "error: session A3: skipped: " in captured.err and captured.err.count("\n") == 1
    bundle = tmp_path / "models" / "icep_models" / "m1"
    assert [Path(p) for p in captured.out.splitlines()[-2:]] == [bundle, bundle / "predictor.trainer"]
    assert (bundle / "config.json").is_file()
    assert main(["run", "icep-predict", "--feature-0", str(folders[2] / "infant.feat.stream"), "--bundle",
                 str(bundle), "--out", str(tmp_path / "pred"), "--role", "infant"]) == 0
    anno = read_annotation(tmp_path / "pred" / "infant.ICEP-R-infant-merged.annotation")
    assert anno.annotation_scheme.name == "ICEP-R-infant-merged" and len(anno.data) >= 1
    assert sorted(p.name for p in (tmp_path / "pred").iterdir() if not p.name.endswith("~")) == [
        "infant.ICEP-R-infant-merged.annotation"]


def test_audio_event_writer_carries_unavailable_classes_and_why_for_cli_and_discover_alike(tmp_path):
    """One writer: the score stream names the classes the model cannot produce (the CLI alone wrote that before)
    and their empty tracks say why (DISCOVER alone did); the CLI then leaves those tracks out."""
    from types import SimpleNamespace

    from discover_utils.utils.type_definitions import LabelDType

    from nova_infant.core.grid import frame_grid
    from nova_infant.core.streams import open_ssi_stream
    from nova_infant.specs.audio_events import SPEC, result_of

    empty = np.zeros(0, dtype=LabelDType.DISCRETE.value)
    music = np.array([(0.0, 800.0, 0, 0.9)], dtype=LabelDType.DISCRETE.value)
    r = SimpleNamespace(classes=["music", "male_speech"], available=[True, False], grid=frame_grid(1000, 40),
                        scores=np.zeros((25, 2), np.float32), events=[music, empty], backend="yamnet",
                        mode="zero-shot", meta={"thresholds": {"music": 0.5}, "holds": {"music": [0.4, 480.0]},
                                                "notes": {"male_speech": "unavailable: no AudioSet label"}})
    result = result_of(r)
    session = FileSession({}, tmp_path, role="session")
    objects = nova_objects(SPEC, result, session)
    assert objects["male_speech"].meta_data.description == "unavailable: no AudioSet label"
    paths = write_files(SPEC, result, session)
    meta = open_ssi_stream(tmp_path / "session.audio_events.stream").meta
    assert meta["unavailable"] == "male_speech" and meta["thresholds"] == "music=0.5"
    assert meta["holds"] == "music=0.4/480ms"
    assert {p.name for p in paths} == {"session.audio_events.stream", "session.audio_event_music.annotation",
                                       "session.audio_event_male_speech.annotation"}


def test_session_grid_follows_the_duration_priority(tmp_path, carphone_session):
    """option > reference input > NOVA session > own input; 29.97 fps video (4004 ms) as reference of 4000 ms of
    audio gives the video's 100 rows of 40 ms."""
    audio, video = carphone_session["audio"], carphone_session["video"]
    with_reference = FileSession({"audio": audio, "reference": video}, tmp_path)
    assert with_reference.grid("40ms", "audio").n_frames == 100
    assert with_reference.grid(40, "audio", duration_ms=2000).n_frames == 50
    alone = FileSession({"audio": audio}, tmp_path, duration_ms=1000)
    assert alone.grid(40, "audio").n_frames == 25  # the NOVA session's duration
    assert FileSession({"audio": audio}, tmp_path).grid(40, 3999.0).n_frames == 99
