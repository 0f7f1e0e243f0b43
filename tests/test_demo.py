"""README's main command end to end: both extractors through du-process on the real sample session."""

import pytest

from nova_infant.cli import main
from nova_infant.core.nova_io import load_ssi_stream


@pytest.mark.slow
def test_demo_runs_both_modules_through_du_process_with_standins(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "UNTRAINED STAND-IN" in out  # no real weights on a test machine, and it says so
    folder = tmp_path / "data" / "demo" / "carphone01"
    dinov2 = load_ssi_stream(folder / "infant.dinov2.stream")
    w2v = load_ssi_stream(folder / "session.w2vbert.stream")
    # 120 frames at 29.97 fps = 4004 ms -> floor(4004 / 40) = 100 rows at 25 Hz for both streams
    assert dinov2.data.shape == (100, 1024) and w2v.data.shape[0] == 100
    assert dinov2.meta_data.sample_rate == w2v.meta_data.sample_rate == 25.0
    assert out.count("untrained-stand-in") >= 2
