"""The benchmark's quick mode runs to the end and reports every case (speed is not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_quick_benchmark_completes(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(output.read_text())
    cases = [row["case"] for row in results["rows"]]
    assert any(case.startswith("snapshot") for case in cases)
    assert any(case.startswith("restore") for case in cases)
    for row in results["rows"]:
        assert row["verdict"] in ("PASS", "MISS", "")
        if row["target"] is not None:
            assert row["ratio"] is not None and row["ratio"] > 0
    assert "case" in done.stdout and "ratio" in done.stdout
