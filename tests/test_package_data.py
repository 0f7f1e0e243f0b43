"""Package data (schemes, the DISCOVER CML folder) lives inside the package; the checkout's top-level copies equal
it; the one scheme parser reads every form of a scheme; the tagger schemes are exactly what the taggers write."""

import json

import numpy as np
import pytest

from nova_infant.core.errors import PathError

from nova_infant.core import package_data
from nova_infant.core.errors import AnnotationError
from nova_infant.core.schemes import (annotation_scheme, class_names, load_scheme, package_scheme_files,
                                      parse_scheme)
from nova_infant.taggers.audio_classes import CLASSES as EVENT_CLASSES
from nova_infant.taggers.emotion import INFANT_CLASSES as EMOTION_CLASSES, OUTCOMES
from nova_infant.taggers.outputs import continuous_annotation, discrete_annotation, load_annotation, write_annotation

REPO = package_data.DATA_DIR.parents[1]


def test_package_data_is_inside_the_package_and_the_checkout_copies_equal_it():
    package = package_data.DATA_DIR.parent
    for folder in package_data.REPO_COPIES:
        assert folder.is_dir() and package in folder.parents
    assert len(package_scheme_files()) >= 13
    assert (package_data.TRAINER_DIR / "dinov2_pca.trainer").is_file()
    assert package_data.checkout_root() == REPO
    # trainers come from the specs: `nova-infant write-trainers` writes the package folder, then both copies;
    # schemes are edited in modules/data/schemes/, then `nova-infant write-package-copies`
    assert package_data.repo_copy_differences(REPO) == [], "run `nova-infant write-trainers`"


def test_repo_copy_differences_names_each_stale_missing_or_extra_file(tmp_path):
    written = package_data.write_repo_copies(tmp_path)
    assert package_data.repo_copy_differences(tmp_path) == [] and len(written) >= 30
    (tmp_path / "schemes" / "emotion.json").write_text("{}")
    (tmp_path / "schemes" / "nova" / "ICEP-R-infant.annotation~").unlink()
    (tmp_path / "schemes" / "mine.json").write_text("{}")
    (tmp_path / "trainers" / "nova_infant" / "icep_models").mkdir()  # a user's trained models: not a copy
    (tmp_path / "trainers" / "nova_infant" / "icep_models" / "x.json").write_text("{}")
    assert package_data.repo_copy_differences(tmp_path) == [
        f"schemes/nova/ICEP-R-infant.annotation~: missing (in {package_data.SCHEME_DIR})",
        f"schemes/mine.json: not in the package data ({package_data.SCHEME_DIR})",
        "schemes/emotion.json: differs"]
    with pytest.raises(PathError, match="emotion.json: exists and was not written by nova-infant"):
        package_data.write_repo_copies(tmp_path)  # an edited copy is a person's file now: never replaced
    assert (tmp_path / "schemes" / "emotion.json").read_text() == "{}"
    (tmp_path / "schemes" / "emotion.json").unlink()  # the person removes it: then it is written again
    package_data.write_repo_copies(tmp_path)
    assert (tmp_path / "schemes" / "mine.json").is_file()  # never deletes what it did not write
    assert len(package_data.repo_copy_differences(tmp_path)) == 1


def _written_scheme(anno, tmp_path, name):
    path = write_annotation(anno, tmp_path / f"{name}.annotation")
    return annotation_scheme(load_annotation(path), str(path)), load_annotation(path).meta_data.role


@pytest.mark.parametrize("event", EVENT_CLASSES)
def test_audio_event_scheme_json_is_what_the_tagger_writes(event, tmp_path):
    # the audio_events spec's one writer (specs.writing.nova_objects, CLI and DISCOVER) calls
    # discrete_annotation(seg, [name], scheme)
    seg = np.array([(0, 400, 0, 0.9)], dtype=[("from", "<i4"), ("to", "<i4"), ("id", "<i4"), ("conf", "<f4")])
    written, role = _written_scheme(discrete_annotation(seg, [event], f"audio_event_{event}", role="session"),
                                    tmp_path, event)
    doc = json.loads((package_data.SCHEME_DIR / f"audio_events_{event}.json").read_text())
    assert (written.name, role) == (doc["name"], doc["role"])
    assert [(c["id"], c["name"], c["color"]) for c in written.classes] == \
        [(c["id"], c["name"], c["color"]) for c in doc["classes"]]


