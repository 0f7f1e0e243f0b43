"""A plain (non-editable) ``pip install .`` into a fresh virtual environment runs the demo and an ICEP-R prediction
from a folder outside the checkout, with the checkout's copy deleted first: the package reads only its own files."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, timeout=900):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
def test_fresh_venv_plain_install_runs_demo_and_icep_prediction_outside_the_checkout(tmp_path):
    # a copy of the checkout (tracked and new files, not build outputs), installed, then deleted
    source = tmp_path / "source"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, source / rel)
    venv = tmp_path / "venv"
    # system site-packages for torch & co. (and pip/setuptools: the venv's bundled ones are older); nova_infant
    # itself must come from the venv's own site-packages
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], tmp_path)
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    if sys.prefix != sys.base_prefix:  # this test runs in a venv itself (make test's .venv): see its packages too,
        import site                     # appended after the new venv's own (a path line runs no .pth in it)

        site_dir = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
        (site_dir / "outer-env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet", source],
         tmp_path, timeout=600)
    shutil.rmtree(source)
    work = tmp_path / "elsewhere"
    work.mkdir()

    found = json.loads(_run([python, "-c", (
        "import json, nova_infant; from nova_infant.core import package_data as p; "
        "from nova_infant.icep.schemes import merged_scheme; "
        "print(json.dumps({'file': nova_infant.__file__, 'checkout': str(p.checkout_root()), "
        "'schemes': sorted(f.name for f in p.SCHEME_DIR.rglob('*')), "
        "'trainers': sorted(f.name for f in p.TRAINER_DIR.glob('*')), "
        "'merged': merged_scheme('infant').names}))")], work))
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert Path(found["file"]) == site / "nova_infant" / "__init__.py"
    assert found["checkout"] == "None"
    assert {"emotion.json", "icep_r_infant.json", "ICEP-R-infant.annotation", "ICEP-R-infant.annotation~",
            "Schemes.mongo.json"} <= set(found["schemes"])
    assert {"dinov2_pca.trainer", "dinov2_pca.py", "bootstrap.py", "requirements.txt"} <= set(found["trainers"])
    assert found["merged"][0] == "Ineg"

    # ICEP-R: train a tiny bundle on synthetic sessions, predict another session with it
    _run([python, "-c", (
        "import numpy as np; from nova_infant.icep.synthetic import context_task, write_session\n"
        "rng = np.random.default_rng(0)\n"
        "for name in ('P001', 'P002', 'P003', 'P004'):\n"
        "    x, y = context_task(240, 8, rng, cue=0.5)\n"
        "    write_session('data', 'ffsf', name, {'infant.feat': (x, 25.0, 'feature;video;syn')}, y, 40.0)\n")],
         work)
    _run([bin_dir / "nova-infant", "icep", "train", "--root", "data", "--dataset", "ffsf", "--sessions", "P001",
          "P002", "P003", "--streams", "infant.feat", "--model", "mlp", "--hidden", "8", "--epochs", "2",
          "--folds", "2", "--out", "bundle"], work)
    _run([bin_dir / "nova-infant", "icep", "predict", "--root", "data", "--dataset", "ffsf", "--sessions", "P004",
          "--bundle", "bundle"], work)
    predicted = work / "data" / "ffsf" / "P004" / "infant.ICEP-R-infant-merged.icep.annotation"
    assert predicted.is_file() and predicted.with_name(predicted.name + "~").is_file()

    # the demo, short form (one 4 s loop): every module through du-process, the timeline
    out = _run([bin_dir / "nova-infant", "demo", "--out", "demo", "--loops", "1"], work, timeout=1200)
    session = work / "demo" / "data" / "demo" / "carphone64"
    assert (session / "infant.dinov2.stream").is_file() and (session / "session.w2vbert.stream").is_file()
    assert (work / "demo" / "timeline.png").stat().st_size > 10_000
    assert "UNTRAINED STAND-IN" in out and "timeline.html" in out
    for log in (work / "demo").glob("*.log"):  # du-process imported the installed package, not a checkout
        assert str(REPO) not in log.read_text() and "/work/main" not in log.read_text()
