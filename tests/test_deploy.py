"""Deployment checks without Docker or network: the Dockerfile, .dockerignore, requirements, the entry point,
the Docker scripts and the Hugging Face Spaces front matter of README.md. Static parsing (plus running the
torch install line through `sh` with a stand-in `pip`); nothing is built or launched. Building and running the
image is `scripts/docker_smoke.sh`'s job (too heavy for CI).
"""
from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
README = ROOT / "README.md"
SMOKE_SCRIPT = ROOT / "scripts" / "docker_smoke.sh"
TEST_BASE_SCRIPT = ROOT / "scripts" / "docker" / "build_test_base.sh"

# Every instruction the Dockerfile reference defines (MAINTAINER is deprecated but still parsed).
VALID_INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "MAINTAINER",
    "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}
# What app.py reads at runtime (ROOT / "checkpoints", ROOT / "examples", the cce_demo package).
RUNTIME_PATHS = ("app.py", "cce_demo", "checkpoints", "examples")
REQUIREMENTS_FILES = ("requirements.txt", "requirements-dev.txt")
PINNED_EXACTLY = ("torch", "torchvision")
# The two build arguments and their defaults (which give the standard image).
BASE_IMAGE_DEFAULT = "python:3.11-slim"
TORCH_INDEX_DEFAULT = "https://download.pytorch.org/whl/cpu"
# The app's named API endpoints the smoke test drives.
SMOKE_ENDPOINTS = ("/list_runs", "/classify", "/start_comparison", "/job_status")


# ---------------------------------------------------------------- parsing helpers


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs. Joins `\\` continuations, drops comments (also inside a continued
    instruction, as Docker does) and parser directives."""
    instructions: list[tuple[str, str]] = []
    pending: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            continue  # comment or parser directive; inside a continuation Docker drops it too
        if not line and not pending:
            continue
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        joined = " ".join(part for part in pending if part)
        pending = []
        if not joined:
            continue
        keyword, _, arguments = joined.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


def split_flags(arguments: str) -> tuple[dict[str, str], str]:
    """Leading `--name=value` / `--name` flags of an instruction, and the rest."""
    flags: dict[str, str] = {}
    rest = arguments
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        name, _, value = token[2:].partition("=")
        flags[name] = value
        rest = rest.strip()
    return flags, rest


def exec_or_shell(arguments: str) -> list[str]:
    """A JSON (exec form) array, or the shell form split like a shell would."""
    if arguments.startswith("["):
        value = json.loads(arguments)
        assert isinstance(value, list) and all(isinstance(item, str) for item in value), arguments
        return value
    return shlex.split(arguments)


def copy_sources(arguments: str) -> tuple[dict[str, str], list[str]]:
    flags, rest = split_flags(arguments)
    parts = exec_or_shell(rest)
    assert len(parts) >= 2, f"COPY/ADD needs a source and a destination: {arguments!r}"
    return flags, parts[:-1]


def env_values(instructions: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, arguments in instructions:
        if keyword != "ENV":
            continue
        tokens = shlex.split(arguments)
        if tokens and "=" not in tokens[0]:  # legacy `ENV KEY value`
            values[tokens[0]] = " ".join(tokens[1:])
            continue
        for token in tokens:
            key, separator, value = token.partition("=")
            assert separator, f"ENV token without '=': {token!r}"
            values[key] = value
    return values


def arg_defaults(instructions: list[tuple[str, str]]) -> dict[str, tuple[int, str | None]]:
    """ARG name -> (instruction index, default or None), the last declaration winning."""
    values: dict[str, tuple[int, str | None]] = {}
    for index, (keyword, arguments) in enumerate(instructions):
        if keyword != "ARG":
            continue
        for token in shlex.split(arguments):
            name, separator, value = token.partition("=")
            values[name] = (index, value if separator else None)
    return values


def substitute(text: str, variables: dict[str, str]) -> str:
    """Docker's `$NAME` / `${NAME}` / `${NAME:-default}` substitution (as in FROM), unknown names empty."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        value = variables.get(name, "")
        if match.group(3) == ":-" and not value:
            return match.group(4)
        if match.group(3) == ":+":
            return match.group(4) if value else ""
        return value

    return re.sub(r"\$(?:(\w+)|\{(\w+)(?:(:[-+])([^}]*))?\})", one, text)


