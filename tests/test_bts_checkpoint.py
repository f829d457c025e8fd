"""BTS checkpoints: official-format files load as they are; wrong or unsafe files are refused clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from daisnet.depth.bts import BtsConfig, build_bts
from daisnet.depth.checkpoint import load_bts, save_bts
from daisnet.errors import InputError


def _official_payload(model: torch.nn.Module) -> dict:
    """What the release's training script saves: DataParallel keys, an optimizer, numpy scalars."""
    sd = {f"module.{k}": v.clone() for k, v in model.state_dict().items()}
    return {
        "global_step": np.int64(12345),
        "model": sd,
        "optimizer": {"state": {}, "param_groups": [{"lr": np.float64(1e-4), "params": [0, 1]}]},
    }


def _randomize_bn(model: torch.nn.Module) -> None:
    """Non-default running statistics, so a load that silently skipped buffers would show."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.fixture(scope="module")
def official_resnet50(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = build_bts("resnet50_bts").eval()
    _randomize_bn(model)
    path = tmp_path_factory.mktemp("bts") / "bts_eigen_v2_pytorch_resnet50"
    torch.save(_official_payload(model), path)
    return path, model


def test_official_file_loads_and_reproduces_output(official_resnet50: tuple[Path, torch.nn.Module]) -> None:
    path, original = official_resnet50
    assert "encoder.base_model.fc.weight" in original.state_dict()  # the unused fc travels along
    loaded, info = load_bts(path, BtsConfig(encoder="resnet50_bts", max_depth=80.0))
    assert info["format"] == "official" and info["global_step"] == 12345 and len(info["sha256"]) == 64
    x, focal = torch.randn(1, 3, 64, 64), torch.tensor([721.5377])
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, focal), original(x, focal), rtol=0, atol=0)


def test_file_of_other_encoder_is_refused(official_resnet50: tuple[Path, torch.nn.Module]) -> None:
    path, _ = official_resnet50
    with pytest.raises(InputError) as err:
        load_bts(path, BtsConfig(encoder="densenet161_bts"))
    msg = err.value.message()
    assert str(path) in msg and "densenet161_bts" in msg
    assert "encoder.base_model.conv0.weight" in msg and "(96, 3, 7, 7)" in msg and "missing" in msg
    assert "looks like resnet50_bts" in msg


def test_shape_mismatch_names_key_and_both_shapes(tmp_path: Path) -> None:
    path = tmp_path / "narrow.pt"
    torch.save(_official_payload(build_bts("resnet18_bts", num_features=128)), path)
    with pytest.raises(InputError) as err:
        load_bts(path, BtsConfig(encoder="resnet18_bts", num_features=256))
    msg = err.value.message()
    assert "resnet18_bts" in msg and "decoder.upconv5.conv.weight" in msg
    assert "model (256, 512, 3, 3)" in msg and "file (128, 512, 3, 3)" in msg


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    full = tmp_path / "full.pt"
    save_bts(full, build_bts("resnet18_bts"))
    cut = tmp_path / "cut.pt"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated or corrupted") as err:
        load_bts(cut)
    assert str(cut) in err.value.message()
    for name, junk in (("random.pt", np.random.default_rng(0).bytes(1000)), ("text.pt", b"hello world")):
        (tmp_path / name).write_bytes(junk)
        with pytest.raises(InputError, match="truncated or corrupted"):
            load_bts(tmp_path / name)


class _Payload:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


def test_pickled_object_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    torch.save({"model": build_bts("resnet18_bts").state_dict(), "extra": _Payload(marker)}, path)
    with pytest.raises(InputError, match="not a plain checkpoint: .*could run code") as err:
        load_bts(path, BtsConfig(encoder="resnet18_bts"))
    assert str(path) in err.value.message() and "weights_only" not in err.value.message()
    assert not marker.exists()


def test_non_tensor_entry_in_state_dict_is_refused(tmp_path: Path) -> None:
    sd = dict(build_bts("resnet18_bts").state_dict())
    sd["decoder.bn5.num_batches_tracked"] = np.int64(3)
    path = tmp_path / "odd.pt"
    torch.save({"model": sd}, path)
    with pytest.raises(InputError, match="decoder.bn5.num_batches_tracked is a int64, not a tensor"):
        load_bts(path, BtsConfig(encoder="resnet18_bts"))


def test_missing_file_and_official_file_without_config(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_bts(tmp_path / "nope.pt")
    path = tmp_path / "official.pt"
    torch.save(_official_payload(build_bts("resnet18_bts")), path)
    with pytest.raises(InputError, match="give the encoder"):
        load_bts(path)


def test_our_format_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_bts("resnet18_bts", max_depth=50.0, focal_reference=371.8, bn_momentum=0.1).eval()
    _randomize_bn(model)
    path = tmp_path / "bts.pt"
    save_bts(path, model, {"iterations": 3})
    loaded, info = load_bts(path)
    assert loaded.config == model.config and info["iterations"] == 3 and info["format"] == "daisnet-bts-1"
    x = torch.randn(1, 3, 32, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, torch.tensor([400.0])), model(x, torch.tensor([400.0])), rtol=0, atol=0)
    with pytest.raises(InputError, match="expected encoder resnet50_bts"):
        load_bts(path, BtsConfig(encoder="resnet50_bts"))


def test_official_best_model_file_with_numpy_arrays_loads(tmp_path: Path) -> None:
    """The release trainer's best-model branch saves numpy arrays beside the weights (bts_main.py)."""
    model = build_bts("resnet18_bts").eval()
    payload = {**_official_payload(model), "best_eval_measures_higher_better": torch.zeros(3),
               "best_eval_measures_lower_better": torch.zeros(6) + 1e3,
               "best_eval_steps": np.zeros(9, dtype=np.int32)}
    torch.save(payload, tmp_path / "model-12345-best_abs_rel_0.05")
    loaded, info = load_bts(tmp_path / "model-12345-best_abs_rel_0.05", BtsConfig(encoder="resnet18_bts"))
    assert info["format"] == "official"
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, torch.tensor([715.0873])), model(x, torch.tensor([715.0873])), rtol=0, atol=0)


def test_an_object_array_still_cannot_carry_code(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload(marker)
    torch.save({**_official_payload(build_bts("resnet18_bts")), "best_eval_steps": evil}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="could run code"):
        load_bts(tmp_path / "evil.pt", BtsConfig(encoder="resnet18_bts"))
    assert not marker.exists()
