"""Outcome count of the data-safety cases of issue 9 (part A) for whichever ``nova_infant`` this python imports.

Usage: ``python scripts/measure_data_safety.py`` (run it with another checkout's python to compare). Each case is
classified as clean (non-zero exit, one-line error, previous data intact), traceback, silent (exit 0 with a wrong
result) or partial (data lost, written outside its folder, or a corrupt pair). The full-disk cases need root (a
1 MiB tmpfs) and are left out otherwise. The pytest versions of these cases live in tests/test_data_safety.py.
"""
import json, os, shutil, subprocess, sys, tempfile
from pathlib import Path
import numpy as np

PY = sys.executable
base = Path(tempfile.mkdtemp(prefix="m9a-"))
results = []

def cli(args, cwd=None):
    return subprocess.run([PY, "-m", "nova_infant.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600)

def classify(name, run, intact):
    text = run.stdout + run.stderr
    if not intact:
        out = "partial"
    elif "Traceback" in text:
        out = "traceback"
    elif run.returncode == 0:
        out = "silent"
    else:
        out = "clean"
    results.append((name, out, run.returncode))

# data: 3 synthetic sessions + a bundle
from nova_infant.icep.synthetic import context_task, write_session
rng = np.random.default_rng(0)
root = base / "data"
for s in ["P1", "P2", "P3"]:
    x, y = context_task(120, 6, rng, cue=0.5)
    write_session(root, "ffsf", s, {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)
TRAIN = ["icep", "train", "--root", str(root), "--dataset", "ffsf", "--streams", "infant.feat", "--model", "mlp",
         "--hidden", "8", "--epochs", "1"]
bundle = base / "bundle"
r = cli([*TRAIN, "--out", str(bundle)]); assert r.returncode == 0, r.stderr

# 1. train --out <existing foreign folder>
victim = base / "victim"; victim.mkdir(); (victim / "thesis.docx").write_text("keep")
r = cli([*TRAIN, "--out", str(victim)])
classify("train --out foreign folder", r, (victim / "thesis.docx").exists())
# 2. predict --annotator escape
r = cli(["icep", "predict", "--root", str(root), "--dataset", "ffsf", "--bundle", str(bundle), "--annotator", "x/../../../escaped"])
esc = [p for p in base.rglob("*escaped*")] + list(Path(base).parent.glob("*escaped*"))
classify("predict --annotator x/../../../escaped", r, not esc)
for flag, value in [("--annotator", "../../x"), ("--scheme", "a/b"), ("--sessions", "../P1")]:
    args = list(TRAIN) + [flag, value, "--out", str(base / "b2")]
    r = cli(args)
    classify(f"train {flag} {value}", r, not (base / "x.annotation").exists())
# 3. damaged bundles
def damaged(name, fn):
    b = base / f"bundle-{name}"; shutil.copytree(bundle, b); fn(b)
    r = cli(["icep", "predict", "--root", str(root), "--dataset", "ffsf", "--sessions", "P1", "--bundle", str(b)])
    classify(f"bundle {name}", r, True)
def ej(p, f):
    d = json.loads(p.read_text()); f(d); p.write_text(json.dumps(d))
damaged("nan normaliser", lambda b: ej(b / "normaliser.json", lambda d: d["mean"].__setitem__(0, float("nan"))))
damaged("short normaliser", lambda b: ej(b / "normaliser.json", lambda d: d["scale"].pop()))
damaged("2-class label map", lambda b: ej(b / "config.json", lambda d: d["config"]["label_map"].__setitem__("classes", d["config"]["label_map"]["classes"][:2])))
damaged("window 0", lambda b: ej(b / "config.json", lambda d: d["config"]["training_config"].__setitem__("window", 0)))
damaged("missing model.safetensors", lambda b: (b / "model.safetensors").unlink())
damaged("truncated model.safetensors", lambda b: (b / "model.safetensors").write_bytes((b / "model.safetensors").read_bytes()[:100]))
damaged("edited weights bytes", lambda b: (b / "model.safetensors").write_bytes((b / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0"))
# 4. backbone mixed weights
code = f"""
import shutil,sys
from nova_infant.core.backbones import save_standin, load_dinov2
d=save_standin('dinov2','{base}/dino'); w=save_standin('w2v-bert','{base}/w2v')
shutil.copy('{base}/w2v/model.safetensors','{base}/dino/model.safetensors')
try:
    b=load_dinov2('{base}/dino','cpu',False)
    print('loaded', b.weights_label); sys.exit(0)
except Exception as e:
    print('error:', e); sys.exit(2)
"""
r = subprocess.run([PY, "-c", code], capture_output=True, text=True)
classify("W2V-BERT weights in a DINOv2 folder", r, True)
# 5. full disk (tmpfs) CLI predict
disk = base / "disk"; disk.mkdir()
if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)]).returncode == 0:
    shutil.copytree(root / "ffsf", disk / "ffsf")
    args = ["icep", "predict", "--root", str(disk), "--dataset", "ffsf", "--bundle", str(bundle)]
    assert cli(args).returncode == 0
    old = {p: p.read_bytes() for p in disk.rglob("*.icep.annotation*")}
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True: os.write(fd, b"\0" * 4096)
    except OSError: pass
    os.close(fd)
    r = cli(args + ["--min-dur-ms", "400"])
    classify("full disk: CLI predict", r, {p: p.read_bytes() for p in disk.rglob("*.icep.annotation*")} == old)
    os.unlink(disk / "filler")
    # stream rewrite on full disk through the CLI writer
    code = f"""
import numpy as np, os, sys
from nova_infant.core import streams
p='{disk}/r.x.stream'
streams.write_ssi_stream(streams.make_ssi_stream(np.ones((10,3)),25,'f',list('abc')), p)
fd=os.open('{disk}/filler2', os.O_WRONLY|os.O_CREAT)
try:
    while True: os.write(fd, b'\\0'*4096)
except OSError: pass
os.close(fd); os.truncate('{disk}/filler2', max(os.path.getsize('{disk}/filler2')-100000,0))
try:
    streams.write_ssi_stream(streams.make_ssi_stream(np.ones((30000,4)),25,'f',list('abcd')), p)
except Exception as e:
    print('error:', str(e).splitlines()[0]); code=2
else:
    code=0
os.unlink('{disk}/filler2')
from discover_utils.data.handler.file_handler import FileHandler
s=FileHandler().load(p); ok = s.data.shape==(10,3)
print('intact' if ok else 'LOST'); sys.exit(code)
"""
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True)
    classify("full disk: stream rewrite", r, "intact" in r.stdout)
    subprocess.run(["umount", "-l", str(disk)])
# 6. kill between data and header rename (CLI writer)
code = f"""
import numpy as np, os
from nova_infant.core import streams
p='{base}/k.stream'
streams.write_ssi_stream(streams.make_ssi_stream(np.ones((100,3)),25,'f',list('abc')), p)
real=os.replace; n=[0]
def rep(a,b):
    if str(b).endswith('k.stream'):
        os._exit(137)
    return real(a,b)
os.replace=rep
streams.write_ssi_stream(streams.make_ssi_stream(np.ones((200,3))*2,25,'f',list('abc')), p)
"""
r = subprocess.run([PY, "-c", code], capture_output=True, text=True)
code2 = f"""
import sys
import numpy as np
from nova_infant.core import streams
from nova_infant.core.errors import StreamError
try:  # a reader never writes (issue #21): it reads one whole version or says the pair is mid-replacement
    v=streams.open_ssi_stream('{base}/k.stream'); print(v.n_rows, float(v.data[0,0]))
    if (v.n_rows, float(v.data[0,0])) not in ((100,1.0),(200,2.0)):
        sys.exit(3)
except StreamError as e:
    if 'k.stream' not in str(e) or '\\n' in str(e):
        sys.exit(4)
# the next writer finishes or rolls back the interrupted replacement, then writes
streams.write_ssi_stream(streams.make_ssi_stream(np.ones((300,3))*3,25,'f',list('abc')), '{base}/k.stream')
v=streams.open_ssi_stream('{base}/k.stream')
sys.exit(0 if (v.n_rows, float(v.data[0,0])) == (300,3.0) else 5)
"""
r2 = subprocess.run([PY, "-c", code2], capture_output=True, text=True)
results.append(("kill between data and header rename", "clean" if r2.returncode == 0 else "partial", r2.returncode))
# 7. two writers at once
code = f"""
import numpy as np, sys
from nova_infant.core import streams
for i in range(25):
    rows = 50 + 37 * ((int(sys.argv[1]) * 25 + i) % 11)
    streams.write_ssi_stream(streams.make_ssi_stream(np.full((rows, 8), int(sys.argv[1])*1000+i), 25, 'f', list('abcdefgh')), '{base}/c.stream')
"""
ps = [subprocess.Popen([PY, "-c", code, str(s)], stdout=subprocess.PIPE, stderr=subprocess.PIPE) for s in (1, 2, 3)]
[p.communicate() for p in ps]
r2 = subprocess.run([PY, "-c", f"import numpy as np;from nova_infant.core import streams;v=streams.open_ssi_stream('{base}/c.stream');import sys;sys.exit(0 if len(np.unique(v.data))==1 else 3)"], capture_output=True, text=True)
results.append(("3 concurrent writers x 25 writes", "clean" if r2.returncode == 0 and all(p.returncode == 0 for p in ps) else "partial", r2.returncode))

for name, out, code in results:
    print(f"{out:10s} rc={code:3d}  {name}")
from collections import Counter
c = Counter(o for _, o, _ in results)
print("tried", len(results), dict(c))
shutil.rmtree(base, ignore_errors=True)
