"""Affect and valence trainers: every session needs its subject when groups are given (no silent group of its own),
reports say how subjects were set, and a trained affect predictor declares exactly the heads its model has."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

import nova_rules
from nova_infant.core.errors import OptionError


def _affect_item(name, subject, au=False, expr=False):
    from nova_infant.affect.training import AffectSession

    n = 8
    return AffectSession(name, subject, np.zeros((n, 4, 4, 3), np.uint8), np.ones(n, bool),
                         np.zeros((n, 2), np.float32), np.zeros(n, np.int64) if expr else None,
                         np.zeros((n, 12), np.float32) if au else None)


def test_affect_session_missing_from_groups_is_an_error_not_its_own_subject(tmp_path):
    from nova_infant.specs.affect import train_fit

    items = [_affect_item("s1", "mother A"), _affect_item("s2", None)]
    with pytest.raises(OptionError, match=r"option groups: 1 session\(s\) are not in the groups mapping \(s2\)"):
        train_fit(items, {"groups": {"s1": "mother A"}, "tasks": ("va",)}, SimpleNamespace(trainer_dir=tmp_path))


def test_asking_for_au_or_expr_without_codes_is_an_error():
    from nova_infant.specs.affect import check_heads

    check_heads([_affect_item("s1", "A", au=True), _affect_item("s2", "B")], ("va", "au"))  # one coded session is enough
    with pytest.raises(OptionError, match="'au' asked, but none of the 2 sessions has AU codes"):
        check_heads([_affect_item("s1", "A"), _affect_item("s2", "B")], ("va", "au"))
    with pytest.raises(OptionError, match="'expr' asked"):
        check_heads([_affect_item("s1", "A")], ("va", "expr"))


@pytest.mark.parametrize("tasks, outputs", [(("va",), ["arousal", "va_stream", "valence"]),
                                            (("va", "au"), ["arousal", "au", "va_stream", "valence"]),
                                            (("expr",), ["expression"])])
def test_trained_affect_predictor_trainer_declares_exactly_the_models_heads(tmp_path, tasks, outputs):
    from nova_infant.core.trainer_files import write_trainer
    from nova_infant.specs.affect import predictor_trainer_spec

    path = write_trainer(tmp_path / "affect_lab.trainer", predictor_trainer_spec("lab", tasks, "affect_models/lab", 40))
    assert nova_rules.check_trainer(path) == []
    info = nova_rules.cml_info_json(path)
    ios = json.loads(info["meta_io"]) if isinstance(info["meta_io"], str) else info["meta_io"]
    assert sorted(io["id"] for io in ios if io["type"] == "output") == outputs
    assert [io["id"] for io in ios if io["type"] == "input"] == ["video"]
    assert info["info_trained"] is True


def test_valence_session_missing_from_subjects_is_an_error(tmp_path):
    from nova_infant.specs.valence import fit_train
    from nova_infant.valence.training import ValenceSession

    items = [(ValenceSession("s1", "A", "v.mp4", None), {}), (ValenceSession("s2", None, "v.mp4", None), {})]
    with pytest.raises(OptionError, match=r"option subjects: 1 session\(s\) have no subject \(s2\)"):
        fit_train(items, {"subjects": "groups.csv", "model_name": "m"}, SimpleNamespace(trainer_dir=tmp_path))