def final_base_image(instructions: list[tuple[str, str]]) -> str:
    """The final stage's FROM image with the build arguments at their defaults."""
    froms = instructions_named(instructions, "FROM")
    first_from = froms[0][0]
    global_args = {name: value or "" for name, (index, value) in arg_defaults(instructions).items() if index < first_from}
    return substitute(froms[-1][1].split()[0], global_args)


def ignore_pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex, following Docker's matcher: `**` spans directories, `*` and `?`
    do not cross `/`, `[...]` is a character class, `\\` escapes."""
    out = ""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            if pattern.startswith("**", index):
                index += 1
                if index + 1 < len(pattern) and pattern[index + 1] == "/":
                    index += 1
                    out += "(.*/)?"
                else:
                    out += ".*"
            else:
                out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.find("]", index + 1)
            assert end > index, f"unterminated character class in {pattern!r}"
            body = pattern[index + 1:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out += "[" + body + "]"
            index = end
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out += re.escape(pattern[index])
        else:
            out += re.escape(char)
        index += 1
    return re.compile("^" + out + "$")


def load_dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per pattern, in file order."""
    rules = []
    if not DOCKERIGNORE.exists():
        return rules
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        if exception:
            line = line[1:].strip()
        line = os.path.normpath(line).replace(os.sep, "/").lstrip("/")
        rules.append((exception, ignore_pattern_regex(line)))
    return rules


