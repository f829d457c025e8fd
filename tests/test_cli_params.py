"""`daisnet <stage>` takes its defaults from the params file, as the DVC stage does.

Before, the commands had defaults of their own and drifted from the stages: `daisnet synth` rendered
without params.yaml's focal length, and a model from `daisnet train` was refused by `daisnet predict`
(no feature metadata, `train.crop_width` ignored).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from daisnet.pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]


def small_params(tmp_path: Path, **sections: dict) -> Path:
    """params.yaml with some keys changed (dotted section -> {key: value}), written to tmp_path."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, values in sections.items():
        node = params
        for key in dotted.split("."):
            node = node[key]
        node.update(values)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def stage_commands() -> dict[str, str]:
    """dvc.yaml stage -> its cmd (foreach stages with their first item)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: (stage["do"]["cmd"].replace("${item}", stage["foreach"][0]) if "do" in stage else stage["cmd"])
            for name, stage in stages.items()}


def test_every_stage_of_dvc_yaml_is_the_daisnet_command_of_the_same_name() -> None:
    """One front door: dvc.yaml runs `python -m stages.X`, whose function is `daisnet x` itself."""
    import importlib

    commands = {info.name: info.callback for info in app.registered_commands}
    for stage, cmd in stage_commands().items():
        module = importlib.import_module(cmd.split()[2])
        function = getattr(module, stage)
        # the CLI registers it through `guarded` (every output checked first, issue 31)
        assert commands[stage.replace("_", "-")].__wrapped__ is function, stage


def test_synth_command_renders_the_stage_bytes(tmp_path: Path) -> None:
    params = small_params(tmp_path, synth={"train_images": 3, "val_images": 2, "workers": 1})
    stage = subprocess.run([sys.executable, *stage_commands()["synth"].split()[1:]], cwd=tmp_path,
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert stage.returncode == 0, stage.stderr
    result = CliRunner().invoke(app, ["synth", str(tmp_path / "cli"), "--params", str(params)])
    assert result.exit_code == 0, result.output
    stage_files, cli_files = file_hashes(tmp_path / "data" / "raw" / "synth"), file_hashes(tmp_path / "cli")
    assert len(stage_files) == 2 + 1 + 2 * 5 + 1  # annotations, report, images and depth PNGs, the marker
    assert cli_files == stage_files
    assert (tmp_path / "reports" / "synth.json").is_file()


def test_an_option_overrides_one_param(tmp_path: Path) -> None:
    params = small_params(tmp_path, synth={"train_images": 2, "val_images": 1, "workers": 1})
    result = CliRunner().invoke(app, ["synth", str(tmp_path / "a"), "--params", str(params),
                                      "--train-images", "1"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "a" / "train" / "image_2").glob("*.png"))) == 1
    assert len(list((tmp_path / "a" / "val" / "image_2").glob("*.png"))) == 1  # from the params file


def test_a_model_from_daisnet_train_is_accepted_by_daisnet_predict(tiny_features: dict, tmp_path: Path) -> None:
    params = small_params(
        tmp_path,
        model={"inputs": ["rgb", "depth_raw", "normal"], "min_size": 64, "max_size": 128, "mask_head_width": 16,
               "representation_size": 32, "rpn_pre_nms_top_n": [100, 50], "rpn_post_nms_top_n": [50, 25],
               "box_batch_size_per_image": 32, "fpn_channels": 32},
        train={"iterations": 2, "batch_size": 1, "checkpoint_every": 2, "log_every": 1, "crop_width": 96},
    )
    model = tmp_path / "model.pt"
    trained = CliRunner().invoke(app, ["train", str(tiny_features["train"]), str(model),
                                       "--features", str(tiny_features["features_train"]),
                                       "--depth", str(tiny_features["depth_train"]), "--params", str(params),
                                       "--work-dir", str(tmp_path / "work")])
    assert trained.exit_code == 0, trained.output
    images = sorted((tiny_features["raw"] / "val" / "image_2").glob("*.png"))[:1]
    predicted = CliRunner().invoke(app, ["predict", *map(str, images), "--model", str(model),
                                         "--out", str(tmp_path / "pred"),
                                         "--depth-dir", str(tiny_features["raw"] / "val" / "depth")])
    assert predicted.exit_code == 0, predicted.output
    assert (tmp_path / "pred" / f"{images[0].stem}.json").is_file()


def test_every_option_and_argument_of_every_command_has_help() -> None:
    import typer

    command = typer.main.get_command(app)
    missing = [f"{name} {param.name}" for name, sub in command.commands.items() for param in sub.params
               if not (getattr(param, "help", None) or "").strip()]
    assert missing == []


def test_a_device_that_is_not_there_is_one_line() -> None:
    import pytest

    from daisnet.device import resolve_device
    from daisnet.errors import InputError

    with pytest.raises(InputError, match=r"train.device: 'cuda:99' asked for, but this machine has \d+ CUDA"):
        resolve_device("cuda:99", "train.device")
    with pytest.raises(InputError, match="evaluate.device: not a torch device: 'gpu0'"):
        resolve_device("gpu0", "evaluate.device")
    assert resolve_device("cpu").type == "cpu"
