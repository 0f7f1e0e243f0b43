"""One saved-model format for everything fitted (core.saved): round trip, checksums, kinds, atomic replacement,
the older layouts (converted, or refused in one line saying how), and the shipped crying model in the new format."""

from __future__ import annotations

import configparser
import errno
import fnmatch
import json
from pathlib import Path

import numpy as np
import pytest

from nova_infant.core import saved
from nova_infant.core.errors import OutputError, SavedModelError

REPO = Path(__file__).resolve().parents[1]


def _save(folder, scale=1.0, **kw):
    tensors = {"w": np.arange(6, dtype=np.float32).reshape(2, 3) * scale, "ids": np.array([1, 2, 3], np.int64)}
    return saved.save_model(folder, "tagger-head", {"classes": ["a", "b"], "scale": scale}, tensors,
                            readme="Fitted on three numbers.", **kw)


def test_round_trip_writes_config_tensors_checksums_and_readme(tmp_path):
    folder = _save(tmp_path / "m", files={"NOTICE.md": "licence text"})
    assert sorted(p.name for p in folder.iterdir()) == [".nova-infant.json", "NOTICE.md", "README.md", "checksums",
                                                        "config.json", "model.safetensors"]
    doc = json.loads((folder / "config.json").read_text())
    assert doc["kind"] == "tagger-head" and doc["format"] == saved.FORMAT and doc["format_version"] == 1
    assert doc["nova_infant_version"] and doc["config"] == {"classes": ["a", "b"], "scale": 1.0}
    config, tensors = saved.load_model(folder, kind="tagger-head")
    assert config["classes"] == ["a", "b"] and tensors["ids"].dtype == np.int64
    np.testing.assert_array_equal(tensors["w"], np.arange(6, dtype=np.float32).reshape(2, 3))
    import torch

    assert isinstance(saved.load_model(folder, framework="pt")[1]["w"], torch.Tensor)
    readme = (folder / "README.md").read_text()
    assert "Fitted on three numbers." in readme and "load_model('m', kind='tagger-head')" in readme
    listed = [line.split("  ")[1] for line in (folder / "checksums").read_text().splitlines()]
    assert listed == ["NOTICE.md", "README.md", "config.json", "model.safetensors"]


def test_checksums_are_sha256sum_compatible(tmp_path):
    import shutil
    import subprocess

    folder = _save(tmp_path / "m")
    if shutil.which("sha256sum"):
        assert subprocess.run(["sha256sum", "--quiet", "-c", "checksums"], cwd=folder).returncode == 0


@pytest.mark.parametrize("damage,message", [
    (lambda f: (f / "model.safetensors").write_bytes(b"x" + (f / "model.safetensors").read_bytes()[1:]),
     "model.safetensors: content differs from its recorded SHA-256"),
    (lambda f: (f / "config.json").unlink(), "config.json: missing"),
    (lambda f: (f / "checksums").write_text("nonsense\n"), "checksums: line 1 is not"),
    (lambda f: (f / "README.md").write_text("edited"), "README.md: content differs"),
])
def test_damage_is_one_line_naming_the_file(tmp_path, damage, message):
    folder = _save(tmp_path / "m")
    damage(folder)
    with pytest.raises(SavedModelError, match=message) as info:
        saved.load_model(folder)
    assert "\n" not in str(info.value) and str(folder) in str(info.value)


def test_another_kind_or_a_newer_format_is_refused(tmp_path):
    folder = _save(tmp_path / "m")
    with pytest.raises(SavedModelError, match="m: holds a tagger-head, not a icep-bundle"):
        saved.load_model(folder, kind="icep-bundle")
    doc = json.loads((folder / "config.json").read_text())
    doc["format_version"] = 99
    (folder / "config.json").write_text(json.dumps(doc))
    with pytest.raises(SavedModelError, match="format version 99 is newer"):
        saved.read_config(folder)
    with pytest.raises(SavedModelError, match="no such saved-model folder"):
        saved.load_model(tmp_path / "absent")


def test_a_failed_save_keeps_the_previous_folder(tmp_path, monkeypatch):
    folder = _save(tmp_path / "m", scale=1.0)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(SavedModelError, match="cannot be saved as JSON"):
        saved.save_model(folder, "tagger-head", {"bad": object()}, {})
    import safetensors.numpy

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.numpy, "save_file", full_disk)
    with pytest.raises(OutputError, match="m"):
        _save(folder, scale=2.0)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]      # no staging folder left behind
    monkeypatch.undo()
    _save(folder, scale=2.0)
    assert saved.load_model(folder)[0]["scale"] == 2.0


def test_older_layout_is_refused_with_how_to_convert_and_converts(tmp_path):
    from safetensors.numpy import save_file

    from nova_infant.core.atomic import atomic_dir

    old = tmp_path / "old-head"
    with atomic_dir(old, "tagger-head") as tmp:  # how heads and bundles were written before
        (tmp / "config.json").write_text(json.dumps({"classes": ["a"], "kind": "emotion"}))
        save_file({"w": np.ones(3, np.float32)}, str(tmp / "model.safetensors"))
        (tmp / "NOTICE.md").write_text("keep me")
    with pytest.raises(SavedModelError, match=r"old-head/config.json: saved by an older nova-infant .*"
                                              r"python -m nova_infant.core.saved "):
        saved.load_model(old)
    assert saved.main([str(old)]) == 0
    config, tensors = saved.load_model(old, kind="tagger-head")
    assert config == {"classes": ["a"], "kind": "emotion"} and tensors["w"].tolist() == [1, 1, 1]
    assert (old / "NOTICE.md").read_text() == "keep me"
    assert saved.main([str(old)]) == 2  # already converted: one line, nothing changed


def test_shipped_crying_model_is_a_saved_model_with_its_notice_in_the_package_data():
    from nova_infant.taggers.crying import HEAD_DIR, load_default_head

    head = load_default_head()
    assert head is not None and head.classes == ["baby_crying", "speech"]
    config, _ = saved.load_model(HEAD_DIR, kind="tagger-head")
    assert config["embedding"] == "yamnet-logits-521"
    notice = (HEAD_DIR / "NOTICE.md").read_text()
    assert "Open Database License" in notice and "NOTICE.md" in (HEAD_DIR / "checksums").read_text()
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["nova_infant.taggers"].split(",")]
    for item in HEAD_DIR.iterdir():  # every file of the folder ships with `pip install .`
        assert any(fnmatch.fnmatch(f"data/crying_head/{item.name}", p) for p in patterns), item.name
