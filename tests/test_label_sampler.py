"""ONE label sampler: ICEP-R training labels, the review helpers and the affect targets label every frame alike,
nested segments included (a nested segment labels its span, the enclosing one the rest of its own)."""

from __future__ import annotations

import numpy as np
import pytest

from nova_infant.core.grid import frame_grid, segment_index_at
from nova_infant.icep import dataset, schemes

INFANT = schemes.full_scheme("infant")


def _write(folder, rows):
    from discover_utils.data.annotation import DiscreteAnnotation
    from discover_utils.utils.type_definitions import LabelDType

    from nova_infant.core.annotations import write_annotation

    data = np.array([(a, b, c, 1.0) for a, b, c in rows], dtype=LabelDType.DISCRETE.value)
    anno = DiscreteAnnotation(scheme=INFANT.discover_scheme(), data=data, role="infant", annotator="gold")
    return write_annotation(anno, folder / "infant.ICEP-R-infant.gold.annotation")


def _three_readings(path):
    """The frame labels of training, review and affect for one annotation file, as source-scheme ids."""
    from nova_infant.affect.sessions import discrete_on_grid
    from nova_infant.review.annotations import read_annotation, sample_frames

    review = sample_frames(read_annotation(path), 40.0, 160)
    affect, _ = discrete_on_grid(read_annotation(path), frame_grid(160 * 40, 40))
    segments, names = dataset.read_annotation(path)
    lmap = schemes.label_map("full", "infant")
    training = dataset.sample_labels(segments, 160, 40.0, lmap.lookup(names))
    as_source = np.array([INFANT.names.index(lmap.target.names[t]) if t >= 0 else -1 for t in training])
    return np.where(review >= 0, review, -1), np.asarray(affect), as_source


def test_training_review_and_affect_label_every_frame_alike(tmp_path):
    ipos, ineg, ipro = (INFANT.names.index(n) for n in ("Ipos", "Ineg", "Ipro"))
    # Ipos 0-1 s, Ineg 1-2 s, Ipos 2-4 s, a gap, Ipro 5-6 s
    path = _write(tmp_path, [(0, 1000, ipos), (1000, 2000, ineg), (2000, 4000, ipos), (5000, 6000, ipro)])
    expected = np.full(160, -1)
    expected[:25], expected[25:50], expected[50:100], expected[125:150] = ipos, ineg, ipos, ipro
    for reading in _three_readings(path):
        np.testing.assert_array_equal(reading, expected)


def test_nested_segments_are_refused_alike_by_training_review_and_affect(tmp_path):
    """A NOVA discrete track cannot hold overlapping labels (issue 21): the one reader refuses a nested segment for
    every consumer, in one line naming the file, instead of each labelling it its own way."""
    from nova_infant.core.errors import AnnotationError

    ipos, ineg = (INFANT.names.index(n) for n in ("Ipos", "Ineg"))
    path = _write(tmp_path, [(0, 4000, ipos), (1000, 2000, ineg)])
    from nova_infant.review.annotations import read_annotation

    for reader in (read_annotation, dataset.read_annotation):  # review and affect read through the first
        with pytest.raises(AnnotationError, match="overlap") as refused:
            reader(path)
        assert str(path) in str(refused.value) and "\n" not in str(refused.value)


def test_latest_start_wins_whatever_the_file_order():
    times = (np.arange(10) + 0.5) * 100
    # the nested segment listed first: still labels its own span only
    np.testing.assert_array_equal(segment_index_at(times, [300, 0], [500, 1000]), [1, 1, 1, 0, 0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(segment_index_at(times, [0, 600], [400, 700]), [0, 0, 0, 0, -1, -1, 1, -1, -1, -1])
    assert segment_index_at(times, [], []).tolist() == [-1] * 10