def is_ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves `path` (relative, `/`-separated) out of the build context: the last pattern that
    matches the path or one of its parent directories decides."""
    path = os.path.normpath(path).replace(os.sep, "/").lstrip("/")
    parts = path.split("/")
    candidates = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    ignored = False
    for exception, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            ignored = not exception
    return ignored


def requirement_lines(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or line.startswith("-r") or line.startswith("--requirement"):
            continue
        lines.append(line)
    return lines


def requirements(path: Path) -> dict[str, Requirement]:
    parsed = {}
    for line in requirement_lines(path):
        requirement = Requirement(line)
        parsed[requirement.name.lower()] = requirement
    return parsed


def exact_pin(requirement: Requirement) -> str:
    specifiers = list(requirement.specifier)
    assert len(specifiers) == 1 and specifiers[0].operator == "==", f"{requirement} is not pinned with =="
    return specifiers[0].version


def parse_front_matter(text: str) -> dict:
    """The YAML block between the leading `---` lines; PyYAML (a gradio dependency) when importable, else
    flat `key: value` lines and `  - item` lists."""
    lines = text.splitlines()
    assert lines and lines[0].strip() == "---", "README.md does not start with a `---` front matter block"
    try:
        end = next(index for index in range(1, len(lines)) if lines[index].strip() == "---")
    except StopIteration:
        raise AssertionError("README.md front matter has no closing `---` line") from None
    block = "\n".join(lines[1:end])
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        data = yaml.safe_load(block) or {}
        assert isinstance(data, dict), "README.md front matter is not a mapping"
        return data
    data: dict = {}
    current_list: list | None = None
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        stripped = line.strip()
        if stripped.startswith("- ") and current_list is not None:
            current_list.append(stripped[2:].strip().strip("'\""))
            continue
        key, _, value = line.partition(":")
        value = value.strip()
        if value:
            data[key.strip()] = value.strip("'\"")
            current_list = None
        else:
            current_list = data[key.strip()] = []
    return data


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    assert DOCKERFILE.exists(), "Dockerfile is missing"
    parsed = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
    assert parsed, "Dockerfile has no instructions"
    return parsed


@pytest.fixture(scope="module")
def runtime_requirements() -> dict[str, Requirement]:
    return requirements(ROOT / "requirements.txt")


def instructions_named(instructions, keyword: str) -> list[tuple[int, str]]:
    return [(index, arguments) for index, (name, arguments) in enumerate(instructions) if name == keyword]


# ---------------------------------------------------------------- tests: the parsers themselves


def test_parser_joins_continuations_and_drops_comments():
    text = "# syntax=docker/dockerfile:1\nFROM python:3.11-slim\n\nRUN a \\\n  # inner comment\n    && b\nCMD [\"x\"]\n"
    assert parse_dockerfile(text) == [("FROM", "python:3.11-slim"), ("RUN", "a && b"), ("CMD", '["x"]')]


@pytest.mark.parametrize(
    ("pattern", "path", "ignored"),
    [
        ("runs", "runs", True),
        ("runs", "runs/abc/model.safetensors", True),
        ("runs", "checkpoints/runs", False),
        ("data", "cce_demo/data.py", False),
        ("**/__pycache__", "cce_demo/__pycache__/ui.cpython-311.pyc", True),
        ("**/*.pyc", "app.pyc", True),
        ("**/*.pyc", "cce_demo/ui.py", False),
        ("*.md", "docs/x.md", False),
        ("/.git", ".git/HEAD", True),
    ],
)
def test_dockerignore_matcher(pattern, path, ignored):
    rules = [(False, ignore_pattern_regex(os.path.normpath(pattern).lstrip("/")))]
    assert is_ignored(path, rules) is ignored


def test_dockerignore_exception_reincludes():
    rules = [(False, ignore_pattern_regex("*.md")), (True, ignore_pattern_regex("README.md"))]
    assert is_ignored("NOTES.md", rules) and not is_ignored("README.md", rules)


# ---------------------------------------------------------------- tests: the Dockerfile


def test_every_instruction_is_valid(instructions):
    unknown = [keyword for keyword, _ in instructions if keyword not in VALID_INSTRUCTIONS]
    assert not unknown, f"unknown Dockerfile instructions: {unknown}"
    assert instructions[0][0] in {"FROM", "ARG"}, "a Dockerfile must start with FROM (or ARG before FROM)"
    for keyword, arguments in instructions:
        assert arguments, f"{keyword} without arguments"
        if keyword in {"CMD", "ENTRYPOINT", "RUN", "SHELL"} and arguments.startswith("["):
            json.loads(arguments)  # a malformed exec form would silently become a shell command


def test_substitute_follows_docker():
    variables = {"A": "x", "E": ""}
    assert substitute("$A/${A}/${B}/${E:-d}/${A:-d}/${A:+p}/${E:+p}", variables) == "x/x//d/x/p/"


def test_base_image_is_slim_python(instructions):
    image = final_base_image(instructions)  # the final stage is what runs, build arguments at their defaults
    match = re.fullmatch(r"(?:docker\.io/(?:library/)?)?python:(\d+\.\d+)(?:\.\d+)?-slim(?:-\w+)?(?:@sha256:\w+)?",
                         image)
    assert match, f"base image {image!r} is not a slim Python image"


def test_copy_sources_exist_and_are_not_dockerignored(instructions):
    rules = load_dockerignore()
    copies = instructions_named(instructions, "COPY") + instructions_named(instructions, "ADD")
    assert copies
    for _, arguments in copies:
        flags, sources = copy_sources(arguments)
        if "from" in flags:
            continue  # copied from another build stage, not from the context
        for source in sources:
            assert not re.match(r"^[a-z]+://", source), f"ADD from a URL needs the network: {source}"
            path = ROOT / source
            assert path.exists(), f"COPY source {source!r} does not exist in the repository"
            relative = path.relative_to(ROOT).as_posix()
            assert not is_ignored(relative, rules), f"COPY source {source!r} is excluded by .dockerignore"
            if path.is_dir():
                for file in path.rglob("*"):
                    if not file.is_file() or "__pycache__" in file.parts or file.suffix in {".pyc", ".pyo"}:
                        continue
                    inner = file.relative_to(ROOT).as_posix()
                    assert not is_ignored(inner, rules), f"{inner} (under COPY source {source}) is .dockerignored"


def test_copies_what_the_app_needs_at_runtime(instructions):
    copied = set()
    for _, arguments in instructions_named(instructions, "COPY"):
        copied.update(source.rstrip("/") for source in copy_sources(arguments)[1])
    missing = [path for path in RUNTIME_PATHS if path not in copied]
    assert not missing, f"the Dockerfile does not copy {missing} (cce_demo as a whole directory, so new modules come along)"
    assert (ROOT / "cce_demo").is_dir()


def mode_lets_others_write(mode: str) -> bool:
    """Whether a chmod mode (octal or symbolic, e.g. `a+rX,go-w`) gives write permission to group or others."""
    if re.fullmatch(r"[0-7]{3,4}", mode):
        return bool(int(mode, 8) & 0o022)
    for clause in mode.split(","):
        match = re.fullmatch(r"([ugoa]*)([-+=])([rwxXst]*)", clause)
        assert match, f"unparsed chmod mode clause {clause!r}"
        who, operator, permissions = match.groups()
        if operator in "+=" and "w" in permissions and (not who or set(who) & set("goa")):
            return True
    return False


def test_mode_lets_others_write():
    assert mode_lets_others_write("777") and mode_lets_others_write("0664") and not mode_lets_others_write("755")
    assert mode_lets_others_write("a+w") and mode_lets_others_write("+w") and mode_lets_others_write("u+rw,g=rw")
    assert not mode_lets_others_write("a+rX,go-w") and not mode_lets_others_write("u+w")


def test_code_and_shipped_runs_are_not_owned_by_the_app_user(instructions):
    """The app must not be able to change its code, the shipped runs or the examples: they are copied as root
    (no --chown), and no later chown hands them over nor chmod makes them writable for others."""
    for _, arguments in instructions_named(instructions, "COPY"):
        flags, sources = copy_sources(arguments)
        if any(source.rstrip("/") in RUNTIME_PATHS for source in sources):
            assert flags.get("chown", "root").split(":")[0] in {"root", "0"}, f"COPY {arguments} changes the owner"
            assert not mode_lets_others_write(flags.get("chmod", "644")), f"COPY {arguments} makes them writable"
    for _, arguments in instructions_named(instructions, "RUN"):
        for command in re.split(r"&&|\|\||;", arguments):
            words = shlex.split(command)
            if not words or words[0] not in {"chown", "chmod"}:
                continue
            operands = [word for word in words[1:] if not word.startswith("-")]
            targets = {word.rstrip("/").removeprefix("./") for word in operands[1:]}
            if not targets & set(RUNTIME_PATHS):
                continue
            assert words[0] != "chown", f"RUN hands {sorted(targets)} to another owner: {command.strip()}"
            assert not mode_lets_others_write(operands[0]), f"RUN makes {sorted(targets)} writable: {command.strip()}"


def test_runs_as_non_root_user_with_uid_1000(instructions):
    users = instructions_named(instructions, "USER")
    assert users, "no USER instruction: the container would run as root"
    user = users[-1][1].split(":")[0]
    assert user not in {"root", "0"}, "the final USER is root"
    creations = [
        arguments for _, arguments in instructions_named(instructions, "RUN")
        if re.search(rf"\buseradd\b[^&;|]*\s-u\s*1000\b[^&;|]*\s{re.escape(user)}\b", arguments)
    ]
    assert creations, f"user {user!r} is not created with `useradd ... -u 1000 ... {user}`"
    # The app process (CMD) runs as that user.
    assert users[-1][0] < instructions_named(instructions, "CMD")[-1][0], "USER must come before CMD"


def test_environment_and_writable_state_directories(instructions):
    env = env_values(instructions)
    expected = {
        "PYTHONUNBUFFERED": "1", "GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7860",
        "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    for key, value in expected.items():
        assert env.get(key) == value, f"ENV {key} should be {value!r}, is {env.get(key)!r}"
    setup = " ".join(arguments for _, arguments in instructions_named(instructions, "RUN"))
    assert env.get("CCE_DATA_DIR", "").startswith("/"), "ENV CCE_DATA_DIR should be an absolute path"
    # CCE_RUNS_DIR would override the app's own choice of /data/runs when a volume is mounted at /data.
    assert "CCE_RUNS_DIR" not in env, "ENV CCE_RUNS_DIR must not be set: runs go to /data/runs when /data is a volume"
    workdir = instructions_named(instructions, "WORKDIR")[-1][1]
    for folder in (env["CCE_DATA_DIR"], f"{workdir}/runs", "/data"):
        assert re.search(rf"mkdir\b[^&;|]*\s{re.escape(folder)}(?=\s|$)", setup), f"{folder} is not created"
    # A fresh named volume mounted on a folder inherits its owner: /data must belong to the app's user.
    assert re.search(r"chown\b[^&;|]*\buser(:user)?\b[^&;|]*\s/data(?=\s|$)", setup), "/data is not chowned to the user"
    assert re.search(r"chown\b[^&;|]*\buser\b", setup), "the state directories are not chowned to the user"


def test_exposes_7860(instructions):
    ports = [port.split("/")[0] for _, arguments in instructions_named(instructions, "EXPOSE") for port in
             arguments.split()]
    assert "7860" in ports


def test_healthcheck_uses_python_not_curl(instructions):
    checks = instructions_named(instructions, "HEALTHCHECK")
    assert len(checks) == 1, "expected exactly one HEALTHCHECK"
    flags, command = split_flags(checks[0][1])
    assert command.upper().startswith("CMD"), "HEALTHCHECK must be `... CMD <command>` (not NONE)"
    assert {"interval", "timeout", "start-period", "retries"} <= set(flags), f"HEALTHCHECK options: {flags}"
    body = command[3:].strip()
    argv = exec_or_shell(body)
    assert not re.search(r"\b(curl|wget)\b", body), "the slim image has neither curl nor wget"
    assert argv[0] in {"python", "python3"} and "urllib.request" in body and "127.0.0.1" in body


def test_stops_with_sigint(instructions):
    """The app is PID 1 without an init: it ignores SIGTERM, so `docker stop` must send SIGINT, which Python
    turns into KeyboardInterrupt (Gradio closes, the job manager shuts down)."""
    signals = instructions_named(instructions, "STOPSIGNAL")
    assert signals and signals[-1][1] in {"SIGINT", "INT", "2"}, "STOPSIGNAL SIGINT is missing"


def test_cmd_runs_app(instructions):
    cmds = instructions_named(instructions, "CMD")
    assert cmds, "no CMD"
    assert exec_or_shell(cmds[-1][1]) == ["python", "app.py"]
    assert not instructions_named(instructions, "ENTRYPOINT"), "an ENTRYPOINT would wrap the CMD"


def test_requirements_installed_before_code_is_copied(instructions):
    installs = [
        index for index, arguments in instructions_named(instructions, "RUN")
        if re.search(r"pip install\b[^&;|]*\s-r\s+requirements\.txt\b", arguments)
    ]
    assert installs, "no `pip install -r requirements.txt`"
    install = installs[0]
    code_copies = [
        index for index, arguments in instructions_named(instructions, "COPY")
        if any(not re.fullmatch(r"(requirements[\w.-]*|constraints)\.txt", source.lstrip("./")) for source in
               copy_sources(arguments)[1])
    ]
    requirement_copies = [index for index in range(install) if instructions[index][0] == "COPY"]
    assert requirement_copies, "requirements.txt is not copied before it is installed"
    assert code_copies and min(code_copies) > install, "code is copied before the requirements are installed"
    assert "--no-cache-dir" in instructions[install][1]
    # The image gets the web stack the app is tested with, as every other install does.
    assert re.search(r"-r\s+requirements\.txt\s+-c\s+constraints\.txt", instructions[install][1]), instructions[install][1]


def test_build_arguments_and_defaults(instructions):
    """BASE_IMAGE (global, before FROM) picks the base image; TORCH_INDEX_URL (in the final stage, so that its
    RUN sees it) picks torch's index. Their defaults are the standard image: python:3.11-slim, CPU torch."""
    args = arg_defaults(instructions)
    froms = instructions_named(instructions, "FROM")
    assert len(froms) == 1, "one stage expected"
    from_index, from_arguments = froms[0]
    assert "BASE_IMAGE" in args, "no ARG BASE_IMAGE"
    index, default = args["BASE_IMAGE"]
    assert index < from_index, "ARG BASE_IMAGE must come before FROM to be usable in it"
    assert default == BASE_IMAGE_DEFAULT, f"BASE_IMAGE defaults to {default!r}, expected {BASE_IMAGE_DEFAULT!r}"
    assert from_arguments.split()[0] in {"${BASE_IMAGE}", "$BASE_IMAGE"}, f"FROM does not use BASE_IMAGE: {from_arguments}"
    assert "TORCH_INDEX_URL" in args, "no ARG TORCH_INDEX_URL"
    index, default = args["TORCH_INDEX_URL"]
    assert index > from_index, "ARG TORCH_INDEX_URL must be declared after FROM, or its RUN does not see it"
    assert default == TORCH_INDEX_DEFAULT, f"TORCH_INDEX_URL defaults to {default!r}, expected {TORCH_INDEX_DEFAULT!r}"
    torch_runs = [i for i, arguments in instructions_named(instructions, "RUN") if re.search(r"\btorch==", arguments)]
    assert torch_runs and all(i > index for i in torch_runs), "torch is installed before ARG TORCH_INDEX_URL"


