"""dvc.yaml's deps cover every project file each stage's command imports, transitively.

A stage whose deps miss a file it imports is not re-run when that file changes: `dvc repro` then
calls stale results up to date. The import closure is computed from the code (every `import` and
`from ... import` statement, including the ones inside functions, plus the `__init__.py` of every
package on the way), so the check cannot drift the way a hand-written list does.
"""

from __future__ import annotations

import ast
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("daisnet", "stages")


def _module_file(module: str) -> Path | None:
    """The project file of a dotted module name (a module or a package's __init__), or None."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _with_parents(module: str) -> list[str]:
    """Importing a.b.c runs a/__init__, a/b/__init__ and a/b/c."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _package_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts)
    return ".".join(parts[:-1])


def _imports(path: Path) -> set[str]:
    """Dotted names of the project modules one file imports (absolute and relative imports)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_with_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(path).split(".")
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.update(_with_parents(base))
            # `from pkg import name`: name may itself be a submodule
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return {name for name in found if _module_file(name) is not None}


def import_closure(module: str) -> set[Path]:
    """Every project file that `python -m module` executes, as paths relative to the root."""
    todo = [m for m in _with_parents(module) if _module_file(m) is not None]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_imports(_module_file(name)) - seen)  # type: ignore[arg-type]
    return {_module_file(name).relative_to(ROOT) for name in seen}  # type: ignore[union-attr]


def stage_definitions() -> dict[str, tuple[str, list[str]]]:
    """stage name -> (the module its cmd runs with `python -m`, its deps), foreach stages expanded once."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    result = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        argv = shlex.split(body["cmd"])
        assert argv[:2] == ["python", "-m"], f"stage {name}: cmd should be `python -m <module> ...`"
        result[name] = (argv[2], [str(d) for d in body.get("deps", [])])
    return result


def missing_deps(module: str, deps: list[str]) -> list[str]:
    """Project files imported by `module` that no dep (file or folder) covers."""
    covered = [Path(d) for d in deps if "${" not in d]

    def is_covered(path: Path) -> bool:
        return any(path == dep or dep in path.parents for dep in covered)

    return sorted(str(p) for p in import_closure(module) if not is_covered(p))


STAGES = stage_definitions()


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_deps_cover_the_import_closure(stage: str) -> None:
    module, deps = STAGES[stage]
    assert _module_file(module) is not None, f"stage {stage}: no module {module}"
    assert missing_deps(module, deps) == [], f"dvc.yaml stage {stage} misses deps it imports"


def test_removing_one_dep_is_caught() -> None:
    """The check is not vacuous: drop any one project-code dep of a stage and it fails."""
    for stage, (module, deps) in STAGES.items():
        code_deps = [d for d in deps if d.split("/")[0] in PACKAGES]
        assert code_deps, stage
        for dep in code_deps:
            fewer = [d for d in deps if d != dep]
            assert missing_deps(module, fewer), f"stage {stage}: dep {dep} is not needed by any import"


def test_closure_follows_imports_inside_functions_and_packages() -> None:
    closure = import_closure("stages.train_depth")
    # direct, transitive and package __init__ files
    for expected in ("stages/train_depth.py", "stages/common.py", "daisnet/depth/train.py",
                     "daisnet/depth/decoder.py", "daisnet/__init__.py", "daisnet/depth/__init__.py",
                     "daisnet/stores.py", "daisnet/atomic.py", "daisnet/params.py"):
        assert Path(expected) in closure, expected
    assert Path("daisnet/train/loop.py") not in closure  # no stray DAISnet training code
