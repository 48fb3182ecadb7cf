"""Container health check: GET a path on the local gunicorn as the TLS proxy would send it; exit 0 on 200.

    python scripts/healthcheck.py /healthz   (Dockerfile HEALTHCHECK, compose.yaml)
Host is the first of DJANGO_ALLOWED_HOSTS and X-Forwarded-Proto is https, so the production settings
(allowed hosts, HTTPS redirect) answer as for a real request. Standard library only.
"""

import http.client
import os
import sys


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    host = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost").split(",")[0].strip() or "localhost"
    port = int(os.environ.get("HEALTHCHECK_PORT", "8000"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        connection.request("GET", path, headers={"Host": host, "X-Forwarded-Proto": "https"})
        status = connection.getresponse().status
    except OSError as error:
        print(f"healthcheck: {error}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if status != 200:
        print(f"healthcheck: GET {path} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