def torch_install_command(instructions) -> str:
    runs = [arguments for _, arguments in instructions_named(instructions, "RUN") if re.search(r"\btorch==", arguments)]
    assert len(runs) == 1, "expected one RUN that installs torch"
    assert not runs[0].startswith("["), "the torch install must be a shell-form RUN (it expands TORCH_INDEX_URL)"
    return runs[0]


def test_torch_index_expression_handles_empty(instructions):
    """Static: the index is passed as `${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}`, so an empty value
    drops the option instead of passing `--index-url ''`."""
    command = torch_install_command(instructions)
    assert '${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}' in command, command
    assert "download.pytorch.org" not in command, "the index URL belongs in the ARG default, not in the RUN"


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX sh")
@pytest.mark.parametrize(
    ("index_url", "expected_index"),
    [(TORCH_INDEX_DEFAULT, TORCH_INDEX_DEFAULT), ("", None), ("https://mirror.example/simple torch", "https://mirror.example/simple torch")],
)
def test_torch_install_runs_with_each_index(instructions, index_url, expected_index, tmp_path):
    """The RUN line itself, through `sh` (as Docker runs it), with a `pip` that only records its arguments."""
    command = torch_install_command(instructions)
    log = tmp_path / "pip.log"
    script = f'pip() {{ printf "%s\\n" "$@" >> "$PIP_LOG"; echo --- >> "$PIP_LOG"; }}\n{command}\n'
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PIP_LOG": str(log), "TORCH_INDEX_URL": index_url}
    subprocess.run(["sh", "-c", script], check=True, env=environment, cwd=tmp_path, timeout=30)
    calls = [call.strip("\n").split("\n") for call in log.read_text().split("---\n") if call.strip()]
    assert len(calls) == 2, calls
    first, second = calls
    assert first[0] == "install" and "" not in first, first
    torch_pins = [argument for argument in first if argument.startswith(("torch==", "torchvision=="))]
    assert len(torch_pins) == 2, first
    if expected_index is None:
        assert "--index-url" not in first and not any("download.pytorch.org" in argument for argument in first), first
    else:
        assert first[first.index("--index-url") + 1] == expected_index, first
    assert second[0] == "install" and "-r" in second and "--index-url" not in second, second


