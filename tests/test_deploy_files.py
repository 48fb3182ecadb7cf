"""The deployment files people already know (Dockerfile, compose.yaml, .env.example) say what README says.

Docker is not available where this suite runs; `make prod-smoke` starts the same stack without containers.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_production_variables() -> set[str]:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Production", 1)[1].split("\n## ", 1)[0]
    table = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, flags=re.MULTILINE))
    taken = set(re.findall(r"`([A-Z][A-Z0-9_]{3,})`", section.split("and takes", 1)[1].split("\n\n", 1)[0]))
    return table | taken


def test_env_example_lists_every_production_variable_of_the_readme() -> None:
    variables = _readme_production_variables()
    assert {"DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "PAYOUT_ENCRYPTION_KEY"} <= variables
    assert {"REDIS_URL", "DJANGO_ADMIN_URL", "DJANGO_CSRF_TRUSTED_ORIGINS", "DJANGO_EMAIL_BACKEND"} <= variables

    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))

    assert sorted(variables - listed) == []


def _blocks(text: str, indent: int) -> dict[str, str]:
    """The YAML mapping at `indent` spaces as {key: its indented body} (no YAML library in the venv)."""
    blocks: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        found = re.match(rf"^ {{{indent}}}([A-Za-z_][\w-]*):(.*)$", line)
        if found:
            key = found.group(1)
            blocks[key] = found.group(2) + "\n"
        elif key is not None and (line.startswith(" " * (indent + 1)) or not line.strip()):
            blocks[key] += line + "\n"
        elif line.strip() and not line.startswith(" " * (indent + 1)):
            key = None
    return blocks


def test_compose_runs_web_worker_beat_postgres_and_redis_with_health_checks_and_named_volumes() -> None:
    text = (ROOT / "compose.yaml").read_text()
    top = _blocks(text, 0)
    services = _blocks(top["services"], 2)

    assert sorted(services) == ["beat", "postgres", "redis", "web", "worker"]
    assert [name for name in ("web", "worker", "postgres", "redis") if "healthcheck:" not in services[name]] == []
    assert 'test: ["CMD", "python", "scripts/healthcheck.py", "/healthz"]' in services["web"]
    assert sorted(_blocks(top["volumes"], 2)) == ["media", "postgres_backups", "postgres_data", "redis_data"]
    assert "- postgres_data:/var/lib/postgresql/data" in services["postgres"]
    # web, worker and beat share the Django block: the image, .env, and healthy PostgreSQL and Redis first.
    django = top["x-django"]
    assert "env_file: .env" in django
    assert re.search(r"postgres:\n\s+condition: service_healthy", django)
    assert [name for name in ("web", "worker", "beat") if "<<: *django" not in services[name]] == []
    assert 'command: ["celery", "-A", "support_portal", "beat"' in services["beat"]


def test_dockerfile_builds_in_two_stages_and_runs_gunicorn_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM python:\$\{PYTHON_VERSION\}-slim\S* AS (\w+)$", dockerfile, flags=re.MULTILINE)

    assert stages == ["build", "runtime"]
    assert re.search(r"^ARG PYTHON_VERSION=3\.1[23]$", dockerfile, flags=re.MULTILINE)
    runtime = dockerfile.split("AS runtime", 1)[1]
    assert "pip wheel" in dockerfile.split("AS runtime", 1)[0]
    assert "compilemessages" in dockerfile and "collectstatic" in dockerfile
    assert re.search(r"^USER django$", runtime, flags=re.MULTILINE)
    assert 'CMD ["python", "scripts/healthcheck.py", "/healthz"]' in runtime
    assert re.search(r'^CMD \["gunicorn", "support_portal.wsgi"', runtime, flags=re.MULTILINE)
