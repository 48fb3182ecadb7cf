"""The HTTP half of scripts/prod-smoke: a staff user signs in to the running gunicorn like a browser would.

Plain HTTP to 127.0.0.1 with the headers the TLS proxy adds (Host, X-Forwarded-Proto: https); cookies are
kept by hand because the production cookies are Secure (`__Host-` names), which an http:// client would
not send back. Exits non-zero with the step that failed.
"""

from __future__ import annotations

import argparse
import http.client
import re
import sys
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

from support_portal.accounts import totp

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Browser:
    def __init__(self, port: int, host: str) -> None:
        self.port = port
        self.host = host
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, object] | None = None) -> tuple[int, str, bytes]:
        headers = {"Host": self.host, "X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.10"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form, doseq=True)
            headers |= {
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": f"https://{self.host}",
                "Referer": f"https://{self.host}{path}",
            }
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel.value:
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        location = response.headers.get("Location", "")
        connection.close()
        return response.status, location, content

    def get(self, path: str, *, expect: int = 200) -> tuple[str, bytes]:
        status, location, content = self.request("GET", path)
        check(status == expect, f"GET {path}: {status} (expected {expect}) {location}")
        return location, content

    def post(self, path: str, form: dict[str, object], *, expect: int) -> tuple[str, bytes]:
        status, location, content = self.request("POST", path, form)
        check(status == expect, f"POST {path}: {status} (expected {expect}) {location}")
        return location, content


def check(condition: bool, failure: str) -> None:
    if not condition:
        print(f"prod-smoke-client: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)


def csrf_token(page: bytes) -> str:
    found = CSRF_FIELD.search(page.decode())
    check(found is not None, "no CSRF token in the form")
    assert found is not None
    return found.group(1)


def path_of(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--admin", required=True, help="the admin's path, e.g. /ops-smoke/")
    parser.add_argument("--credentials", required=True, help="file: username, password, TOTP secret")
    args = parser.parse_args()
    with open(args.credentials, encoding="utf-8") as credentials:
        username, password, secret = credentials.read().split()
    admin = args.admin
    browser = Browser(args.port, args.host)

    # Static files come from WhiteNoise (hashed names from the manifest).
    _location, login_page = browser.get(f"{admin}login/?next={admin}")
    stylesheet = re.search(r'href="(/static/[^"]+\.css)"', login_page.decode())
    check(stylesheet is not None, "the sign-in page links no stylesheet")
    assert stylesheet is not None
    browser.get(stylesheet.group(1))

    # Step 1: password.
    location, _ = browser.post(
        f"{admin}login/?next={admin}",
        {"csrfmiddlewaretoken": csrf_token(login_page), "username": username, "password": password, "next": admin},
        expect=302,
    )
    # Step 2: the admin sends the half-signed-in user to the code screen.
    location, _ = browser.get(path_of(location), expect=302)
    check("/accounts/two-factor/" in location, f"expected the two-factor step, went to {location}")
    verify_path = path_of(location)
    _location, verify_page = browser.get(verify_path)
    # The code of the next step: enrolment used the current one, and each step's code counts once.
    code = totp.code_at(secret, totp.current_step() + 1)
    location, _ = browser.post(verify_path, {"csrfmiddlewaretoken": csrf_token(verify_page), "code": code}, expect=302)
    _location, index = browser.get(path_of(location))
    check(b"smoke-manager" in index, "the admin index does not show the signed-in user")
    print("prod-smoke-client: signed in with password and TOTP code")

    _location, tickets = browser.get(f"{admin}tickets/ticket/")
    check(b"result_list" in tickets, "the ticket list shows no tickets")
    print("prod-smoke-client: ticket list")

    _location, programs = browser.get(f"{admin}claims/program/")
    program = re.search(r'name="_selected_action" value="(\d+)"', programs.decode())
    check(program is not None, "the program list shows no program")
    assert program is not None
    _location, preview = browser.post(
        f"{admin}claims/program/",
        {
            "csrfmiddlewaretoken": csrf_token(programs),
            "action": "preview_csv",
            "_selected_action": [program.group(1)],
        },
        expect=200,
    )
    check(preview.count(b"\n") >= 1, "the preview CSV is empty")
    print(f"prod-smoke-client: program preview ({preview.count(b'\n') - 1} rows)")


if __name__ == "__main__":
    main()