def test_cpu_torch_pins_match_requirements(instructions, runtime_requirements):
    pip_runs = " ".join(arguments for _, arguments in instructions_named(instructions, "RUN") if "pip" in arguments)
    for name in PINNED_EXACTLY:
        found = re.findall(rf"(?<![\w-]){re.escape(name)}==([0-9][\w.+!-]*)", pip_runs)
        assert found, f"the Dockerfile does not pin {name}"
        pinned = exact_pin(runtime_requirements[name])
        assert set(found) == {pinned}, f"Dockerfile pins {name}=={found}, requirements.txt {name}=={pinned}"
        # The CPU wheel's local version label must still satisfy requirements.txt, or pip would replace it.
        assert f"{pinned}+cpu" in SpecifierSet(f"=={pinned}")


# ---------------------------------------------------------------- tests: requirements


@pytest.mark.parametrize("name", REQUIREMENTS_FILES)
def test_requirements_parse(name):
    path = ROOT / name
    assert path.exists()
    lines = requirement_lines(path)
    assert lines, f"{name} lists no requirement"
    for line in lines:
        Requirement(line)  # raises InvalidRequirement


def test_torch_pinned_exactly(runtime_requirements):
    for name in PINNED_EXACTLY:
        assert name in runtime_requirements, f"requirements.txt does not list {name}"
        exact_pin(runtime_requirements[name])


