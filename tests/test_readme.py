"""Every example in README.md runs, and CI runs the README's commands."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_python_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    code = blocks("python")
    assert len(code) >= 3
    for k, block in enumerate(code):
        exec(compile(block, f"README.md python block {k + 1}", "exec"), namespace)
    assert "bits per character" in capsys.readouterr().out


def shell_commands():
    """The charrnn commands of the README's bash blocks (pip lines are CI's job)."""
    out = []
    for block in blocks("bash"):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith("charrnn "):
                    out.append(part)
    return out


@pytest.mark.parametrize("command", shell_commands())
def test_readme_shell_commands_run(command, tmp_path):
    argv = shlex.split(command)
    # the console script of this interpreter's environment, as the README runs it
    exe = Path(sys.executable).parent / "charrnn"
    argv[0] = str(exe) if exe.exists() else argv[0]
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert result.returncode == 0, result.stderr
    assert "----" in result.stdout and "loss" in result.stdout


def test_ci_runs_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line.strip() for block in blocks("bash") for line in block.splitlines()
                if line.strip().startswith("pip install")]
    assert len(commands) == 2
    for command in commands:
        assert command in ci, f".ci/run does not run the README's command: {command}"
