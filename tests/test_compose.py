"""docker-compose.yml, the Dockerfiles, .dockerignore and .env.example, checked without a Docker engine.

The app services are the compose services with a `build`. Adding one (complaint-api, recommend-api) takes a
line in SETTINGS_CLASSES; every check below then covers it.
"""

from __future__ import annotations

import importlib
import json
import posixpath
import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# compose service -> its pydantic-settings class.
SETTINGS_CLASSES = {
    "customer-api": "customer_api.config.Settings",
    "complaint-api": "complaint_api.config.Settings",
    "recommend-api": "recommend_api.config.Settings",
}

# Settings fields a service's compose `environment` may leave out, each with the reason.
OPTIONAL_SETTINGS_FIELDS = {
    "service_name": "the service's own name, fixed in code; not configuration",
    "rfm_segments": "a 5×5 grid of segment names; its documented default (config.py) is the product's map",
    "holidays": "a list of dates; the default is the 2026 State Council notice (sla/calendar.py)",
    "workdays": "a list of dates; the default is the 2026 State Council notice (sla/calendar.py)",
}

# Secrets: only ever `${VAR:?message}` in compose (no default, never a literal value).
REQUIRED_SECRETS = ("POSTGRES_PASSWORD", "CRM_SECRET_KEY", "CRM_API_KEYS")

DATABASE_SERVICE = "postgres"

# compose interpolation: $$ (a literal $), ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ..., $VAR
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<sep>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)
_GLOB_CHARS = re.compile(r"[*?\[]")


# --- helpers ------------------------------------------------------------------------------------------------


@cache
def load_compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return compose


def app_service_names() -> list[str]:
    """Services built from this repository; [] when the compose file does not load (test_compose_parses says why)."""
    try:
        services = load_compose()["services"]
        return sorted(name for name, service in services.items() if "build" in service)
    except Exception:  # noqa: BLE001 - reported by test_compose_parses
        return []


APP_SERVICES = app_service_names()


def service(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = load_compose()["services"][name]
    return spec


def environment(name: str) -> dict[str, str | None]:
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in env)
        return {key: value for key, value in pairs}
    return {key: None if value is None else str(value) for key, value in env.items()}


def strings(node: Any) -> list[str]:
    """Every string (keys included) in a parsed YAML document."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (*strings(key), *strings(value))]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def references(text: str) -> list[re.Match[str]]:
    return [m for m in _INTERPOLATION.finditer(text) if not m.group("escaped")]


def variable(match: re.Match[str]) -> str:
    return match.group("braced") or match.group("named")


def with_defaults(text: str) -> str:
    """`text` as compose would interpolate it with an empty environment (required values become <VAR>)."""

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("sep") in (":-", "-"):
            return match.group("arg")
        return f"<{variable(match)}>"

    return _INTERPOLATION.sub(substitute, text)


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$", line)
        if match and not line.lstrip().startswith("#"):
            values[match.group(1)] = match.group(2).strip()
    return values


def settings_class(name: str) -> type[BaseSettings]:
    module, _, attribute = SETTINGS_CLASSES[name].rpartition(".")
    cls = getattr(importlib.import_module(module), attribute)
    assert isinstance(cls, type) and issubclass(cls, BaseSettings), SETTINGS_CLASSES[name]
    return cls


def settings_env_names(cls: type[BaseSettings]) -> dict[str, str]:
    """Field name -> the environment variable pydantic-settings reads it from."""
    prefix = cls.model_config.get("env_prefix", "")
    names = {}
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias
        names[field_name] = alias if isinstance(alias, str) else f"{prefix}{field_name.upper()}"
    return names


def build(name: str) -> tuple[Path, Path]:
    """(context directory, Dockerfile) of a compose service."""
    spec = service(name)["build"]
    if isinstance(spec, str):
        spec = {"context": spec}
    context = (COMPOSE_FILE.parent / spec.get("context", ".")).resolve()
    return context, context / spec.get("dockerfile", "Dockerfile")


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined, comments dropped."""
    result, pending = [], ""
    for raw in dockerfile.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        result.append((keyword.upper(), arguments.strip()))
        pending = ""
    return result


