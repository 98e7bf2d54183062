"""The product wheel: what an installed county gets holds no development tools."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".tools" / "bin" / "uv"  # bootstrapped by `make venv`


def test_the_wheel_holds_no_generator_or_bench_code(tmp_path: Path) -> None:
    if not UV.is_file():
        pytest.skip(f"{UV} is missing: run `make venv` (it bootstraps uv) to build the wheel")
    built = subprocess.run(
        [str(UV), "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        code = {n: zf.read(n).decode("utf-8") for n in names if n.endswith(".py")}
    assert any(n == "screening/cli/main.py" for n in names)
    assert not [n for n in names if n.startswith("dev/") or n.endswith(("sample.py", "bench.py"))]
    # Nothing in the product imports the development tools.
    assert not [n for n, text in code.items() if "from dev" in text or "import dev" in text]
    # The bundled synthetic county (for --demo) is data, not the generator.
    assert any(n.startswith("screening/_contract/sample_data/") for n in names)
