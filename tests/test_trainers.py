"""The committed .trainer files are what the adapters declare, parse with discover-utils, and are visible in NOVA."""

import filecmp

import pytest

from nova_infant.discover.registry import REPO_TRAINER_DIR, TRAINERS, write_all_trainers
from nova_infant.core.trainer_files import read_trainer


def test_committed_trainers_equal_the_adapter_specs(tmp_path):
    written = write_all_trainers(tmp_path)
    assert len(written) == len(TRAINERS) >= 1
    for path in written:
        committed = REPO_TRAINER_DIR / path.name
        assert committed.is_file(), f"{committed} missing: run `nova-infant write-trainers`"
        assert filecmp.cmp(path, committed, shallow=False), f"{committed} is stale: run `nova-infant write-trainers`"


@pytest.mark.parametrize("stem", sorted(TRAINERS))
def test_trainer_is_trained_and_its_script_exports_the_class(stem):
    trainer = read_trainer(REPO_TRAINER_DIR / f"{stem}.trainer")
    assert trainer.info_trained is True
    script = REPO_TRAINER_DIR / trainer.model_script_path
    assert script.is_file()
    namespace = {"__file__": str(script), "__name__": f"ns_cl_{script.stem}"}
    exec(compile(script.read_text(), str(script), "exec"), namespace)
    assert trainer.model_create in namespace
    ids = [io.io_id for io in trainer.meta_io]
    assert len(ids) == len(set(ids)) and all(io.io_type in ("input", "output") for io in trainer.meta_io)