def copies(dockerfile: Path) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY/ADD from the build context (not --from another stage)."""
    result = []
    for keyword, arguments in instructions(dockerfile):
        if keyword not in ("COPY", "ADD"):
            continue
        words = json.loads(arguments) if arguments.startswith("[") else arguments.split()
        flags = [w for w in words if w.startswith("--")]
        if any(flag.startswith("--from=") for flag in flags):
            continue
        paths = [w for w in words if not w.startswith("--")]
        result.append((paths[:-1], paths[-1]))
    return result


def entrypoint(dockerfile: Path) -> list[str]:
    for keyword, arguments in reversed(instructions(dockerfile)):
        if keyword == "ENTRYPOINT":
            return json.loads(arguments) if arguments.startswith("[") else arguments.split()
    return []


def context_file(dockerfile: Path, context: Path, image_path: str) -> Path | None:
    """The build-context file that ends up at `image_path` in the image, via a COPY of it or of a parent."""
    for sources, destination in copies(dockerfile):
        if len(sources) != 1 or _GLOB_CHARS.search(sources[0]):
            continue
        destination = destination.rstrip("/")
        if image_path == destination or image_path.startswith(destination + "/"):
            candidate = context / sources[0] / image_path[len(destination) :].lstrip("/")
            if candidate.is_file():
                return candidate
    return None


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex, as moby/patternmatcher compiles it."""
    regex, i = "^", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 1
                if pattern[i + 1 : i + 2] == "/":
                    i += 1
                regex += ".*" if i + 1 >= len(pattern) else "(.*/)?"
            else:
                regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "[":
            end = pattern.index("]", i)
            regex += pattern[i : end + 1]
            i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            regex += re.escape(pattern[i])
        else:
            regex += re.escape(char)
        i += 1
    return re.compile(regex + "$")


def dockerignore(context: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception `!pattern`, regex) per line of the context's .dockerignore."""
    path = context / ".dockerignore"
    patterns = []
    for raw in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        line = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
        patterns.append((exception, _ignore_regex(line)))
    return patterns


def ignored(patterns: list[tuple[bool, re.Pattern[str]]], relative: str) -> bool:
    """Whether a context path is left out of the build context: the last pattern matching it or a parent wins."""
    parts = relative.split("/")
    candidates = [relative, *("/".join(parts[:i]) for i in range(1, len(parts)))]
    excluded = False
    for exception, regex in patterns:
        if exception != excluded:
            continue
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not exception
    return excluded


def runtime_files(name: str, dockerfile: Path, context: Path) -> list[str]:
    """Context-relative files the service's image cannot run without: its project, package, migrations, libs."""
    service_dir = dockerfile.parent
    package = SETTINGS_CLASSES[name].split(".")[0]
    found = [
        service_dir / "pyproject.toml",
        service_dir / "alembic.ini",
        service_dir / "src" / package / "main.py",
        *service_dir.glob(f"src/{package}/**/*.py"),
        *service_dir.glob("migrations/**/*.py"),
        *service_dir.glob("migrations/*.mako"),
        *context.glob("libs/*/pyproject.toml"),
        *context.glob("libs/*/src/**/*.py"),
    ]
    return sorted({p.relative_to(context).as_posix() for p in found if "__pycache__" not in p.parts})


def host_ports(spec: Any) -> list[tuple[str, str]]:
    """(published host port, protocol) pairs of one `ports` entry, short or long syntax."""
    if isinstance(spec, dict):
        published = spec.get("published")
        return [] if published in (None, "") else [(with_defaults(str(published)), spec.get("protocol", "tcp"))]
    text, _, protocol = with_defaults(str(spec)).partition("/")
    rest, _, _container = text.rpartition(":")
    if not rest:  # container port only: docker picks a free host port
        return []
    published = rest.rpartition(":")[2]
    if "-" in published:
        low, high = (int(p) for p in published.split("-"))
        return [(str(p), protocol or "tcp") for p in range(low, high + 1)]
    return [(published, protocol or "tcp")]


def init_scripts() -> list[Path]:
    """Host files the database service mounts into /docker-entrypoint-initdb.d."""
    volumes = service(DATABASE_SERVICE).get("volumes", [])
    return [COMPOSE_FILE.parent / str(v).split(":")[0] for v in volumes if "docker-entrypoint-initdb.d" in str(v)]


app_service = pytest.mark.parametrize("name", APP_SERVICES)


# --- the compose file ---------------------------------------------------------------------------------------


def test_compose_parses() -> None:
    compose = load_compose()
    assert isinstance(compose, dict)
    assert isinstance(compose.get("services"), dict)
    assert DATABASE_SERVICE in compose["services"]
    assert APP_SERVICES, "no service with a `build` in docker-compose.yml"


