"""No secret in the repository: every file git would commit is scanned for keys, tokens and passwords.

Allowed on purpose (each listed below with why): the documented demo password (printed by `make run`,
refused under production settings), throwaway test keys, and credentials of hosts that cannot exist
(`.invalid`, `.internal`, `localhost`).
"""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
    "Fernet key": re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}=(?![A-Za-z0-9_=-])"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
    "Django secret key": re.compile(r"SECRET_KEY\s*=\s*[\"'](?!dev-only-insecure-key)[^\"']{8,}[\"']"),
    "password assignment": re.compile(r"\b[A-Z_]*PASSWORD[A-Z_]*\s*[:=]\s*[\"'][^\"']{6,}[\"']"),
    "credentials in a URL": re.compile(r"[a-z+]+://[^:/\s@\"']+:[^@/\s\"']+@(?P<host>[^/:\s\"']+)"),
}

# (path, exact match) pairs that are not secrets; keep the reason next to each.
ALLOWED = {
    # The demo password, documented in README.md; production refuses demo users.
    ("support_portal/core/demo_users.py", 'DEMO_PASSWORD = "demo-pass-2026"'),
    # A throwaway Fernet key that only exists to make production settings load in a subprocess test.
    ("tests/core/test_settings.py", "x6rn9mV0M0r0mbmqV8Sg2yLqNn7m4k0oJg0gYz6o9bE="),
    # The development/test payout key; payouts/crypto.py refuses it under the production settings.
    ("payouts/crypto.py", "2O46A9Xo3j6x8KgyIUgRDuOeZfEsTh1O-RXOf3R4GAo="),
}
HOSTS_THAT_CANNOT_EXIST = (".invalid", ".internal", ".example", "localhost", "127.0.0.1", "example.jp", "host")
FORBIDDEN_FILE_NAMES = re.compile(r"(^|/)(\.env|id_rsa|id_ed25519|.*\.pem|.*\.key|.*\.p12|.*\.pfx)$")


def _repository_files() -> list[str]:
    # Tracked files and new files that are not ignored: what the next commit could contain.
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return sorted({name for name in listed if (ROOT / name).is_file()})


def _findings(path: str, text: str) -> list[str]:
    found = []
    for label, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            value = match.group(0)
            if (path, value) in ALLOWED:
                continue
            if label == "password assignment" and path.startswith("tests/"):
                continue  # passwords of users created in the tests' throwaway databases
            if label == "credentials in a URL" and match.group("host").endswith(HOSTS_THAT_CANNOT_EXIST):
                continue
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{path}:{line}: {label}: {value[:12]}…")
    return found


def test_no_secret_in_any_file_of_the_repository():
    findings = []
    for path in _repository_files():
        if path.startswith("tests/security/test_no_secrets_in_repository.py"):
            continue
        if FORBIDDEN_FILE_NAMES.search(path):
            findings.append(f"{path}: a key or environment file must not be committed")
            continue
        try:
            text = (ROOT / path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary files (images, .mo) carry no source secrets
        findings += _findings(path, text)
    assert findings == []


def test_the_scanner_finds_what_it_should():
    fake_key = "A" * 43 + "="
    pem = "-----BEGIN " + "RSA PRIVATE KEY-----"
    samples = {
        pem: "private key",
        f"KEY = '{fake_key}'": "Fernet key",
        "SECRET_KEY = 'abcdefghijklmnopqrstuvwxyz'": "Django secret key",
        'DB_PASSWORD = "hunter2hunter2"': "password assignment",
        "redis://user:s3cr3tpass@cache.prod.jp:6379/0": "credentials in a URL",
    }
    for text, label in samples.items():
        assert any(label in finding for finding in _findings("sample.py", text)), text
    assert _findings("sample.py", "postgres://u:p@db.invalid/portal") == []
