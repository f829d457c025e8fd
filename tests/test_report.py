"""The ablation study and its report: run records, the plan, the claims' verdicts, a report rebuilt
byte for byte from a runs file alone, the transcribed Table 1, and a real tiny study that resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from daisnet.errors import InputError
from daisnet.pipeline.ablation import ROW_BY_NAME, ROWS
from daisnet.pipeline.cli import app
from daisnet.pipeline.claims import BTS_CLAIMS, CLAIMS, load_paper_table
from daisnet.pipeline.report import code_line, data_state, write_report
from daisnet.pipeline.run_stats import group, owed_commands, seeds_owed, verdict
from daisnet.pipeline.study import BTS_ROWS, STUDY_ROWS, RunSpec, params_for, plan, read_runs

PAPER_TEXT = Path("/work/shared/paper/DAISnet.txt")
REPO = Path(__file__).resolve().parents[1]


def record(row: str, seed: int, ap: float, depth: str = "ground_truth", visible: float | None = None) -> dict:
    """A run record as `daisnet ablation` writes it (metrics trimmed to what the report reads)."""
    visible = ap - 5 if visible is None else visible
    return {"row": row, "weights": "random", "depth_source": depth, "profile": "ablation", "seed": seed,
            "overrides": {"model.inputs": "[rgb]"}, "iterations": 1000, "train_seconds": 330.0 + seed,
            "eval_seconds": 40.0, "commit": "0123456789abcdef", "data": {"data/prepared/val.zarr": "abc"},
            "metrics": {"amodal": {"AP": ap, "AP50": ap + 20, "AP75": ap - 2},
                        "visible": {"AP": visible},
                        "occlusion": {"amodal": {"none": {"AP": ap + 10}, "partial": {"AP": ap},
                                                 "heavy": {"AP": ap - 10}}}}}


FIXTURE = [record("R", 0, 17.0), record("R", 1, 18.0), record("R+D", 0, 21.0), record("R+D", 1, 22.5),
           record("D", 0, 18.5), record("D", 1, 16.0), record("R+O", 0, 15.0), record("R+O", 1, 16.0),
           record("R+D", 0, 19.5, "bts:200"), record("R+D", 1, 20.0, "bts:200")]


def test_verdicts_follow_the_written_rule():
    stats = group(FIXTURE)
    get = lambda row, depth="ground_truth": stats.get(("random", depth, row))  # noqa: E731
    assert verdict(get("R+D"), get("R"), +1) == "holds"          # 21.0-22.5 vs 17.0-18.0, up as the paper
    assert verdict(get("R+O"), get("R"), +1) == "reversed"       # 15.0-16.0 vs 17.0-18.0, down
    assert verdict(get("D"), get("R"), -1) == "within noise"     # 16.0-18.5 overlaps 17.0-18.0
    assert verdict(get("R+D"), get("R"), 0) == "differs"         # a clear difference the paper lacks
    assert verdict(get("R+N"), get("R"), +1) == "not run"
    one_seed = group([record("R", 0, 17.0), record("R+D", 0, 25.0)])
    assert verdict(one_seed[("random", "ground_truth", "R+D")], one_seed[("random", "ground_truth", "R")], +1) \
        == "too few seeds"


def test_the_header_names_a_few_commits_and_counts_many():
    assert code_line(["0123456789abcdef", "fedcba9876543210"]) == "code 0123456789ab, fedcba987654"
    assert code_line([f"{i:040x}" for i in range(4)]) == "code at 4 commits, each run's in the last table"


def test_report_refuses_to_write_over_its_runs_file_or_the_chart_over_the_report(tmp_path):
    runs = tmp_path / "runs.jsonl"
    runs.write_text("".join(json.dumps(r) + "\n" for r in FIXTURE))
    before = runs.read_bytes()
    runner = CliRunner()
    result = runner.invoke(app, ["report", "--runs-file", str(runs), "--out", str(runs),
                                 "--chart", str(tmp_path / "c.png")])
    assert result.exit_code != 0 and "would destroy that input" in result.output
    result = runner.invoke(app, ["report", "--runs-file", str(runs), "--chart", str(runs),
                                 "--out", str(tmp_path / "r.md")])
    assert result.exit_code != 0 and "would destroy that input" in result.output
    result = runner.invoke(app, ["report", "--runs-file", str(runs), "--out", str(tmp_path / "r.md"),
                                 "--chart", str(tmp_path / "r.md")])
    assert result.exit_code != 0 and "is given for two outputs" in result.output  # stages.common.guarded
    assert runs.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.jsonl"]  # nothing written, no temporaries

def test_a_runs_file_that_is_a_folder_or_binary_is_one_line_not_a_traceback(tmp_path):
    binary, folder = tmp_path / "runs.jsonl", tmp_path / "store.zarr"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    folder.mkdir()
    runner = CliRunner()
    for runs, problem in ((folder, "is a folder, not a runs file"), (binary, "not UTF-8 text")):
        result = runner.invoke(app, ["ablation", "--rows", "R", "--seeds", "0", "--runs-file", str(runs), "--dry-run"])
        assert result.exit_code == 2 and problem in result.output and "Traceback" not in result.output
        result = runner.invoke(app, ["report", "--runs-file", str(runs), "--out", str(tmp_path / "r.md"),
                                     "--chart", str(tmp_path / "r.png")])
        assert result.exit_code == 2 and problem in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.jsonl", "store.zarr"]


def test_a_run_recorded_twice_is_refused_not_counted_twice(tmp_path):
    """A line repeated in the runs file would be a seed more and move its row's mean (issue 31, D)."""
    runs = tmp_path / "runs.jsonl"
    lines = [json.dumps(r) + "\n" for r in FIXTURE]
    runs.write_text("".join(lines + [lines[1]]))
    result = CliRunner().invoke(app, ["report", "--runs-file", str(runs), "--out", str(tmp_path / "r.md"),
                                      "--chart", str(tmp_path / "r.png")])
    assert result.exit_code == 2, result.output
    assert f"line {len(lines) + 1} records the run of line 2 again" in result.output
    assert not (tmp_path / "r.md").exists()

