"""One standardiser (core.standardiser) for the ICEP-R trainer and the tagger heads: scikit-learn StandardScaler
semantics, streamed over blocks."""

from __future__ import annotations

import numpy as np
import pytest

from nova_infant.core.standardiser import Standardiser


def test_matches_scikit_learn_and_streaming_equals_one_pass():
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, (1000, 6)).astype(np.float32)
    x[:, 2] = 7.0  # a constant feature: scale 1, centred
    whole = Standardiser.from_array(x)
    streamed = Standardiser.from_blocks(np.array_split(x, 7))
    reference = StandardScaler().fit(x)
    np.testing.assert_allclose(whole.mean, reference.mean_, rtol=1e-5)
    np.testing.assert_allclose(whole.scale, reference.scale_, rtol=1e-4)
    np.testing.assert_allclose(streamed.mean, whole.mean, rtol=1e-6)
    np.testing.assert_allclose(streamed.scale, whole.scale, rtol=1e-6)
    np.testing.assert_allclose(whole.apply(x), reference.transform(x), atol=1e-4)
    assert whole.scale[2] == 1.0 and np.all(whole.apply(x)[:, 2] == 0.0)
    assert Standardiser.from_json(whole.to_json()).scale.tolist() == whole.scale.tolist()


def test_trainer_and_heads_use_it():
    from nova_infant.icep.training import Normaliser
    from nova_infant.taggers.heads import fit_head

    assert issubclass(Normaliser, Standardiser)
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 4.0, (40, 5)).astype(np.float32)
    head = fit_head(x, np.arange(40) % 2, ["a", "b"], kind="emotion", embedding="test", multilabel=False, epochs=1)
    expected = Standardiser.from_array(x, min_scale=1e-6)
    np.testing.assert_allclose(head.cfg.mean, expected.mean)
    np.testing.assert_allclose(head.cfg.scale, expected.scale)
    with pytest.raises(ValueError, match="no rows"):
        Standardiser.from_blocks([])
