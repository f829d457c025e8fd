"""The WEAK cases of the hostile-input probe (issue 31, E): each now one line naming the user's file,
exit status 2, never a traceback nor a silent guess."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from daisnet.errors import InputError
from daisnet.params import load_params, read_yaml
from daisnet.pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]
PARAMS = (ROOT / "params.yaml").read_text()


def params_text(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    return path


def test_an_unquoted_exponent_is_a_number(tmp_path: Path) -> None:
    """PyYAML (YAML 1.1) reads `5e-4` as a string; every other reader of YAML, DVC's included, as a float."""
    path = params_text(tmp_path, PARAMS.replace("  lr: 0.0005 ", "  lr: 5e-4 "))
    assert load_params(path).train.lr == 5e-4
    quoted = params_text(tmp_path, PARAMS.replace("  lr: 0.0005 ", "  lr: '5e-4' "), "quoted.yaml")
    with pytest.raises(InputError, match="remove the quotes"):
        load_params(quoted)


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    path = params_text(tmp_path, PARAMS.replace("  iterations: 800\n", "  iterations: 800\n  iterations: 20\n"))
    with pytest.raises(InputError, match=r"key 'iterations' is given twice \(lines \d+ and \d+\)") as info:
        read_yaml(path)
    assert str(path) in info.value.message()


def test_a_params_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = params_text(tmp_path, b"seed: 0\ntrain:\n  lr: \xff\xfe\n")
    with pytest.raises(InputError, match="not UTF-8 text") as info:
        load_params(path)
    assert str(path) in info.value.message()


@pytest.mark.parametrize("key, value, words", [
    ("anchor_sizes", [16], r"model\.anchor_sizes must give one size per FPN level, 5"),
    ("min_size", 700, r"model\.min_size must be >= 32 and <= model\.max_size"),
    ("inputs", ["rgb", "rgb"], r"names an input twice"),
])
def test_a_bad_model_setting_names_the_users_file(tmp_path: Path, key: str, value: object, words: str) -> None:
    raw = yaml.safe_load(PARAMS)
    raw["model"][key] = value
    path = params_text(tmp_path, yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "prep.zarr"), str(tmp_path / "m.pt"),
                                      "--params", str(path)])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and str(path) in line and "params.yaml" not in line.replace(str(path), "")
    assert __import__("re").search(words, line), line


def test_weights_that_are_not_a_daisnet_checkpoint_are_one_line(tmp_path: Path) -> None:
    from daisnet.model.config import ModelConfig
    from daisnet.model.factory import build_model

    state_dict = tmp_path / "resnet18.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, state_dict)
    with pytest.raises(InputError, match="must be a DAISnet checkpoint .* a bare state dict"):
        build_model(ModelConfig(weights=str(state_dict)))


def test_depth_batch_larger_than_the_train_split_is_refused_not_an_endless_loop(tiny_pipeline, tmp_path) -> None:
    from dataclasses import replace

    from daisnet.depth.train import train_bts
    from test_depth_train import TINY

    with pytest.raises(InputError, match="batch_size 64 is larger than the 6 images of the train split"):
        train_bts(tiny_pipeline["train"], tiny_pipeline["val"], tmp_path / "bts.pt", replace(TINY, batch_size=64))
    assert not (tmp_path / "bts.pt").exists()


def test_inspect_writes_a_png_whatever_the_name(tiny_pipeline, tmp_path: Path) -> None:
    out = tmp_path / "sheet"
    result = CliRunner().invoke(app, ["inspect", str(tiny_pipeline["val"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = CliRunner().invoke(app, ["inspect", str(tiny_pipeline["val"]), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "is a folder" in result.output