def test_report_states_a_verdict_for_every_claim_and_is_rebuilt_byte_for_byte(tmp_path):
    runs = tmp_path / "runs.jsonl"
    runs.write_text("".join(json.dumps(r) + "\n" for r in reversed(FIXTURE)))
    first, second = tmp_path / "a" / "ablation.md", tmp_path / "b" / "ablation.md"
    for out in (first, second):
        write_report(read_runs(runs), out, out.with_suffix(".png"), "runs.jsonl")
    assert first.read_bytes() == second.read_bytes()
    assert first.with_suffix(".png").read_bytes() == second.with_suffix(".png").read_bytes()
    Image.open(first.with_suffix(".png")).verify()
    text = first.read_text()
    for claim in (*CLAIMS, *BTS_CLAIMS):
        line = next(line for line in text.splitlines() if line.startswith(f"| {claim.text}"))
        assert line.count("**") == 2, line
    assert "| regional depth helps RGB: R+D > R | +3.32 (R+D 16.52 vs R 13.20, random) | +4.2 ± 0.9 (2 vs 2)" in text
    assert "**holds**" in text and "**reversed**" in text and "**within noise**" in text and "**not run**" in text
    assert "Verdict rule:" in text
    # BTS claims use R's ground-truth runs as the baseline (R reads no depth).
    assert "| R+D > R with BTS depth | +3.32 (R+D 16.52 vs R 13.20, random) | +2.2 ± 0.6 (2 vs 2)" in text
    assert "Every run read the same data: data/prepared/train.zarr / data/prepared/val.zarr at md5 ? / abc" in text
    # Every run is listed, in a fixed order whatever the file's.
    assert text.count("| 0123456789ab |") == len(FIXTURE)


