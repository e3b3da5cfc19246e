"""The scale-out examples stay runnable: the Kubernetes Job parses and its command is a valid
batchgen invocation (dry run from JOB_COMPLETION_INDEX), and the Slurm script runs (dry run)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from batchgen.cli.main import status
from batchgen.cli.scale import merge
from batchgen.core.shard import shard_of
from batchgen.manifest.loader import load_manifest
from tests.helpers import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "scale-out"


def dry_run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return cli(*args, "--dry-run", cwd=cwd, env=env)


def comment_commands(text: str, name: str) -> list[list[str]]:
    """`batchgen NAME ...` commands quoted in the examples' comments."""
    return [shlex.split(m) for m in re.findall(rf"#\s+(batchgen {name} [^#\n]*)", text)]


def test_kubernetes_indexed_job_runs_one_shard_per_index(tmp_path: Path):
    text = (EXAMPLES / "k8s-indexed-job.yaml").read_text()
    job = yaml.safe_load(text)
    spec = job["spec"]
    assert (job["kind"], spec["completionMode"]) == ("Job", "Indexed")
    container = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["BATCHGEN_SHARD_COUNT"]) == spec["completions"]
    script = container["args"][0]
    command = shlex.split(script[script.index("batchgen run") :])
    assert command[:3] == ["batchgen", "run", "/manifest/dataset.yaml"]
    args = [
        a.replace("/manifest/", str(ROOT / "jobs") + "/").replace("/ledgers", str(tmp_path))
        .replace("$(JOB_COMPLETION_INDEX)", "2")
        for a in command[1:]
    ]  # fmt: skip
    pod_env = {**os.environ, "JOB_COMPLETION_INDEX": "2", **env}
    result = dry_run(args, pod_env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "dry run: nothing was sent" in result.stdout
    manifest = load_manifest(ROOT / "jobs" / "dataset.yaml")
    mine = sum(shard_of(job.id, 4) == 2 for job in manifest.jobs())
    assert 0 < mine < manifest.scan(sample=0).count
    assert f": {mine:,} job(s)" in result.stdout  # shard 2 of 4, from the pod's variables
    for merge_args in comment_commands(text, "merge"):
        merge.make_context("merge", merge_args[2:])


def test_slurm_array_script_runs_its_shard(tmp_path: Path):
    script = EXAMPLES / "slurm-array.sh"
    text = script.read_text()
    assert "#SBATCH --array=0-3" in text
    shutil.copytree(ROOT / "jobs", tmp_path / "jobs")
    shim = tmp_path / "bin" / "batchgen"  # `batchgen` as installed, in dry-run mode
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m batchgen "$@" --dry-run\n')
    shim.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{shim.parent}:{os.environ['PATH']}",
        "SLURM_ARRAY_TASK_ID": "2",
        "SLURM_ARRAY_TASK_MIN": "2",
        "SLURM_ARRAY_TASK_COUNT": "1",
    }  # fmt: skip  (a rerun of index 2 alone)
    result = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "dry run: nothing was sent" in result.stdout
    for merge_args in comment_commands(text, "merge"):
        merge.make_context("merge", merge_args[2:])
    statuses = comment_commands(text, "status")
    assert statuses
    for status_args in statuses:
        status.make_context("status", status_args[2:])