# ---------------------------------------------------------------- tests: the entry point


def test_app_entry_point_imports():
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    app = importlib.import_module("app")
    assert Path(app.__file__).resolve() == ROOT / "app.py"
    assert callable(app.create_app) and callable(app.main)


# ---------------------------------------------------------------- tests: Hugging Face Spaces front matter


def test_readme_spaces_front_matter(instructions, runtime_requirements):
    assert README.exists(), "README.md is missing (Hugging Face Spaces reads its front matter)"
    text = README.read_text(encoding="utf-8")
    assert text.startswith("---"), (
        "README.md has no Hugging Face Spaces front matter: it must start with a `---` YAML block "
        "(sdk, sdk_version, app_file, python_version, suggested_hardware, short_description, tags)"
    )
    meta = parse_front_matter(text)
    assert meta.get("sdk") == "gradio", f"sdk: {meta.get('sdk')!r}, expected gradio"
    gradio_pin = exact_pin(runtime_requirements["gradio"])
    assert str(meta.get("sdk_version")) == gradio_pin, (
        f"sdk_version: {meta.get('sdk_version')!r} differs from requirements.txt gradio=={gradio_pin}"
    )
    assert meta.get("app_file") == "app.py", f"app_file: {meta.get('app_file')!r}"
    for key in ("python_version", "suggested_hardware", "short_description", "tags"):
        assert meta.get(key), f"front matter lacks {key}"
    assert len(str(meta["short_description"])) <= 60, "short_description is longer than 60 characters"
    assert isinstance(meta["tags"], list) and meta["tags"], "tags should be a non-empty list"
    # The Space and the Docker image should run the same Python minor version.
    image = final_base_image(instructions)
    docker_python = re.search(r"python:(\d+\.\d+)", image).group(1)
    space_python = ".".join(str(meta["python_version"]).split(".")[:2])
    assert space_python == docker_python, f"python_version {space_python} vs Docker base python:{docker_python}"


