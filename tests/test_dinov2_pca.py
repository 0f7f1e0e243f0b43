"""DINOv2-PCA extractor: rows/dims/rates, alignment of marked frames, PCA modes, DISCOVER run, bad input.

Every test loads a tiny random ``Dinov2Model`` checkpoint (fixture ``tiny_dinov2``) through ``from_pretrained``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nova_infant.core import streams, trainer_files
from nova_infant.core.backbones import load_dinov2, save_standin
from nova_infant.features.dinov2_basis import (PCAFileError, convert_npz_basis, dataset_basis, fit_pca_over_videos,
                                               load_pca, save_pca)
from nova_infant.features.dinov2_encoder import fit_frame_indices, parse_framing
from nova_infant.features.dinov2_pca import extract_dinov2, pca_picture
from nova_infant.core.errors import OptionError, WeightsUnavailableError
from tests.conftest import marked_video

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def backbone(tiny_dinov2):
    return load_dinov2(tiny_dinov2, device="cpu")


def _marked_rows(cls: np.ndarray) -> set:
    """Rows whose CLS token is far from the typical (dark) row."""
    distance = np.linalg.norm(cls - np.median(cls, axis=0), axis=1)
    return set(np.flatnonzero(distance > 0.5 * distance.max()).tolist())


def test_streams_have_documented_rows_dims_rate_and_load_back(carphone_session, backbone, tmp_path):
    features = extract_dinov2(carphone_session["video"], backbone, batch_size=16)
    assert features.pca.shape == (120, 16 * 16 * 4) and features.cls.shape == (120, 32)
    assert features.grid.sample_rate_hz == pytest.approx(29.97, abs=1e-3)
    assert np.isfinite(features.pca).all() and np.isfinite(features.cls).all()
    names = features.pca_dim_names()
    assert names[:5] == ["p0_0_pc0", "p0_0_pc1", "p0_0_pc2", "p0_0_pc3", "p0_1_pc0"] and names[-1] == "p15_15_pc3"
    path = streams.write_ssi_stream(features.pca_stream(role="infant"), tmp_path / "infant.dinov2.stream")
    loaded = streams.load_ssi_stream(path)
    assert loaded.data.shape == (120, 1024) and loaded.data.dtype == np.float32
    assert loaded.meta_data.sample_rate == pytest.approx(29.97, abs=1e-3)
    np.testing.assert_allclose(loaded.data, features.pca)
    view = streams.open_ssi_stream(path)
    assert view.media_type == "feature;video;dinov2" and view.meta["weights"] == "untrained-stand-in"
    basis = features.pca_model
    assert view.meta["pca_mode"] == "dataset" and view.meta["pca_k"] == "4" and view.meta["pca_basis"] == basis.basis_hash
    assert Path(basis.path).parent == Path(carphone_session["root"]) / "demo" / "dinov2_pca_basis"  # saved for reuse
    # a basis fitted on this one session's frames: each component averages ~0 over every patch of the session
    assert np.abs(features.pca.reshape(120, 256, 4).mean(axis=(0, 1))).max() < 1e-3 * np.abs(features.pca).max()


@pytest.mark.parametrize("fps", [25.0, 29.97, 30.0])
def test_marked_frames_change_their_rows_at_native_rate(fps, backbone, tmp_path):
    marks_ms = (400.0, 1010.0, 1500.0)
    marked = marked_video(tmp_path / "marks.mp4", fps, 60, marks_ms)
    features = extract_dinov2(tmp_path / "marks.mp4", backbone, output="cls", batch_size=16)
    assert features.cls.shape[0] == 60 and features.pca is None
    # frame_step "video": row k is frame k, so the marked rows are the marked frames exactly
    assert _marked_rows(features.cls) == marked


@pytest.mark.parametrize("fps", [25.0, 29.97, 30.0])
def test_marked_times_land_in_their_40ms_rows(fps, backbone, tmp_path):
    marks_ms = (400.0, 1010.0, 1500.0)
    marked_video(tmp_path / "marks.mp4", fps, 60, marks_ms)
    features = extract_dinov2(tmp_path / "marks.mp4", backbone, output="cls", frame_step="40ms", batch_size=16)
    assert features.grid.sample_rate_hz == pytest.approx(25.0)
    assert features.cls.shape[0] == int(np.floor(60 / fps * 1000 / 40 + 1e-6))
    found = sorted(_marked_rows(features.cls))
    for t in marks_ms:
        assert any(abs(row - int(t // 40)) <= 1 for row in found), (t, found)
    # each mark lasts one video frame (<= 40 ms), so it shows up in at most 2 rows
    assert len(found) <= 2 * len(marks_ms)


def test_duration_option_sets_row_count_and_rows_past_the_video_repeat_the_last_frame(carphone_session, backbone):
    short = extract_dinov2(carphone_session["video"], backbone, output="cls", duration_ms=2000.0)
    assert short.cls.shape[0] == 59  # floor(2000 / 33.367)
    longer = extract_dinov2(carphone_session["video"], backbone, output="cls", reference_duration_ms=4400.0)
    assert longer.cls.shape[0] == 131 and longer.row_frames[-1] == 119
    np.testing.assert_array_equal(longer.cls[-1], longer.cls[119])


def test_saved_pca_fitted_on_the_session_reproduces_session_mode(carphone_session, backbone, tmp_path):
    options = dict(pca_fit_frames=50, batch_size=8, k=4)
    session = extract_dinov2(carphone_session["video"], backbone, output="pca", pca="session", **options)
    pca = fit_pca_over_videos([carphone_session["video"]], backbone, progress=False, **options)
    path = save_pca(pca, tmp_path / "dataset_pca")
    assert path.is_dir() and (path / "checksums").is_file() and (path / "README.md").is_file()
    loaded = load_pca(path)
    assert loaded.n_components == 4 and loaded.token_dim == 32 and loaded.n_tokens == 50 * 256
    from_file = extract_dinov2(carphone_session["video"], backbone, output="pca", pca=str(path), **options)
    np.testing.assert_allclose(from_file.pca, session.pca, rtol=1e-4, atol=1e-4)
    assert from_file.meta["pca"] == os.path.abspath(path)
    assert len(fit_frame_indices(np.arange(120), 50)) == 50


def test_two_sessions_with_different_scenes_share_one_basis_by_default(carphone_session, tiny_dinov2, tmp_path):
    """The default path (CLI extract, pca=dataset): one basis fitted across both sessions, saved in the dataset
    folder, recorded in both headers, and reused by a later job; the session PCA gives unrelated bases."""
    from nova_infant.core.sample_media import write_video

    root = tmp_path / "data" / "ffsf"
    (root / "P001").mkdir(parents=True)
    os.symlink(carphone_session["video"], root / "P001" / "infant.video.mp4")       # a face in a car
    frames = np.zeros((40, 96, 128, 3), np.uint8)
    frames[:, :, :64] = (200, 40, 40)                                             # a red and blue room
    frames[:, :, 64:] = (30, 60, 220)
    frames[:, 30:60, 40:90] = np.random.default_rng(0).integers(0, 255, (40, 30, 50, 3), dtype=np.uint8)
    write_video(root / "P002" / "infant.video.mp4", frames, 25.0)
    videos = [str(root / "P001" / "infant.video.mp4"), str(root / "P002" / "infant.video.mp4")]
    assert _cli(["dinov2", "extract", *videos, "--model", tiny_dinov2, "--device", "cpu", "--output", "pca",
                 "--pca-fit-frames", "20"]) == 0
    heads = [streams.open_ssi_stream(root / s / "infant.dinov2.stream").meta for s in ("P001", "P002")]
    assert heads[0]["pca_mode"] == heads[1]["pca_mode"] == "dataset"
    assert heads[0]["pca_basis"] == heads[1]["pca_basis"] and heads[0]["pca_k"] == "4"
    (basis_file,) = [p for p in (root / "dinov2_pca_basis").iterdir() if not p.name.startswith(".")]
    assert basis_file.is_dir() and not basis_file.name.endswith(".npz")           # a saved-model folder
    basis = load_pca(basis_file)
    assert basis.basis_hash == heads[0]["pca_basis"] and len(basis.sources) == 2   # fitted across both sessions
    stamp = (basis_file / "config.json").stat().st_mtime_ns
    assert _cli(["dinov2", "extract", videos[1], "--model", tiny_dinov2, "--device", "cpu", "--output", "pca"]) == 0
    assert (basis_file / "config.json").stat().st_mtime_ns == stamp                                  # a later job reuses it
    assert streams.open_ssi_stream(root / "P002" / "infant.dinov2.stream").meta["pca_basis"] == basis.basis_hash
    # no unsupervised leak: a basis fitted on the training session only, used for the test session
    train_basis = tmp_path / "train_basis"
    assert _cli(["dinov2", "extract", videos[1], "--model", tiny_dinov2, "--device", "cpu", "--output", "pca",
                 "--pca-fit-frames", "20", "--pca-basis", str(train_basis), "--pca-fit-videos", videos[0]]) == 0
    train_only = load_pca(train_basis)
    assert train_only.sources == [os.path.abspath(videos[0])] and train_only.basis_hash != basis.basis_hash
    assert streams.open_ssi_stream(root / "P002" / "infant.dinov2.stream").meta["pca_basis"] == train_only.basis_hash
    # what the old default gave: a basis per session, unrelated between the two scenes
    backbone = load_dinov2(tiny_dinov2, device="cpu")
    own = [extract_dinov2(v, backbone, pca="session", output="pca", pca_fit_frames=20).pca_model for v in videos]
    assert own[0].basis_hash != own[1].basis_hash
    assert abs(float(own[0].components[0] @ own[1].components[0])) < 0.9


def test_pca_of_other_weights_is_refused_naming_the_file(carphone_session, backbone, tmp_path):
    other = load_dinov2(str(save_standin("dinov2", tmp_path / "other", seed=7)), device="cpu")
    pca = fit_pca_over_videos([carphone_session["video"]], other, pca_fit_frames=16, progress=False)
    path = save_pca(pca, tmp_path / "other_pca")
    with pytest.raises(PCAFileError, match="other_pca: PCA was fitted on the weights"):
        extract_dinov2(carphone_session["video"], backbone, pca=str(path))


def test_pca_file_that_is_not_a_pca_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.npz"
    bad.write_text("hello")
    with pytest.raises(PCAFileError, match="notes.npz: a PCA basis in the old .npz format; convert it"):
        load_pca(bad)
    with pytest.raises(PCAFileError, match="notes.npz: not a DINOv2 PCA file"):
        convert_npz_basis(bad)
    (tmp_path / "folder").mkdir()
    with pytest.raises(PCAFileError, match=r"folder/config.json: missing"):
        load_pca(tmp_path / "folder")


def test_old_npz_basis_converts_to_a_folder_with_the_same_hash(carphone_session, backbone, tmp_path):
    pca = fit_pca_over_videos([carphone_session["video"]], backbone, pca_fit_frames=16, progress=False)
    old = tmp_path / "basis.npz"  # the layout nova-infant wrote before the saved-model format
    np.savez(old, components=pca.components, mean=pca.mean, explained_variance=pca.explained_variance,
             explained_variance_ratio=pca.explained_variance_ratio, n_components=pca.n_components,
             token_dim=pca.token_dim, size=pca.size, n_tokens=pca.n_tokens, version=1, model=np.str_(pca.model),
             fingerprint=np.str_(pca.fingerprint), framing=np.str_(pca.framing),
             sources=np.asarray(pca.sources, dtype=np.str_))
    with pytest.raises(PCAFileError) as info:
        extract_dinov2(carphone_session["video"], backbone, pca=str(old), output="pca")
    assert "\n" not in str(info.value) and "python -m nova_infant.features.dinov2_pca" in str(info.value)
    with pytest.raises(PCAFileError, match=r"basis.npz: the dataset's PCA basis in the old .npz format; convert"):
        dataset_basis(tmp_path / "basis", [carphone_session["video"]], backbone)  # never silently re-fitted
    folder = convert_npz_basis(old)
    assert folder == tmp_path / "basis" and load_pca(folder).basis_hash == pca.basis_hash
    assert dataset_basis(tmp_path / "basis", [carphone_session["video"]], backbone)[0].basis_hash == pca.basis_hash
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(PCAFileError, match="basis/model.safetensors: content differs from its recorded SHA-256"):
        load_pca(folder)


def test_frame_mode_refits_pca_on_every_frame(carphone_session, backbone):
    features = extract_dinov2(carphone_session["video"], backbone, pca="frame", output="pca", duration_ms=500)
    grids = features.pca.reshape(len(features.pca), 256, 4)
    # per-frame fit_transform: every frame's components are centred on that frame's own patches
    assert np.abs(grids.mean(axis=1)).max() < 1e-4
    assert features.meta["pca"] == "frame" and features.pca_model is None


def test_crop_framing_selects_one_half_of_a_split_screen(backbone, tmp_path):
    from nova_infant.core.sample_media import write_video

    frames = np.full((30, 48, 96, 3), 16, np.uint8)
    frames[5, :, :48] = 235   # left role marked at frame 5
    frames[20, :, 48:] = 235  # right role marked at frame 20
    write_video(tmp_path / "split.mp4", frames, 25.0)
    left = extract_dinov2(tmp_path / "split.mp4", backbone, output="cls", framing="crop:0,0,48,48")
    right = extract_dinov2(tmp_path / "split.mp4", backbone, output="cls", framing="crop:0.5,0,0.5,1.0")
    assert _marked_rows(left.cls) == {5} and _marked_rows(right.cls) == {20}
    assert parse_framing("center_crop").text == "center_crop"
    with pytest.raises(OptionError, match="leaves the 96x48 frame"):
        extract_dinov2(tmp_path / "split.mp4", backbone, output="cls", framing="crop:60,0,48,48")


@pytest.mark.parametrize("step", [0, "0ms", -40])
def test_frame_step_of_zero_is_an_option_error_naming_the_video(step, carphone_session, backbone):
    with pytest.raises(OptionError, match="infant.video.mp4: frame step must be positive"):
        extract_dinov2(carphone_session["video"], backbone, frame_step=step)


def test_size_not_a_multiple_of_14_is_an_option_error(carphone_session, backbone):
    with pytest.raises(OptionError, match="multiple of the patch size 14"):
        extract_dinov2(carphone_session["video"], backbone, size=200)


def _cli(argv):
    from nova_infant.cli import main

    return main(argv)


def test_truncated_video_gives_one_line_error_and_no_stream(carphone_session, tiny_dinov2, tmp_path, capsys):
    data = Path(carphone_session["video"]).read_bytes()
    bad = tmp_path / "in" / "infant.video.mp4"
    bad.parent.mkdir()
    bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    assert _cli(["run", "dinov2-pca", "--video", str(bad), "--model", tiny_dinov2, "--out", str(out), "--device",
                 "cpu"]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]  # errors go to stderr like every command's
    assert message.startswith("error: ") and "infant.video.mp4" in message and "truncated" in message
    assert not out.exists() or not list(out.iterdir())


def test_wrong_model_directory_is_a_weights_error_naming_it(carphone_session, tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(WeightsUnavailableError, match="model: model directory has no config.json"):
        extract_dinov2(carphone_session["video"], str(tmp_path / "model"), device="cpu")


def test_cli_extract_writes_both_streams_and_picture(carphone_session, tiny_dinov2, tmp_path):
    out = tmp_path / "out"
    video = Path(carphone_session["video"])
    code = _cli(["run", "dinov2-pca", "--video", str(video), "--model", tiny_dinov2, "--out", str(out),
                 "--frame-step", "25fps", "--picture-dir", str(out), "--device", "cpu"])
    assert code == 0
    pca, cls = streams.open_ssi_stream(out / "infant.dinov2.stream"), streams.open_ssi_stream(out / "infant.dinov2cls.stream")
    assert (pca.n_rows, pca.dim, cls.dim) == (100, 1024, 32) and pca.sample_rate_hz == pytest.approx(25.0)
    assert (out / f"{video.parent.name}.dinov2_pca.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_picture_colours_follow_the_pca_components(tmp_path):
    import matplotlib.image as mpimg

    frame = np.zeros((64, 64, 3), np.uint8)
    grid = np.zeros((16, 16, 4), np.float32)
    grid[:8, :, 0] = 1.0  # component 0 high in the top half -> red there
    grid[8:, :, 2] = 1.0  # component 2 high in the bottom half -> blue there
    image = mpimg.imread(pca_picture(frame, grid, tmp_path / "pic.png"))[..., :3]
    right = image[:, image.shape[1] // 2:]
    reds = (right[..., 0] > 0.9) & (right[..., 1] < 0.1) & (right[..., 2] < 0.1)
    blues = (right[..., 2] > 0.9) & (right[..., 0] < 0.1) & (right[..., 1] < 0.1)
    red_rows, blue_rows = np.flatnonzero(reds.any(axis=1)), np.flatnonzero(blues.any(axis=1))
    assert len(red_rows) > 20 and len(blue_rows) > 20 and red_rows.mean() < blue_rows.mean()
    with pytest.raises(OptionError, match="needs 4 PCA components"):
        pca_picture(frame, grid[..., :3], tmp_path / "cmyk.png", mode="cmyk")


def _du_process(cml, root, options, outputs=("dinov2_pca", "dinov2_cls"), video="infant.video.mp4"):
    from nova_rules import nova_request

    names = {"dinov2_pca": "infant.dinov2.stream", "dinov2_cls": "infant.dinov2cls.stream"}
    entries = {"video": {"src": "file:stream:video", "uri_template": f"{root}/{{dataset}}/{{session}}/{video}"}}
    entries.update({o: {"src": "file:stream:ssistream", "uri_template": f"{root}/{{dataset}}/{{session}}/out/{names[o]}"}
                    for o in outputs})
    data = nova_request(Path(cml) / "dinov2_pca.trainer", entries)  # every input active, as NOVA sends it
    tmp = Path(cml).parent
    cmd = [os.path.join(os.path.dirname(sys.executable), "du-process"), "--trainer_file_path", "dinov2_pca.trainer",
           "--cml_dir", str(cml), "--cache_dir", str(tmp / "c"), "--tmp_dir", str(tmp / "t"), "--log_dir",
           str(tmp / "l"), "--dataset", "demo", "--sessions", '["carphone01"]', "--data", json.dumps(data),
           "--options", json.dumps(options)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def cml_dir(tmp_path_factory):
    import shutil

    from nova_infant.specs.dinov2_pca import SPEC

    cml = tmp_path_factory.mktemp("discover") / "cml"
    cml.mkdir()
    for name in ("bootstrap.py", "dinov2_pca.py", "version.py"):
        shutil.copy(REPO / "trainers" / "nova_infant" / name, cml / name)
    trainer_files.write_trainer(cml / "dinov2_pca.trainer", SPEC.trainer_spec())
    return cml


def test_module_runs_in_du_process_and_streams_load_back(cml_dir, carphone_session, tiny_dinov2, tmp_path):
    trainer = trainer_files.read_trainer(cml_dir / "dinov2_pca.trainer")
    assert trainer.info_trained and trainer.model_create == "DinoV2PCA"
    pictures = tmp_path / "pictures"
    result = _du_process(cml_dir, carphone_session["root"], {"model": tiny_dinov2, "frame_step": "40ms",
                                                             "device": "cpu", "picture_dir": str(pictures),
                                                             "precision": "int8"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = Path(carphone_session["dir"]) / "out"
    pca = streams.load_ssi_stream(out / "infant.dinov2.stream")
    cls = streams.load_ssi_stream(out / "infant.dinov2cls.stream")
    assert pca.data.shape == (100, 1024) and cls.data.shape == (100, 32)
    assert pca.meta_data.sample_rate == pytest.approx(25.0) and np.isfinite(pca.data).all()
    assert streams.open_ssi_stream(out / "infant.dinov2cls.stream").media_type == "feature;video;dino_cls"
    # written through our atomic writer (discover-utils' own truncates in place): checksum in the header, no leftovers
    assert 'data_check="' in (out / "infant.dinov2.stream").read_text()
    assert sorted(os.listdir(out)) == ["infant.dinov2.stream", "infant.dinov2.stream~", "infant.dinov2cls.stream",
                                       "infant.dinov2cls.stream~"]
    assert (pictures / "demo.carphone01.dinov2_pca.png").is_file()
    head = streams.open_ssi_stream(out / "infant.dinov2.stream").meta   # default: the dataset's one basis
    basis = {load_pca(p).basis_hash for p in (Path(carphone_session["root"]) / "demo" / "dinov2_pca_basis").glob("[!.]*")}
    assert head["pca_mode"] == "dataset" and head["pca_basis"] in basis
    assert head["precision"] == "int8"  # the DISCOVER option reaches the model and the header


def test_module_with_wrong_model_directory_fails_readably_and_writes_nothing(cml_dir, carphone_session, tmp_path):
    root = tmp_path / "data"
    (root / "demo" / "carphone01").mkdir(parents=True)
    os.symlink(carphone_session["video"], root / "demo" / "carphone01" / "infant.video.mp4")
    result = _du_process(cml_dir, root, {"model": str(tmp_path / "no-model"), "device": "cpu"})
    assert result.returncode == 1
    assert "WeightsUnavailableError" in result.stdout + result.stderr and "no-model" in result.stdout + result.stderr
    assert not list(root.rglob("*.stream"))
