"""Running the `intforge` command as a user does, for the CLI tests."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def intforge(*args: object, cwd: Path = REPO_ROOT, hash_seed: str | None = None
             ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}  # rich tables keep whole names in a wide terminal
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = hash_seed
    return subprocess.run([sys.executable, "-m", "intforge_cli.main", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def assert_user_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("intforge: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])