def test_emotion_and_valence_scheme_json_are_what_the_tagger_writes(tmp_path):
    empty = np.zeros(0, dtype=[("from", "<i4"), ("to", "<i4"), ("id", "<i4"), ("conf", "<f4")])
    written, role = _written_scheme(discrete_annotation(empty, EMOTION_CLASSES + OUTCOMES, "emotion", "infant"),
                                    tmp_path, "emotion")
    doc = json.loads((package_data.SCHEME_DIR / "emotion.json").read_text())
    assert (written.name, role) == (doc["name"], doc["role"])
    assert [(c["id"], c["name"], c["color"]) for c in written.classes] == \
        [(c["id"], c["name"], c["color"]) for c in doc["classes"]]
    valence, role = _written_scheme(continuous_annotation(np.zeros(5), np.ones(5), 25.0, "valence", -1, 1, "infant"),
                                    tmp_path, "valence")
    doc = json.loads((package_data.SCHEME_DIR / "emotion_valence.json").read_text())
    assert (valence.name, valence.type, valence.sr, valence.min, valence.max, role) == \
        (doc["name"], doc["type"], doc["sr"], doc["min"], doc["max"], doc["role"])


def test_a_trained_heads_own_classes_keep_the_package_colours_they_share(tmp_path):
    written, _ = _written_scheme(discrete_annotation(np.zeros(0, dtype=[("from", "<i4"), ("to", "<i4"), ("id", "<i4"),
                                                                        ("conf", "<f4")]),
                                                     ["crying", "fussing"], "emotion"), tmp_path, "head")
    assert [c["name"] for c in written.classes] == ["crying", "fussing"]
    assert written.classes[0]["color"] == load_scheme("emotion").classes[2]["color"]


def test_one_parser_reads_every_package_scheme_by_name_stem_or_path():
    for path in package_scheme_files():
        by_path = load_scheme(path)
        assert load_scheme(path.stem) == by_path == load_scheme(by_path.name)
        if by_path.type == "DISCRETE":
            assert [c["id"] for c in by_path.classes] == list(range(len(by_path.classes)))
    assert load_scheme("ICEP-R-infant").names[:3] == ["Ineg", "Ipro", "Iwit"]
    with pytest.raises(AnnotationError, match="scheme 'nope': neither a scheme of the package"):
        load_scheme("nope")


@pytest.mark.parametrize("doc, message", [
    ({"classes": [{"name": "a"}]}, "a scheme needs a name"),
    ({"name": "x", "type": "FREE"}, "scheme 'x' is FREE, expected DISCRETE or CONTINUOUS"),
    ({"name": "x", "classes": []}, "needs a non-empty list of classes"),
    ({"name": "x", "classes": [{"id": 1, "name": "a"}]}, r"class ids must be 0..0 in order, got \[1\]"),
    ({"name": "x", "type": "CONTINUOUS", "sr": 25, "min": 1, "max": 1}, "needs sr > 0 and min < max"),
    ({"name": "x", "type": "CONTINUOUS", "sr": "fast", "min": 0, "max": 1}, "needs numbers sr, min and max"),
])
def test_parse_scheme_rejects_a_broken_description_with_one_line(doc, message):
    with pytest.raises(AnnotationError, match=f"^lab.json: .*{message}"):
        parse_scheme(doc, "lab.json")


def test_class_names_of_a_written_annotation_and_of_a_continuous_one(tmp_path):
    icep = (package_data.SCHEME_DIR / "nova" / "ICEP-R-infant.annotation")
    assert class_names(load_annotation(icep)) == load_scheme("ICEP-R-infant").names
    path = write_annotation(continuous_annotation(np.zeros(2), np.ones(2), 25.0, "valence", -1, 1),
                            tmp_path / "v.annotation")
    with pytest.raises(AnnotationError, match="v.annotation: not a discrete annotation"):
        class_names(load_annotation(path), str(path))


def test_python_dash_m_runs_the_command_line_as_the_makefile_and_install_script_do():
    """``python -m nova_infant.cli`` (Makefile's demo, scripts/install-taggers.sh) must work now that ``cli`` is a
    sub-package: it needs its ``__main__``."""
    import subprocess
    import sys

    from nova_infant import __version__

    run = subprocess.run([sys.executable, "-m", "nova_infant.cli", "--version"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"nova-infant {__version__}"
