"""The install is held: Pillow at a version without the known decoder CVEs, and the web stack under gradio at
the versions the app is tested with, through constraints.txt, which the test script and the README use."""
import importlib.metadata
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name] = version
    return pins


def test_pillow_is_at_least_12_2():
    line = next(line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("pillow"))
    requirement = Requirement(line.split("#", 1)[0].strip())
    assert not requirement.specifier.contains("12.1.9") and requirement.specifier.contains("12.2.0")
    assert Version(importlib.metadata.version("pillow")) >= Version("12.2")


def test_the_web_stack_is_pinned_and_installed_as_pinned():
    pins = constraints()
    for name in ("fastapi", "starlette", "uvicorn", "httpx", "pydantic", "python-multipart", "gradio-client", "anyio"):
        assert name in pins, name
    for name, version in pins.items():
        assert importlib.metadata.version(name) == version, name


def test_installs_use_the_constraints():
    assert re.search(r"pip install .*-r requirements-dev\.txt -c constraints\.txt", (ROOT / "scripts" / "test.sh").read_text())
    assert "-c constraints.txt" in (ROOT / "README.md").read_text()
