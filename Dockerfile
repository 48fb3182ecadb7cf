# syntax=docker/dockerfile:1
# The back office image: web (gunicorn), Celery worker and Celery beat all run from it (compose.yaml).
# Stage 1 builds wheels and a virtualenv, compiles the messages and collects the static files; stage 2 is
# the slim runtime, run as an unprivileged user. Build: docker build -t support-portal .

ARG PYTHON_VERSION=3.13

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential gettext \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN pip wheel --wheel-dir /wheels -r /tmp/requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels -r /tmp/requirements.txt
WORKDIR /app
COPY . /app
# Messages (.mo) and static files are part of the image: nothing is written at start-up.
# collectstatic runs under the production settings (WhiteNoise's manifest storage); the values below exist
# only for this step and are never part of the runtime configuration.
RUN DJANGO_SETTINGS_MODULE=support_portal.settings.base /opt/venv/bin/python manage.py compilemessages -v 0 \
 && DJANGO_SETTINGS_MODULE=support_portal.settings.production \
    DJANGO_SECRET_KEY=build-only-collectstatic-key-never-used-at-run-time-0123456789abcdef \
    DJANGO_ALLOWED_HOSTS=build.invalid DATABASE_URL=postgres://build@build.invalid/build \
    PAYOUT_ENCRYPTION_KEY=build-only DJANGO_STATIC_ROOT=/app/staticfiles \
    /opt/venv/bin/python manage.py collectstatic --noinput -v 0

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=support_portal.settings.production \
    DJANGO_STATIC_ROOT=/app/staticfiles DJANGO_MEDIA_ROOT=/app/media
RUN groupadd --system django \
 && useradd --system --gid django --home-dir /app --shell /usr/sbin/nologin django
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=django:django /app /app
RUN mkdir -p /app/media /app/var && chown django:django /app/media /app/var \
 && rm -rf /app/.venv /app/var/postgres /app/db.sqlite3
WORKDIR /app
USER django
EXPOSE 8000
# /healthz answers without the database; the proxy's headers are sent so the production settings
# (allowed hosts, HTTPS redirect) treat it like a real request.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "scripts/healthcheck.py", "/healthz"]
ENTRYPOINT ["scripts/docker-entrypoint"]
CMD ["gunicorn", "support_portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-", "--forwarded-allow-ips", "*"]
