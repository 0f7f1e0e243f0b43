"""The ``precision`` option of the backbones (fp32, bf16, int8, auto): choice, validation, stream header, and the
fidelity guard: each precision against fp32 on the same input with the tiny stand-ins (cosine per row; for DINOv2
also the PCA features after one shared basis). Speed lives in benchmarks/bench_precision.py."""

import warnings

import numpy as np
import pytest
import torch

from nova_infant.core import backbones
from nova_infant.core.backbones import load_dinov2, load_w2v_bert, resolve_precision
from nova_infant.features.dinov2_encoder import DinoV2Encoder
from nova_infant.features.dinov2_pca import extract_dinov2
from nova_infant.specs.options import precision_of
from nova_infant.core.errors import OptionError
from nova_infant.core.streams import open_ssi_stream, write_ssi_stream
from nova_infant.core.sample_media import carphone_frames, librivox_speech, write_video, write_wav
from nova_infant.specs.dinov2_pca import SPEC as DINOV2
from nova_infant.specs.w2v_bert import SPEC as W2V_BERT
from nova_infant.features import w2v_bert as W

CPU = torch.device("cpu")


def row_cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("has_bf16, expected", [(False, "fp32"), (True, "bf16")])
def test_auto_follows_the_cpu_bf16_probe(monkeypatch, tiny_dinov2, has_bf16, expected):
    monkeypatch.setattr(backbones, "cpu_supports_bf16", lambda: has_bf16)
    assert resolve_precision("auto", CPU) == expected
    loaded = load_dinov2(tiny_dinov2, device="cpu")  # the default is auto
    assert loaded.precision == expected and loaded.dtype == torch.float32
    assert isinstance(loaded.autocast(), torch.autocast) == has_bf16


def test_probe_reads_the_cpu_flags(monkeypatch, tmp_path):
    import builtins

    real_open = builtins.open
    for flags, expected in (("fpu sse avx2 avx512f avx512_vnni", False), ("fpu avx512f avx512_bf16", True),
                            ("fpu amx_tile amx_bf16 amx_int8", True)):
        fake = tmp_path / "cpuinfo"
        fake.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(builtins, "open", lambda path, *a, **k: real_open(fake if path == "/proc/cpuinfo" else path,
                                                                              *a, **k))
        assert backbones.cpu_supports_bf16() is expected, flags
    monkeypatch.setattr(builtins, "open", real_open)


def test_precision_options_are_checked_before_any_work():
    assert DINOV2.parse_options({"precision": "INT8"})["precision"] == "int8"
    assert W2V_BERT.parse_options({"precision": ""})["precision"] == "auto"
    with pytest.raises(OptionError, match=r"^option precision: expected one of auto, fp32, bf16, int8, got 'fp16'$"):
        DINOV2.parse_options({"precision": "fp16"})
    with pytest.raises(OptionError, match=r"^option precision: int8 .* CPU only, not on device cuda"):
        W2V_BERT.parse_options({"device": "cuda", "precision": "int8"})
    with pytest.raises(OptionError, match="int8 .* CPU only"):  # also at load time, whatever says cuda
        resolve_precision("int8", torch.device("cuda"))
    with pytest.raises(OptionError, match="contradict"):
        resolve_precision("bf16", CPU, bf16=False)


def test_old_bf16_flag_still_works_and_says_it_is_deprecated(tiny_dinov2):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_dinov2(tiny_dinov2, device="cpu", bf16=False)
    assert loaded.precision == "fp32"
    assert any(issubclass(w.category, DeprecationWarning) and "precision" in str(w.message) for w in caught)
    # DISCOVER: trainers written before the precision option send {bf16:BOOL:...}
    assert precision_of({"bf16": "False", "precision": "auto"}) == "fp32"
    assert precision_of({"bf16": "True", "precision": "int8"}) == "int8"
    assert precision_of({"precision": "bf16"}) == "bf16"
    with pytest.raises(OptionError, match="contradict"):
        precision_of({"bf16": False, "precision": "int8"})