def test_every_app_service_has_a_settings_class() -> None:
    assert set(APP_SERVICES) == set(SETTINGS_CLASSES)


def test_host_ports_do_not_clash() -> None:
    published = [
        port
        for spec in load_compose()["services"].values()
        for entry in spec.get("ports", [])
        for port in host_ports(entry)
    ]
    clashes = [port for port, count in Counter(published).items() if count > 1]
    assert not clashes, f"host ports published more than once: {clashes}"


def test_every_variable_is_in_env_example() -> None:
    used = {variable(m) for text in strings(load_compose()) for m in references(text)}
    listed = set(env_example())
    assert not used - listed, f"used in docker-compose.yml but missing from .env.example: {sorted(used - listed)}"
    assert not listed - used, f"in .env.example but unused by docker-compose.yml: {sorted(listed - used)}"


def test_secrets_are_required_and_never_hard_coded() -> None:
    found: dict[str, list[str | None]] = {secret: [] for secret in REQUIRED_SECRETS}
    for text in strings(load_compose()):
        for match in references(text):
            if variable(match) in found:
                found[variable(match)].append(match.group("sep"))
    for secret, separators in found.items():
        assert separators, f"{secret} is not used in docker-compose.yml"
        assert set(separators) == {":?"}, f"{secret} must always be ${{{secret}:?message}} (no default)"
    for name in load_compose()["services"]:
        for key, value in environment(name).items():
            if key in REQUIRED_SECRETS:
                assert value and value.startswith(f"${{{key}:?"), f"{name}: {key} must come from .env"


def test_postgres_has_a_healthcheck_and_a_volume() -> None:
    postgres = service(DATABASE_SERVICE)
    assert "pg_isready" in " ".join(map(str, postgres["healthcheck"]["test"]))
    assert any(str(v).split(":")[0] in (load_compose().get("volumes") or {}) for v in postgres.get("volumes", []))


def test_database_init_script_is_mounted_and_exists() -> None:
    scripts = init_scripts()
    assert scripts, "no init script mounted into /docker-entrypoint-initdb.d"
    for script in scripts:
        assert script.is_file(), script


# --- each app service ---------------------------------------------------------------------------------------


@app_service
def test_build_context_and_dockerfile_exist(name: str) -> None:
    context, dockerfile = build(name)
    assert context.is_dir(), f"{name}: build context {context} is missing"
    assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"


@app_service
def test_copy_sources_exist_in_the_build_context(name: str) -> None:
    context, dockerfile = build(name)
    patterns = dockerignore(context)
    for sources, _destination in copies(dockerfile):
        for source in sources:
            assert ".." not in Path(source).parts, f"{name}: COPY {source} leaves the build context"
            if re.match(r"^[a-z]+://", source):
                continue
            if _GLOB_CHARS.search(source):  # BuildKit accepts a wildcard that matches nothing (optional files)
                matches = [p.relative_to(context).as_posix() for p in context.glob(source)]
            else:
                assert (context / source).exists(), f"{name}: COPY source {source} does not exist in {context}"
                matches = [posixpath.normpath(source)]
            for match in matches:
                assert not ignored(patterns, match), f"{name}: COPY source {match} is excluded by .dockerignore"


@app_service
def test_runtime_files_reach_the_image(name: str) -> None:
    context, dockerfile = build(name)
    patterns = dockerignore(context)
    sources = [
        source
        for sources, _ in copies(dockerfile)
        for source in sources
        if not _GLOB_CHARS.search(source) and (context / source).exists()
    ]
    files = runtime_files(name, dockerfile, context)
    assert files
    for relative in files:
        assert not ignored(patterns, relative), f"{name}: {relative} is excluded by .dockerignore"
        copied = any(relative == s or relative.startswith(posixpath.normpath(s).rstrip("/") + "/") for s in sources)
        assert copied, f"{name}: {relative} is not copied into the image"


@app_service
def test_secrets_and_local_state_stay_out_of_the_build_context(name: str) -> None:
    context, dockerfile = build(name)
    patterns = dockerignore(context)
    service_dir = dockerfile.parent.relative_to(context).as_posix()
    for relative in (".env", f"{service_dir}/.env", ".git/config", ".venv/pyvenv.cfg", f"{service_dir}/data/x.db"):
        assert ignored(patterns, relative), f"{relative} would be sent to the docker build"