def test_the_committed_report_is_what_daisnet_report_rebuilds_from_the_committed_runs(tmp_path):
    """The repo's reports/ablation.md and chart come from reports/ablation/runs.jsonl alone: rebuilt in a
    scratch copy with the command's default paths, they are the same bytes."""
    committed = REPO / "reports" / "ablation"
    (tmp_path / "reports" / "ablation").mkdir(parents=True)
    (tmp_path / "reports" / "ablation" / "runs.jsonl").write_bytes((committed / "runs.jsonl").read_bytes())
    result = subprocess.run([sys.executable, "-m", "daisnet.pipeline.cli", "report"], cwd=tmp_path,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    for name in ("ablation.md", "ablation.png", "ablation_depth_quality.png"):
        assert (tmp_path / "reports" / name).read_bytes() == (REPO / "reports" / name).read_bytes(), name


def test_runs_on_different_data_are_flagged_not_averaged_silently():
    later = record("R+D", 2, 30.0)
    later["data"] = {"data/prepared/train.zarr": "fedcba9876", "data/prepared/val.zarr": "0123456789"}
    lines = data_state([*FIXTURE, later])
    assert lines[0].startswith("**Warning: the runs read 2 different data states**")
    assert f"- ? / abc: {len(FIXTURE)} runs" in lines[2] and lines[3] == "- fedcba98 / 01234567: 1 runs (R+D seed 2)"


def test_seeds_owed_follow_the_study_rule():
    owed = seeds_owed(group(FIXTURE))
    # D's range (16.0-18.5) overlaps R's (17.0-18.0): both rows of that claim owe a third seed.
    assert owed[("ground_truth", "D")] == 3 and owed[("ground_truth", "R")] == 3
    # R+D vs R and R+O vs R are separated with 2 seeds: nothing owed; R+D with BTS too (vs R's runs).
    assert not {("ground_truth", "R+D"), ("ground_truth", "R+O"), ("bts:200", "R+D")} & set(owed)
    assert owed[("ground_truth", "R+NL")] == 2 and owed[("bts:200", "R+DN+N")] == 2 and ("bts:200", "R") not in owed
    commands = owed_commands(owed, [r.name for r in ROWS])
    assert commands[0].startswith("daisnet ablation --rows R+DN,D+N,N,R+N,") and commands[0].endswith("--seeds 0,1")
    assert commands[1] == "daisnet ablation --rows R,D --depth ground_truth --seeds 0,1,2"
    assert commands[2] == "daisnet ablation --rows R+N,R+DN+N,R+O --depth bts:200 --seeds 0,1"
    # A row under 10 AP owes 3 seeds even when separated from R; once it has them, nothing is owed.
    low = [record("R", 0, 17.0), record("R", 1, 18.0), record("D+N", 0, 8.0), record("D+N", 1, 9.0)]
    assert seeds_owed(group(low))[("ground_truth", "D+N")] == 3
    assert ("ground_truth", "D+N") not in seeds_owed(group([*low, record("D+N", 2, 8.5)]))


def test_read_runs_names_a_bad_line(tmp_path):
    runs = tmp_path / "runs.jsonl"
    runs.write_text(json.dumps(record("R", 0, 17.0)) + "\n{not json\n")
    with pytest.raises(InputError, match="line 2 is not a run record"):
        read_runs(runs)
    assert read_runs(tmp_path / "absent.jsonl") == []


def test_the_plan_covers_the_study_and_refuses_what_it_cannot_run():
    specs = plan(STUDY_ROWS, [0, 1], ["ground_truth"], "ablation") + plan(BTS_ROWS, [0, 1], ["bts"], "ablation")
    assert len(specs) == 2 * (len(STUDY_ROWS) + len(BTS_ROWS)) and len({s.key for s in specs}) == len(specs)
    claimed = {c.row for c in (*CLAIMS, *BTS_CLAIMS)} | {c.against for c in (*CLAIMS, *BTS_CLAIMS)}
    assert claimed <= set(STUDY_ROWS)
    with pytest.raises(InputError, match="unknown rows"):
        plan(["R+X"], [0], ["ground_truth"], "ablation")
    with pytest.raises(InputError, match="changes the data"):
        plan(["R"], [0], ["ground_truth"], "gpu")
    with pytest.raises(InputError, match="unknown depth source"):
        plan(["R"], [0], ["lidar"], "ablation")


def test_a_run_gets_params_yaml_with_profile_row_seed_and_depth_source():
    spec = RunSpec("R+DS1", seed=3, depth_source="bts")
    params = params_for(spec, REPO / "params.yaml")
    assert params["model"]["inputs"] == ["rgb", "depth"] and params["features"]["regional"]["step"] == 1.0
    assert params["seed"] == 3 and params["depth"]["source"] == "bts"
    assert params["train"]["iterations"] == 1000
    assert spec.overrides()["features.regional.step"] == "1.0"


def test_cli_ablation_dry_run_and_report_refusals(tmp_path):
    runner = CliRunner()
    runs = tmp_path / "runs.jsonl"
    runs.write_text(json.dumps(record("R", 0, 17.0)) + "\n")
    result = runner.invoke(app, ["ablation", "--rows", "R,R+D", "--seeds", "0", "--runs-file", str(runs), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "done: ablation-random-R-seed0" in result.output and "to run: ablation-random-R_D-seed0" in result.output
    result = runner.invoke(app, ["ablation", "--rows", "R+Q", "--dry-run"])
    assert result.exit_code != 0 and "unknown rows" in result.output
    result = runner.invoke(app, ["report", "--runs-file", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "r.md")])
    assert result.exit_code != 0 and "no runs recorded yet" in result.output


def tiny_repo(tiny_features: dict[str, Path], root: Path) -> dict[str, str]:
    """A tiny pipeline laid out as the repo's data/, with a small model; returns the environment to run in."""
    for name, key in (("prepared", ""), ("depth", "depth_"), ("features", "features_")):
        for split in ("train", "val"):
            (root / "data" / name).mkdir(parents=True, exist_ok=True)
            os.symlink(tiny_features[f"{key}{split}"], root / "data" / name / f"{split}.zarr")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"].update({"min_size": 64, "max_size": 128, "mask_head_width": 16, "representation_size": 32})
    params["train"].update({"checkpoint_every": 1})
    params["evaluate"]["samples"] = 0
    params["shape_prior"].update({"iterations": 20, "batch_size": 32, "clusters": 4, "copies": 2,
                                  "kmeans_iterations": 5, "top_k": 2})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.mark.slow
def test_a_tiny_study_runs_the_real_stages_and_continues_where_it_stopped(tiny_features, tmp_path):
    """Real `daisnet train`/`evaluate` (and `features` for R+DS1) on a tiny pipeline laid out as the
    repo's data/; stopped after its first run, the study's rerun skips it and does the rest."""
    root = tmp_path / "repo"
    env = tiny_repo(tiny_features, root)
    command = [sys.executable, "-m", "daisnet.pipeline.cli", "ablation", "--rows", "R,R+DS1", "--seeds", "0",
               "--profile", "smoke"]
    subprocess.run(command[:-1] + ["smoke", "--rows", "R"], cwd=root, env=env, check=True, capture_output=True)
    first = read_runs(root / "reports" / "ablation" / "runs.jsonl")
    assert [r["row"] for r in first] == ["R"]
    out = subprocess.run(command, cwd=root, env=env, check=True, capture_output=True, text=True).stdout
    assert "1 of 2 runs already in" in out
    records = read_runs(root / "reports" / "ablation" / "runs.jsonl")
    assert [r["row"] for r in records] == ["R", "R+DS1"] and records[0] == first[0]
    ds1 = records[1]
    assert ds1["overrides"]["features.regional.step"] == "1.0" and ds1["iterations"] == 30
    assert ds1["features"]["stores"][0].startswith("data/cache/study/features-ground_truth-")
    assert set(ds1["metrics"]) >= {"amodal", "visible", "per_class", "occlusion"}
    assert "data/features/train.zarr" not in ds1["data"] and "data/prepared/train.zarr" in ds1["data"]
    # A stage that fails (no ImageNet weights yet) stops the study with one line, records nothing.
    imagenet_command = command[:4] + ["--rows", "R", "--seeds", "0", "--profile", "smoke", "--weights", "imagenet"]
    failed = subprocess.run(imagenet_command, cwd=root, env=env, capture_output=True, text=True)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr, failed.stderr
    assert "a stage of the study failed" in failed.stderr and "continues where it stopped" in failed.stdout
    assert read_runs(root / "reports" / "ablation" / "runs.jsonl") == records
    # The ImageNet half: the one command, with a weights file where params.yaml says (made here).
    import torchvision

    (root / "data" / "weights").mkdir()
    torch_save(torchvision.models.resnet18().state_dict(), root / "data" / "weights" / "resnet18-imagenet.pth")
    subprocess.run(imagenet_command, cwd=root, env=env, check=True, capture_output=True)
    imagenet = read_runs(root / "reports" / "ablation" / "runs.jsonl")[-1]
    assert (imagenet["row"], imagenet["weights"]) == ("R", "imagenet")
    assert imagenet["overrides"]["model.weights"] == "imagenet"


@pytest.mark.slow
def test_a_shape_row_with_its_own_setting_gets_its_own_shape_models(tiny_features, tmp_path):
    """R+S trains with the pipeline's shape autoencoder and codebook; R+SV (depth mode `visible`) gets
    its own, built by the shape_ae and codebook stages under data/cache/study, and records them."""
    import torch

    root = tmp_path / "repo"
    env = tiny_repo(tiny_features, root)
    cli = [sys.executable, "-m", "daisnet.pipeline.cli"]
    models = root / "data" / "models"
    for stage in (["shape-ae", "data/prepared/train.zarr", "data/depth/train.zarr", str(models / "shape_ae.pt")],
                  ["codebook", str(models / "shape_ae.pt"), "data/prepared/train.zarr", "data/depth/train.zarr",
                   str(models / "codebook.npz")]):
        subprocess.run(cli + stage, cwd=root, env=env, check=True, capture_output=True)
    subprocess.run(cli + ["ablation", "--rows", "R+S,R+SV", "--seeds", "0", "--profile", "smoke"], cwd=root, env=env,
                   check=True, capture_output=True)
    s, sv = read_runs(root / "reports" / "ablation" / "runs.jsonl")
    assert (s["row"], sv["row"]) == ("R+S", "R+SV")
    assert s["shape"]["models"] == ["data/models/shape_ae.pt", "data/models/codebook.npz"]
    assert {"data/models/shape_ae.pt", "data/models/codebook.npz"} <= set(s["data"])
    assert "data/models/shape_ae.pt" not in sv["data"]
    autoencoder, codebook = (root / path for path in sv["shape"]["models"])
    assert autoencoder.parent.name.startswith("shape-ground_truth-") and codebook.is_file()
    assert torch.load(autoencoder, weights_only=True)["meta"]["depth"] == "visible"
    assert (autoencoder.parent / "shape_ae.json").is_file() and sv["metrics"]["amodal"]["AP"] >= 0


def torch_save(state: dict, path: Path) -> None:
    import torch

    torch.save(state, path)


def test_every_ablation_row_overrides_valid_params():
    for row in ROWS:
        params = params_for(RunSpec(row.name, 0), REPO / "params.yaml")
        from daisnet.params import validate

        validate(params, f"row {row.name}")
    assert ROW_BY_NAME["R+DN+N"].overrides["model.inputs"] == "[rgb,depth_raw,normal]"


def test_paper_table_is_transcribed_verbatim_and_matches_the_text() -> None:
    paper = load_paper_table()
    rows = {(r["weights"], r["label"]): r for r in paper["rows"] if r["label"]}
    assert len(paper["rows"]) == 25 and len(rows) == 21
    # The two rows placed by the table's order, not printed labels (docs/fidelity.md).
    assert rows[("random", "D+N")]["AP"] == 9.55 and rows[("random", "N")]["AP"] == 11.26
    if PAPER_TEXT.exists():  # each row's marks and numbers are one line of the paper's text
        text = PAPER_TEXT.read_text(encoding="utf-8")
        for r in paper["rows"]:
            numbers = " ".join(f"{r[c]:.2f}" for c in paper["columns"])
            assert f"{r['printed_marks']} {numbers}" in text, r
    # The relative changes the prose states (§5.2-5.6) hold for the labels we gave the rows.
    def change(a: tuple[str, str], b: tuple[str, str]) -> float:
        return (rows[a]["AP"] / rows[b]["AP"] - 1) * 100

    R, I = "random", "imagenet"
    claims = [((R, "R+D"), (R, "R"), 25), ((R, "D"), (R, "R"), -18), ((R, "D"), (R, "R+D"), -35),
              ((R, "R+O"), (R, "R"), 30), ((R, "R+D+N"), (R, "R+D"), -3), ((R, "R+D+O"), (R, "R+O"), -0.2),
              ((I, "R+N"), (I, "R+D"), 6), ((I, "R+NM"), (I, "R+N"), -29), ((I, "R+DS1"), (I, "R+D"), -2),
              ((I, "R+O"), (I, "R+D"), 11), ((I, "R+S"), (I, "R+D"), 7), ((I, "R+SV"), (I, "R+S"), -2),
              ((I, "R+D+N"), (I, "R+D"), 1), ((I, "R+D+N"), (I, "R+N"), -5), ((I, "R+D+O"), (I, "R+O"), -10)]
    for a, b, stated in claims:
        assert change(a, b) == pytest.approx(stated, abs=1.5), (a, b)


def test_every_profile_override_names_a_real_param_and_gives_valid_configs() -> None:
    """A profile key that params.yaml lacks would make `dvc exp run -S` add a dead param silently."""
    from daisnet.params import validate
    from daisnet.pipeline.ablation import PROFILES
    from stages.synth import synth_config
    from stages.train import model_config, train_config

    from daisnet.params import SCHEMA_DEFAULTS

    params = yaml.safe_load(Path("params.yaml").read_text())
    for name, overrides in PROFILES.items():
        merged = json.loads(json.dumps(params))
        for key, value in overrides.items():
            *parents, leaf = key.split(".")
            section = merged
            for part in parents:
                section = section.setdefault(part, {}) if key in SCHEMA_DEFAULTS else section[part]
            # a key params.yaml leaves to the schema is real too (`dvc exp run -S '+key=value'`)
            assert leaf in section or key in SCHEMA_DEFAULTS, f"profile {name}: {key} is not in params.yaml"
            section[leaf] = yaml.safe_load(value)
        profile = validate(merged, f"profile {name}")  # raises on a bad value
        model_config(profile), train_config(profile)
        synth_config(profile).validate()


def test_the_oracle_rows_name_the_limiting_part_and_long_runs_are_curves_not_rows(tmp_path):
    base = [record("R", 0, 17.0), record("R", 1, 18.0)]
    learned_limits = [record("R+O", 0, 17.5), record("R+O", 1, 18.5), record("R+O*", 0, 22.0), record("R+O*", 1, 23.0)]
    reader_limits = [record("R+S", 0, 16.0), record("R+S", 1, 17.0), record("R+S*", 0, 17.2), record("R+S*", 1, 17.8)]
    weighted = [record("R+OW", 0, 19.0), record("R+OW", 1, 20.0)]  # a variant of the learned edge head
    learned_limits[2]["mask_ceiling"] = {"amodal_AP": 27.0}  # one R+O* seed re-evaluated with perfect masks
    weighted[0]["mask_ceiling"] = {"amodal_AP": 26.0, "hidden_amodal_AP": 19.5}  # 19.0 with its own masks
    weighted[1]["mask_ceiling"] = {"amodal_AP": 27.0, "hidden_amodal_AP": 20.5}  # 20.0
    for r, f1 in zip(learned_limits, (0.31, 0.33, 0.30, 0.32)):
        r["metrics"]["edge"] = {"precision": 0.4, "recall": 0.3, "f1": f1}
    long_run = {**record("R", 0, 25.0), "profile": "long", "iterations": 3000,
                "curve": [{"iterations": 1000, "amodal_AP": 12.0, "visible_AP": 9.0},
                          {"iterations": 2000, "amodal_AP": 20.0, "visible_AP": 15.0},
                          {"iterations": 3000, "amodal_AP": 25.0, "visible_AP": 20.0}]}
    out = tmp_path / "ablation.md"
    write_report([*base, *learned_limits, *reader_limits, *weighted, long_run], out, tmp_path / "ablation.png", "runs.jsonl")
    text = out.read_text()
    section = text[text.index("## Occlusion edges and the shape prior"):]
    assert "| R+O* | 2 | 22.50 | 22.0-23.0 | +5.0 ± 0.7 | +4.5 ± 0.7 | 0.310 | 27.00 (1 of 2 seeds) | – |" in section
    assert "| R+OW | 2 | 19.50 | 19.0-20.0 | +2.0 ± 0.7 | +1.5 ± 0.7 | – | 26.50 | 20.00 |" in section
    # the two runs measured both ways: +7.0 with perfect masks, +0.5 with them only behind occluders
    assert "perfect amodal masks would add +7.0 AP" in section and "the hidden part" in section
    assert "the hidden part, is worth +0.5 AP to these detections when perfect (perfect masks everywhere: +7.0)" in section  # beside R+O, vs R and R+O
    assert section.index("| R+O |") < section.index("| R+OW |") < section.index("| R+O* |")
    assert "**the edge head limits**" in section
    assert "**the prior's fusion (or the schedule) limits**" in section
    assert "| R | 1 | 12.00 (12.0-12.0) | 20.00 (20.0-20.0) | 25.00 (25.0-25.0) |" in section
    Image.open(tmp_path / "ablation_curves.png").verify()
    # the 3000-iteration run is a curve: R's row still averages its two 1000-iteration seeds
    rows = text[text.index("## Rows, ground-truth depth"):]
    assert next(line for line in rows.splitlines() if line.startswith("| R |")).count("17.50") == 1
    assert text.count("| 0123456789ab |") == 12


def long_record(row: str, seed: int, aps: tuple[float, float, float]) -> dict:
    """A run of the `long` profile: 3000 iterations, evaluated at 1000 and 2000 on the way."""
    return {**record(row, seed, aps[-1]), "profile": "long", "iterations": 3000,
            "curve": [{"iterations": i, "amodal_AP": ap, "visible_AP": ap - 5} for i, ap in zip((1000, 2000, 3000), aps)]}


def test_the_curves_say_whether_the_schedule_limits_each_claim(tmp_path):
    short = [record(row, seed, ap) for row, aps in {"R": (17.0, 18.0), "R+O": (17.2, 18.1), "R+O*": (17.5, 18.2),
                                                   "R+S": (16.0, 17.0), "R+S*": (17.1, 17.9)}.items()
             for seed, ap in enumerate(aps)]
    long = [long_record("R", 0, (17.0, 20.0, 22.0)), long_record("R", 1, (18.0, 21.0, 23.0)),
            # the weighted edge head pulls away only after 1000 iterations: 2000 overlaps, 3000 apart
            long_record("R+OW", 0, (17.5, 21.5, 25.0)), long_record("R+OW", 1, (18.5, 22.0, 26.0)),
            long_record("R+S", 0, (16.0, 20.0, 21.0)), long_record("R+S", 1, (17.5, 21.5, 22.5))]
    long[0]["mask_ceiling"] = {"amodal_AP": 34.0, "hidden_amodal_AP": 23.0}  # R seed 0 ends at 22.0
    long[2]["mask_ceiling"] = {"amodal_AP": 36.0, "hidden_amodal_AP": 25.5}  # R+OW seed 0 ends at 25.0
    out = tmp_path / "ablation.md"
    write_report([*short, *long], out, tmp_path / "ablation.png", "runs.jsonl")
    Image.open(tmp_path / "ablation_curves.png").verify()
    section = out.read_text().split("## Occlusion edges and the shape prior")[1]
    assert "Mask ceiling at the end of these runs (2 measured both ways): perfect amodal masks would add +11.5 AP" in section
    assert "perfect masks only in the hidden part +0.8." in section
    # where each row's gain comes from, at the end: visible AP (ap - 5 here) and the ceilings its runs measured
    assert "| R | 2 | 17.50 (17.0-18.0) | 20.50 (20.0-21.0) | 22.50 (22.0-23.0) | 17.50 | 34.00 (1 of 2) | 23.00 (1 of 2) |" in section
    assert "| R+S | 2 | 16.75 (16.0-17.5) | 20.75 (20.0-21.5) | 21.75 (21.0-22.5) | 16.75 | – | – |" in section
    edges = next(line for line in section.splitlines() if line.startswith("| occlusion edges help"))
    prior = next(line for line in section.splitlines() if line.startswith("| the 3D shape prior helps"))
    assert "**the schedule limits**" in edges
    assert "R+OW +3.0 AP over R at 3000 iterations (2 seeds, ranges apart)" in edges
    # R+S never clears R: its best point is 2000 iterations (+0.2), with overlapping ranges
    assert "**the prior's fusion, not the schedule, limits**" in prior
    assert "R+S +0.2 AP over R at 2000 iterations (2 seeds, ranges overlap)" in prior
    # with one seed of a row on the curves, its point says so once, not as a count
    one = [r for r in long if not (r["row"] == "R+S" and r["seed"] == 1)]
    write_report([*short, *one], out, tmp_path / "ablation.png", "runs.jsonl")
    assert "R+S -0.5 AP over R at 2000 iterations (one seed)" in out.read_text()
    # without the curves the diagnosis says they are owed
    write_report(short, out, None, "runs.jsonl")
    assert "(or the schedule) limits" in out.read_text() and "are not run yet" in out.read_text()


def test_the_side_charts_are_named_after_the_main_chart_in_one_place():
    from daisnet.pipeline.chart_paths import SIDE_CHARTS, chart_beside
    from daisnet.pipeline.cli import OUT_CHARTS

    chart = Path("out/study.png")
    assert [chart_beside(chart, kind) for kind in SIDE_CHARTS] == [Path("out/study_depth_quality.png"),
                                                                   Path("out/study_curves.png")]
    assert [path for path, _ in OUT_CHARTS.outputs(str(chart), {})] == [chart, *(chart_beside(chart, k) for k in SIDE_CHARTS)]
    with pytest.raises(ValueError, match="unknown side chart"):
        chart_beside(chart, "edges")


def test_the_study_measures_the_mask_ceiling_of_every_row_the_edges_section_shows():
    from daisnet.pipeline.ablation import MASK_CEILING_ROWS
    from daisnet.pipeline.edges_and_prior import PARTS
    from daisnet.pipeline.study import _wants_mask_ceiling

    shown = {"R"} | {name for p in PARTS for name in (p.learned, p.oracle, *p.variants)}
    assert shown == set(MASK_CEILING_ROWS) and shown <= set(ROW_BY_NAME)
    assert _wants_mask_ceiling(RunSpec("R+O*", 0)) and not _wants_mask_ceiling(RunSpec("R+D", 0))
    assert not _wants_mask_ceiling(RunSpec("R+O", 0, depth_source="bts:650"))  # the section is ground truth only
