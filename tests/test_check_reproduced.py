"""`.ci/check_reproduced.py`'s allowance for BTS trained on another CPU: only BTS's outputs, and
the depth stages' dependence on its checkpoint, are forgiven, and only at the committed quality."""

from __future__ import annotations

import importlib.util

from corpus import ROOT

spec = importlib.util.spec_from_file_location("check_reproduced", ROOT / ".ci" / "check_reproduced.py")
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)

# What `dvc status --json` printed on a Zen 5 host against the Zen 4 host's dvc.lock (2026-12-05),
# with a code change of the data stages added.
STATUS = {
    "depth@train": [{"changed deps": {"data/models/bts.pt": "modified"}}],
    "depth@val": [{"changed deps": {"daisnet/atomic.py": "modified", "data/models/bts.pt": "modified"}}],
    "train_depth": [{"changed outs": {"data/models/bts.pt": "not in cache", "reports/depth.details.json": "modified",
                                      "reports/depth.json": "modified"}}],
    "shape_ae": [],
}


def test_only_btss_outputs_are_taken_out() -> None:
    assert check.real_changes(check.without(STATUS, check.CPU_DEPENDENT)) == {
        "depth@val": [{"changed deps": {"daisnet/atomic.py": "modified"}}]}
    assert check.without({"features": ["changed checksum"]}, check.CPU_DEPENDENT) == {"features": ["changed checksum"]}
    assert sorted(check.real_changes(STATUS)) == ["depth@train", "depth@val", "train_depth"]


def test_bts_must_keep_the_committed_quality() -> None:
    then = {"val": {"abs_rel": 0.1755}}
    holds, line = check.bts_within(then, {"val": {"abs_rel": 0.1596}}, 0.03)
    assert holds and "0.1596" in line and "0.1755" in line and "OUTSIDE" not in line
    holds, line = check.bts_within(then, {"val": {"abs_rel": 0.2100}}, 0.03)
    assert not holds and line.endswith("OUTSIDE")
