"""The GPU check (scripts/device-check.sh) in its CPU dry run: every module step runs and gets a table row, so the
script works on the day a GPU machine is lent (issue 22, item 5). Slow: eight worker processes, ~2-8 min."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STEPS = ("dinov2-pca", "w2v-bert", "icep-train", "icep-predict", "valence-train", "valence-predict",
         "affect-train", "affect-predict")


@pytest.mark.slow
def test_device_check_dry_run_reports_every_module_step(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    done = subprocess.run(["bash", str(REPO / "scripts" / "device-check.sh"), "--out", str(tmp_path / "dc")],
                          env=env, capture_output=True, text=True, timeout=1800)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text[-4000:]
    assert "dry run" in text and "8 of 8 steps ran" in text
    for step in STEPS:
        row = re.search(rf"^{re.escape(step)}\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)$", text,
                        re.MULTILINE)
        assert row, f"no table row for {step}:\n{text[-3000:]}"
        rows, media_s, wall_s, fps, rtf, peak = row.groups()
        assert int(rows) == 200 and float(media_s) == 8  # 8 s on the 40 ms grid
        assert float(wall_s) > 0 and abs(float(fps) - 200 / float(wall_s)) < 0.2 * float(fps) + 0.1
        assert int(peak) == 0  # CPU: no GPU memory