@pytest.fixture(scope="module")
def frames():
    return carphone_frames()[::15][:8]  # 8 different frames of a real video


def test_dinov2_precisions_stay_close_to_fp32_tokens_and_pca_features(tiny_dinov2, frames, tmp_path):
    fp32 = DinoV2Encoder(load_dinov2(tiny_dinov2, device="cpu", precision="fp32"))
    ref_patches, ref_cls = (t.numpy() for t in fp32.encode(frames))
    video = str(write_video(tmp_path / "clip.video.mp4", frames, 25.0))
    ref = extract_dinov2(video, fp32.backbone, pca="session", batch_size=4)
    basis = ref.pca_model  # one shared basis, as in pca=dataset
    for precision, token_bound, pca_bound in (("bf16", 0.999, 0.995), ("int8", 0.99, 0.95)):
        loaded = load_dinov2(tiny_dinov2, device="cpu", precision=precision)
        patches, cls = (t.numpy() for t in DinoV2Encoder(loaded).encode(frames))
        assert patches.dtype == np.float32 and cls.dtype == np.float32  # PCA/CLS work in float32
        assert np.abs(patches - ref_patches).max() > 0, f"{precision} computed exactly fp32: the path did not act"
        token_cos = row_cosine(patches.reshape(-1, patches.shape[-1]), ref_patches.reshape(-1, patches.shape[-1]))
        assert token_cos.min() > token_bound, (precision, token_cos.min())
        assert row_cosine(cls, ref_cls).min() > token_bound, precision
        features = extract_dinov2(video, loaded, pca=basis, batch_size=4)
        assert features.meta["precision"] == precision and features.pca.dtype == np.float32
        pca_cos = row_cosine(features.pca, ref.pca)
        assert pca_cos.min() > pca_bound, (precision, pca_cos.min())
    path = write_ssi_stream(features.pca_stream(role="infant"), tmp_path / "infant.dinov2.stream")
    assert open_ssi_stream(path).meta["precision"] == "int8"
    assert ref.meta["precision"] == "fp32"


def test_int8_quantises_the_linear_layers_only(tiny_dinov2):
    model = load_dinov2(tiny_dinov2, device="cpu", precision="int8").model
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    assert not [m for m in model.modules() if type(m) is torch.nn.Linear]
    assert sum(isinstance(m, DynamicLinear) for m in model.modules()) == 2 * 6  # q, k, v, out, fc1, fc2 per layer
    assert type(model.embeddings.patch_embeddings.projection) is torch.nn.Conv2d  # the fingerprint's weights


def test_w2v_bert_precisions_stay_close_to_fp32_per_step_and_row(tiny_w2v_bert, tmp_path):
    audio = librivox_speech(3.0, 16000)
    wav = str(write_wav(tmp_path / "speech.wav", audio, 16000))
    fp32 = load_w2v_bert(tiny_w2v_bert, device="cpu", precision="fp32")
    ref_steps = W.encode_session(audio, fp32)
    ref_rows, _, ref_meta = W.extract_w2v_bert(wav, fp32)
    assert ref_meta["precision"] == "fp32"
    for precision, step_bound, row_bound in (("bf16", 0.999, 0.999), ("int8", 0.99, 0.99)):
        loaded = load_w2v_bert(tiny_w2v_bert, device="cpu", precision=precision)
        steps = W.encode_session(audio, loaded)
        assert steps.dtype == np.float32 and steps.shape == ref_steps.shape
        assert np.abs(steps - ref_steps).max() > 0, f"{precision} computed exactly fp32: the path did not act"
        assert row_cosine(steps, ref_steps).min() > step_bound, (precision, row_cosine(steps, ref_steps).min())
        rows, grid, meta = W.extract_w2v_bert(wav, loaded)
        assert meta["precision"] == precision
        assert row_cosine(rows, ref_rows).min() > row_bound, precision
    path = write_ssi_stream(W.to_stream(rows, grid, meta), tmp_path / "speech.w2vbert.stream")
    assert open_ssi_stream(path).meta["precision"] == "int8"