# ---------------------------------------------------------------- tests: the Docker scripts (syntax only)


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize("script", [SMOKE_SCRIPT, TEST_BASE_SCRIPT], ids=lambda path: path.name)
def test_docker_scripts_parse(script):
    assert script.exists(), f"{script.relative_to(ROOT)} is missing"
    assert os.access(script, os.X_OK), f"{script.relative_to(ROOT)} is not executable"
    assert script.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash")
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)


def test_smoke_script_covers_the_checks():
    text = SMOKE_SCRIPT.read_text(encoding="utf-8")
    for endpoint in SMOKE_ENDPOINTS:
        assert endpoint in text, f"the smoke test does not call {endpoint}"
    assert "trap " in text, "the smoke test must clean up with a trap"
    assert "127.0.0.1:" in text, "the smoke test must publish the port on loopback only"
    assert re.search(r"docker volume create", text), "the smoke test must use a fresh named volume"
    assert "docker restart" in text or re.search(r"docker (?:container )?(?:stop|start)\b", text)


def test_smoke_script_covers_restarts_and_early_stops():
    """Issue 22: the smoke run mounts its volume where a Space mounts persistent storage, proves the runs
    outlive the container (a new container on the same volume), and stops containers in their first seconds."""
    text = SMOKE_SCRIPT.read_text(encoding="utf-8")
    assert re.search(r'-v "\$VOLUME:/data"', text), "the smoke test must mount its volume at /data"
    assert "/data/runs" in text, "the smoke test must check that the runs are kept in /data/runs"
    assert re.search(r"docker rm \"\$CONTAINER\"", text), "the restart must use a new container on the same volume"
    assert "wait_first_200" in text and "EARLY_STOPS" in text, "the smoke test must stop containers early"
    for marker in ("Traceback", "terminate called"):
        assert marker in text, f"the smoke test must look for {marker!r} in the container log"
