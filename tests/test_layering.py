"""The core library knows nothing of DVC or of the pipeline scripts (docs/architecture.md).

Core: every module of `daisnet` except `daisnet.pipeline` (the command line and the DVC-aware
code). The core may not import dvc, dvclive, `stages` or `daisnet.pipeline`, not even inside a
function, and may not run the `dvc` command.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("dvc", "dvclive", "stages", "daisnet.pipeline")


def violations(source: str) -> list[str]:
    """What in one module's source breaks the layering: forbidden imports and a `dvc` command."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN):
                found.append(f"imports {name}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.split(" ")[0] == "dvc":
            found.append(f"runs {node.value!r}")
    return found


def core_modules() -> list[Path]:
    return sorted(p for p in (ROOT / "daisnet").rglob("*.py") if "pipeline" not in p.relative_to(ROOT).parts)


def test_core_library_imports_no_dvc_and_no_pipeline() -> None:
    modules = core_modules()
    assert len(modules) > 40
    bad = {str(p.relative_to(ROOT)): v for p in modules if (v := violations(p.read_text()))}
    assert bad == {}


def test_the_check_catches_each_kind_of_violation() -> None:
    assert violations("def f():\n    from dvclive import Live\n") == ["imports dvclive"]
    assert violations("import dvc.api\n") == ["imports dvc.api"]
    assert violations("from stages.depth import predictor\n") == ["imports stages.depth"]
    assert violations("from daisnet.pipeline.cli import app\n") == ["imports daisnet.pipeline.cli"]
    assert violations("subprocess.run(['dvc', 'exp', 'show'])\n") == ["runs 'dvc'"]
    assert violations("import dvcx_other\nname = 'dvc.yaml'\n") == []
