"""Never lose data (issue 31, classes A-C): every output path of every command is checked before any
work, in one place (`stages.common.guarded` -> `daisnet.atomic.check_outputs`), and `atomic_output`
itself never replaces a folder holding files daisnet did not write.

A: an existing output folder holding a user's file is refused, whatever the command.
B: a folder daisnet wrote, with a user's file added later, is refused (the marker lists its files).
C: outputs are checked against the inputs and against each other, derived outputs (the report
   beside a store, the depth-quality chart beside the chart) included.
Each refusal is one line naming the path, exit status 2, and the user's file is still there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from daisnet.atomic import MARKER, atomic_output, check_replaceable, foreign_files
from daisnet.errors import InputError
from daisnet.pipeline.cli import app


def invoke(*args: object) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def user_folder(path: Path, name: str = "keep.txt") -> Path:
    (path / name).parent.mkdir(parents=True, exist_ok=True)
    (path / name).write_text("the user's own work\n")
    return path / name


def assert_refused(result, path: Path, words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert str(path) in lines[0] and words in lines[0], lines[0]


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    """Paths that exist (the guard runs before any input is read)."""
    made = {}
    for name in ("prep.zarr", "depth.zarr", "raw", "feat.zarr"):
        (tmp_path / name).mkdir()
        made[name.split(".")[0]] = tmp_path / name
    for name in ("model.pt", "ae.pt", "runs.jsonl", "files.txt"):
        (tmp_path / name).write_text("x")
        made[name.split(".")[0]] = tmp_path / name
    return made


# (command line with OUT where the user's folder goes) - class A, one per command that writes
CLASS_A = {
    "synth": ["synth", "OUT"],
    "rasterize": ["rasterize", "{raw}", "OUT", "--split", "val"],
    "depth": ["depth", "{prep}", "OUT"],
    "train-depth": ["train-depth", "{prep}", "{depth}", "OUT"],
    "train": ["train", "{prep}", "OUT"],
    "train --live": ["train", "{prep}", "{tmp}/m.pt", "--live", "OUT"],
    "train --summary": ["train", "{prep}", "{tmp}/m.pt", "--summary", "OUT"],
    "shape-ae": ["shape-ae", "{prep}", "{depth}", "OUT"],
    "shape-ae --metrics": ["shape-ae", "{prep}", "{depth}", "{tmp}/ae2.pt", "--metrics", "OUT"],
    "codebook": ["codebook", "{ae}", "{prep}", "{depth}", "OUT"],
    "evaluate --reports": ["evaluate", "{model}", "{prep}", "--out", "{tmp}/e", "--reports", "OUT"],
    "evaluate --out": ["evaluate", "{model}", "{prep}", "--out", "OUT"],
    "kitti": ["kitti", "{files}", "{raw}", "{raw}", "OUT"],
    "report": ["report", "--runs-file", "{runs}", "--out", "OUT", "--chart", "{tmp}/c.png"],
    "inspect": ["inspect", "{prep}", "--out", "OUT"],
    "predict": ["predict", "{model}", "--out", "OUT"],
    "train-depth --timings": ["train-depth", "{prep}", "{depth}", "{tmp}/b.pt", "--timings", "OUT"],
}


@pytest.mark.parametrize("case", sorted(CLASS_A))
def test_a_folder_holding_a_users_file_is_never_replaced(case: str, inputs, tmp_path: Path) -> None:
    out = tmp_path / "user"
    keep = user_folder(out)
    args = [a.format(tmp=tmp_path, **inputs) if a != "OUT" else out for a in CLASS_A[case]]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert keep.read_text() == "the user's own work\n"
    assert str(out) in result.output and "Traceback" not in result.output


def test_features_refuses_a_users_folder_where_a_store_goes(inputs, tmp_path: Path) -> None:
    keep = user_folder(tmp_path / "userf" / "depth.zarr")
    result = invoke("features", inputs["depth"], "--out-dir", tmp_path / "userf")
    assert_refused(result, tmp_path / "userf" / "depth.zarr", "daisnet did not write")
    assert keep.exists()


def test_a_folder_daisnet_wrote_with_a_users_file_added_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    with atomic_output(out) as tmp:
        tmp.mkdir()
        (tmp / "predictions.json").write_text("[]")
    assert (out / MARKER).is_file() and foreign_files(out) == []
    check_replaceable(out, "folder")  # ours, untouched: replaceable
    keep = user_folder(out, "mywork/thesis.tex")
    assert foreign_files(out) == [Path("mywork/thesis.tex")]
    with pytest.raises(InputError, match=r"holds mywork/thesis\.tex that daisnet did not write"):
        check_replaceable(out, "folder")
    with pytest.raises(InputError):  # the library path refuses too, not only the commands
        with atomic_output(out) as tmp:
            tmp.mkdir()
    assert keep.exists() and (out / "predictions.json").exists()


def test_a_user_file_added_while_the_work_ran_is_not_deleted(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    with atomic_output(out) as tmp:
        tmp.mkdir()
        (tmp / "a.json").write_text("1")
    with pytest.raises(InputError, match="notes.txt"):
        with atomic_output(out) as tmp:
            tmp.mkdir()
            (tmp / "a.json").write_text("2")
            user_folder(out, "notes.txt")  # the user writes into the old folder meanwhile
    assert (out / "notes.txt").exists() and (out / "a.json").read_text() == "1"


def test_a_zarr_store_is_replaced_and_a_foreign_file_in_it_is_not(tmp_path: Path) -> None:
    import zarr

    store = tmp_path / "s.zarr"
    zarr.open_group(store, mode="w").create_array("x", shape=(4,), dtype="i4")[:] = 1
    assert foreign_files(store, "store") == []
    user_folder(store, "notes.txt")
    assert foreign_files(store, "store") == [Path("notes.txt")]


def test_a_file_output_where_a_folder_is_and_the_reverse(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        check_replaceable(tmp_path / "d", "file")
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        check_replaceable(tmp_path / "f", "folder")


# Class C: outputs against inputs and against each other.
def test_two_outputs_on_one_path_are_refused(inputs, tmp_path: Path) -> None:
    model = tmp_path / "ae.pt"
    result = invoke("shape-ae", inputs["prep"], inputs["depth"], model, "--metrics", model)
    assert_refused(result, model, "two outputs")
    result = invoke("train", inputs["prep"], tmp_path / "m.pt", "--summary", tmp_path / "m.pt")
    assert_refused(result, tmp_path / "m.pt", "two outputs")
    result = invoke("evaluate", inputs["model"], inputs["prep"], "--out", tmp_path / "e", "--reports", tmp_path / "e")
    assert_refused(result, tmp_path / "e", "two outputs")
    result = invoke("synth", tmp_path / "s", "--report", tmp_path / "s")
    assert_refused(result, tmp_path / "s", "two outputs")
    result = invoke("codebook", inputs["ae"], inputs["prep"], inputs["depth"], tmp_path / "c.npz", "--report",
                    tmp_path / "c.npz")
    assert_refused(result, tmp_path / "c.npz", "two outputs")


def test_an_output_inside_another_is_refused(tmp_path: Path) -> None:
    result = invoke("synth", tmp_path / "s", "--report", tmp_path / "s" / "r.json")
    assert_refused(result, tmp_path / "s", "holds the output")


def test_an_output_onto_an_input_is_refused(inputs, tmp_path: Path) -> None:
    result = invoke("train", inputs["prep"], tmp_path / "m.pt", "--summary", inputs["prep"])
    assert result.exit_code == 2 and "input" in result.output
    assert inputs["prep"].is_dir()


def test_the_report_beside_a_store_never_overwrites_the_annotations(tmp_path: Path) -> None:
    q = tmp_path / "q"
    q.mkdir()
    annotations = q / "val.report.json"
    annotations.write_text('{"images": [], "annotations": [], "categories": []}')
    (q / "img").mkdir()
    result = invoke("rasterize", annotations, q / "val.zarr", "--images", q / "img")
    assert result.exit_code == 2 and "input" in result.output, result.output
    assert annotations.read_text().startswith('{"images"')


def test_a_users_file_where_the_report_goes_is_refused(inputs, tmp_path: Path) -> None:
    q2 = tmp_path / "q2"
    q2.mkdir()
    mine = q2 / "val.report.json"
    mine.write_text("my notes")
    result = invoke("rasterize", inputs["raw"], q2 / "val.zarr", "--split", "val")
    assert_refused(result, mine, "not a report daisnet wrote")
    assert mine.read_text() == "my notes"


def test_the_charts_of_the_report_are_outputs_too(inputs, tmp_path: Path) -> None:
    beside = tmp_path / "c_depth_quality.png"
    beside.mkdir()
    user_folder(beside)
    result = invoke("report", "--runs-file", inputs["runs"], "--out", tmp_path / "r.md", "--chart", tmp_path / "c.png")
    assert_refused(result, beside, "is a folder")


def test_every_command_is_guarded() -> None:
    """A new command cannot forget the check: every registered command goes through `guarded`."""
    from daisnet.pipeline.cli import app as cli

    unguarded = [c.name for c in cli.registered_commands
                 if c.name not in ("ablation", "score", "bounds") and not getattr(c.callback, "guarded", False)]
    assert unguarded == []
