"""`geoha render` is repeatable: the same spec, rendered twice, gives byte-identical files.

Each render runs in a fresh process with its own hash seed, so output that follows the
iteration order of a set (or of anything built from one) differs between the two.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from geoha.cloud.choices import RenderKind
from geoha.cloud.render_commands import RENDERERS
from geoha.cloud.vms import cloud_plan
from geoha.spec import load_spec
from tests.geoha_cli import geoha


def tree(folder: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry under `folder`: its permission bits and, for a file, its bytes."""
    return {
        str(path.relative_to(folder)): (
            stat.S_IMODE(path.stat().st_mode),
            path.read_bytes() if path.is_file() else None,
        )
        for path in folder.rglob("*")
    }


@pytest.mark.parametrize("kind", [k.value for k in RenderKind])
def test_rendering_twice_gives_byte_identical_files(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trees = []
    for seed in ("1", "2"):
        monkeypatch.setenv("PYTHONHASHSEED", seed)
        result = geoha(tmp_path, "render", kind, f"out-{seed}")
        assert result.returncode == 0, result.stderr
        trees.append(tree(tmp_path / f"out-{seed}"))
    first, second = trees
    assert sorted(first) == sorted(second)
    files = RENDERERS[RenderKind(kind)](cloud_plan(load_spec(None)))
    assert sum(content is not None for _, content in first.values()) == len(files)
    for name in first:
        assert first[name] == second[name], f"{name} differs between two renders"
