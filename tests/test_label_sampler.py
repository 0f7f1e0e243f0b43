"""ONE label sampler: ICEP-R training labels, the review helpers and the affect targets label every frame alike,
nested segments included (a nested segment labels its span, the enclosing one the rest of its own)."""

from __future__ import annotations

import numpy as np

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


def test_nested_segments_are_labelled_the_same_by_training_review_and_affect(tmp_path):
    from nova_infant.affect.sessions import discrete_on_grid
    from nova_infant.review.annotations import read_annotation, sample_frames

    ipos, ineg, ipro = (INFANT.names.index(n) for n in ("Ipos", "Ineg", "Ipro"))
    # Ipos 0-4 s holds Ineg 1-2 s; Ipro 5-6 s after a gap
    path = _write(tmp_path, [(0, 4000, ipos), (1000, 2000, ineg), (5000, 6000, ipro)])
    expected = np.full(160, -1)
    expected[:25], expected[25:50], expected[50:100], expected[125:150] = ipos, ineg, ipos, ipro

    review = sample_frames(read_annotation(path), 40.0, 160)
    np.testing.assert_array_equal(np.where(review >= 0, review, -1), expected)
    affect, _ = discrete_on_grid(read_annotation(path), frame_grid(160 * 40, 40))
    np.testing.assert_array_equal(affect, expected)
    segments, names = dataset.read_annotation(path)
    lmap = schemes.label_map("full", "infant")
    training = dataset.sample_labels(segments, 160, 40.0, lmap.lookup(names))
    as_source = np.array([INFANT.names.index(lmap.target.names[t]) if t >= 0 else -1 for t in training])
    np.testing.assert_array_equal(as_source, expected)


def test_latest_start_wins_whatever_the_file_order():
    times = (np.arange(10) + 0.5) * 100
    # the nested segment listed first: still labels its own span only
    np.testing.assert_array_equal(segment_index_at(times, [300, 0], [500, 1000]), [1, 1, 1, 0, 0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(segment_index_at(times, [0, 600], [400, 700]), [0, 0, 0, 0, -1, -1, 1, -1, -1, -1])
    assert segment_index_at(times, [], []).tolist() == [-1] * 10