@app_service
def test_image_conventions(name: str) -> None:
    _context, dockerfile = build(name)
    steps = instructions(dockerfile)
    assert next(a for k, a in steps if k == "FROM").startswith("python:3.11-slim")
    env = " ".join(a for k, a in steps if k == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    users = [a for k, a in steps if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{name}: the image must run as a non-root user"


@app_service
def test_migrations_run_before_the_server(name: str) -> None:
    """Either a one-shot migrate service completes first, or the image's entrypoint runs alembic."""
    depends_on = service(name).get("depends_on") or {}
    if isinstance(depends_on, dict) and any(
        (d or {}).get("condition") == "service_completed_successfully" for d in depends_on.values()
    ):
        return
    context, dockerfile = build(name)
    scripts = [context_file(dockerfile, context, word) for word in entrypoint(dockerfile) if word.startswith("/")]
    script_texts = [script.read_text(encoding="utf-8") for script in scripts if script]
    assert any("upgrade head" in text for text in script_texts), f"{name}: nothing applies the migrations"
    assert any(re.search(r'^\s*exec "\$@"', text, re.M) for text in script_texts), f"{name}: entrypoint must exec"


@app_service
def test_every_setting_is_set_in_compose(name: str) -> None:
    env_names = settings_env_names(settings_class(name))
    configured = {key.upper() for key in environment(name)}
    missing = {
        field: env_name
        for field, env_name in env_names.items()
        if env_name.upper() not in configured and field not in OPTIONAL_SETTINGS_FIELDS
    }
    assert not missing, f"{name}: settings not set in its compose environment (field: variable): {missing}"
    unknown = configured - {env_name.upper() for env_name in env_names.values()}
    assert not unknown, f"{name}: compose sets variables its Settings never reads: {sorted(unknown)}"


@app_service
def test_production_without_the_dev_key(name: str) -> None:
    env = environment(name)
    assert with_defaults(env.get("CRM_ENV") or "") == "production", f"{name}: CRM_ENV must default to production"
    assert "CRM_DEV_API_KEY" in env, f"{name}: CRM_DEV_API_KEY must be set, to an empty value (its default is a key)"
    assert env["CRM_DEV_API_KEY"] == "", f"{name}: CRM_DEV_API_KEY must be empty"


@app_service
def test_database_url_points_at_its_own_database(name: str) -> None:
    url = with_defaults(environment(name).get("DATABASE_URL") or "")
    database = name.replace("-", "_")  # one database per service, made by the init script
    assert url.startswith("postgresql+asyncpg://"), f"{name}: DATABASE_URL {url}"
    assert url.endswith(f"@{DATABASE_SERVICE}:5432/{database}"), f"{name}: DATABASE_URL must use database {database}"
    created = " ".join(script.read_text(encoding="utf-8") for script in init_scripts() if script.is_file())
    assert re.search(rf"\b{database}\b", created), f"no database init script creates {database}"


@app_service
def test_waits_for_a_healthy_database(name: str) -> None:
    depends_on = service(name).get("depends_on")
    assert isinstance(depends_on, dict), f"{name}: depends_on needs the long form, with a condition"
    condition = (depends_on.get(DATABASE_SERVICE) or {}).get("condition")
    assert condition == "service_healthy", f"{name}: must wait for {DATABASE_SERVICE} with condition service_healthy"
    assert service(name).get("restart") == "unless-stopped", f"{name}: restart must be unless-stopped"


@app_service
def test_has_a_readiness_healthcheck(name: str) -> None:
    healthcheck = service(name).get("healthcheck") or {}
    assert not healthcheck.get("disable"), f"{name}: healthcheck disabled"
    test = healthcheck.get("test")
    text = test if isinstance(test, str) else " ".join(map(str, test or []))
    assert "/readyz" in text, f"{name}: the healthcheck must probe /readyz"
    assert "curl" not in text and "wget" not in text, f"{name}: python:3.11-slim has neither curl nor wget"


@app_service
def test_env_example_loads_into_the_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every value .env.example gives parses into the settings (read as a dotenv file, in development mode)."""
    cls = settings_class(name)
    for env_name in settings_env_names(cls).values():
        monkeypatch.delenv(env_name, raising=False)
    monkeypatch.setenv("CRM_ENV", "development")
    settings = cls(_env_file=ENV_EXAMPLE)
    example = env_example()
    for field, env_name in settings_env_names(cls).items():
        if env_name in example and env_name != "CRM_ENV" and example[env_name] not in ("", "''", '""'):
            assert getattr(settings, field) not in (None, ""), f"{env_name} from .env.example was not read"
