"""`geoha render terraform|cloud-init OUT [-f FILE]`: the cloud outputs, written atomically.

Everything is rendered into a temporary folder next to OUT first; only when
every file is written does it replace OUT, so a failure leaves OUT as it was.
Entries of an existing OUT that geoha does not render (terraform.tfstate,
.terraform/, terraform.tfvars, ...) are carried over into the new OUT.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from geoha.cloud.choices import RenderKind
from geoha.cloud.cloudinit import render_cloud_init
from geoha.cloud.schema import (
    Problem,
    Severity,
    check_document,
    check_references,
    provider_of,
    schema_table,
)
from geoha.cloud.terraform import render_terraform
from geoha.cloud.vms import cloud_plan, location_errors
from geoha.commands.common import read_topology
from geoha.errors import EXIT_OK, BadInput
from geoha.plan import Plan
from geoha.render.files import File, write_files

RENDERERS: dict[RenderKind, Callable[[Plan], list[File]]] = {
    RenderKind.TERRAFORM: render_terraform,
    RenderKind.CLOUD_INIT: render_cloud_init,
}


def _carry_over(out: Path, staged: Path) -> list[str]:
    """Move OUT's entries that were not rendered (state, provider cache) into the new tree."""
    rendered = {p.name for p in staged.iterdir()}
    carried = []
    for entry in sorted(out.iterdir()):
        if entry.name not in rendered:
            entry.rename(staged / entry.name)
            carried.append(entry.name)
    return carried


def _replace(out: Path, staged: Path) -> None:
    """Swap the staged tree in for OUT, keeping OUT's unrendered entries; undo on failure."""
    carried = _carry_over(out, staged)
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    try:
        out.rename(old / out.name)
        try:
            staged.rename(out)
        except BaseException:
            (old / out.name).rename(out)
            raise
    except BaseException:
        for name in carried:  # never lose a Terraform state to a failed render
            (staged / name).rename(out / name)
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_tree(files: list[File], out: Path) -> None:
    """Write `files` (paths relative to OUT) so that OUT changes all at once or not at all."""
    out = out.absolute()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: a folder (got a file)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.new-"))
    try:
        write_files([File(staged / f.path, f.text, f.mode) for f in files])
        os.chmod(staged, 0o755)
        if out.exists():
            _replace(out, staged)
        else:
            staged.rename(out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def schema_problems(files: list[File]) -> list[Problem]:
    """The provider schema table's verdict on every rendered Terraform JSON file."""
    documents = {str(f.path): json.loads(f.text) for f in files if f.path.name.endswith(".tf.json")}
    problems = [p for document in documents.values() for p in check_document(document)]
    return problems + check_references(documents)


def grouped(problems: list[Problem]) -> list[str]:
    """One line per kind of problem: the same message at the same argument of several
    resources (`e2e_node.*.start_script`) is printed once, with the resources it is in."""
    groups: dict[tuple[Severity, str, str], list[str]] = {}
    for problem in problems:
        kind, _, rest = problem.path.partition(".")
        name, _, argument = rest.partition(".")
        pattern = re.sub(r"\[\d+\]", "[*]", f"{kind}.*.{argument}")
        names = groups.setdefault((problem.severity, pattern, problem.message), [])
        names.append(name)
    lines = []
    for (severity, pattern, message), names in groups.items():
        where = sorted(set(names), key=names.index)
        if len(names) == 1:
            lines.append(f"{severity.value}: {pattern.replace('*', where[0], 1)}: {message}")
        else:
            uses = f"{len(names)} uses, in {', '.join(where)}"
            lines.append(f"{severity.value}: {pattern}: {message} ({uses})")
    return lines


def pinned_releases(problems: list[Problem]) -> str:
    """The pins (`hashicorp/aws 5.100.0`) of the providers the problems' arguments are of."""
    providers = schema_table()["providers"]
    names: list[str] = []
    for problem in problems:
        parts = problem.path.split(".")
        owner = ".".join(parts[:2]) if parts[0] in ("provider", "data") else parts[0]
        owner = re.sub(r"\[\d+\]$", "", owner)  # provider.aws[1]: one of several blocks
        if provider_of(owner) not in names:
            names.append(provider_of(owner))
    pins = [f"{providers[name]['source']} {providers[name]['version']}" for name in names]
    return " and ".join(pins)


def report(problems: list[Problem]) -> None:
    """Print the problems to stderr; raise BadInput when the provider would refuse the files.

    Errors and warnings are printed one line per kind (`grouped`); notes (arguments in the
    provider's source that are not shown to be in the pinned release) are counted in one.
    """
    errors = [p for p in problems if p.severity is Severity.ERROR]
    warnings = [p for p in problems if p.severity is Severity.WARNING]
    notes = [p for p in problems if p.severity is Severity.NOTE]
    for line in grouped(errors or warnings):
        print(f"geoha: {line}", file=sys.stderr)
    if errors:
        raise BadInput("nothing written: the provider would refuse these")
    if notes:
        print(
            f"geoha: note: {len(notes)} uses of arguments that are in a provider's source but "
            f"not shown to be in the pinned release ({pinned_releases(notes)}: no source of "
            "the release is reachable); see docs/PROVIDER.md",
            file=sys.stderr,
        )


def cmd_render(args: argparse.Namespace) -> int:
    spec = read_topology(args)
    errors = location_errors(spec)
    if errors:
        raise BadInput("\n".join(errors))
    plan = cloud_plan(spec)
    files = RENDERERS[RenderKind(args.kind)](plan)
    report(schema_problems(files))
    out = Path(args.out)
    write_tree(files, out)
    print(f"geoha: wrote {len(files)} {args.kind} files to {out} (see docs/CLOUD.md)")
    return EXIT_OK
