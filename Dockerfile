# Competence passport: a slim, non-root image that runs with a read-only root filesystem.
#
#   docker build -t competence-passport:0.1.0 .
#   docker run --rm --read-only --tmpfs /tmp -p 8000:8000 --env-file passport.env \
#     competence-passport:0.1.0
#
# Migrations are a separate step (`passport migrate`, the Helm chart's pre-upgrade Job), so no
# serving replica ever needs the schema owner's credentials. docs/deployment.md has the rest.

# One base for both stages: the venv's interpreter symlinks must point at the same Python.
# A patch-level tag is reproducible; bump it (or pin a digest) when a new patch is published.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

WORKDIR /src

# A pinned pip (the one the dev venv uses). Every runtime dependency has a manylinux wheel, so
# the build stage needs no compiler either.
RUN python -m venv /opt/venv \
 && pip install --no-cache-dir pip==26.3

# Dependencies alone first, with a placeholder package standing in for the source, so this
# layer is rebuilt only when the metadata or the lock change, not on every code change.
# requirements.lock also pins the dev tools: as constraints (-c) they are never installed.
COPY pyproject.toml requirements.lock README.md ./
RUN mkdir service \
 && touch service/__init__.py \
 && pip install --no-cache-dir -c requirements.lock . \
 && pip uninstall --yes competence-passport \
 && rm -rf service build ./*.egg-info

COPY service/ service/
COPY migrations/ migrations/

# Non-editable, no dev extras. The wheel carries the ESCO files (package data of
# service.taxonomy) and the migrations (the top-level package `migrations`, where
# service.db.migrate finds them); the build fails if either is missing. Precompiled, since the
# root filesystem is read-only at run time. setuptools came with the venv, is needed by nothing
# at run time and only draws CVE reports.
RUN pip install --no-cache-dir --no-deps -c requirements.lock . \
 && pip uninstall --yes setuptools \
 && pip check \
 && python -m compileall -q "$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/migrations" \
 && python -c "import sys; from service.db.migrate import MIGRATIONS_DIR as m, head_revision; from service.taxonomy.esco_import import SHIPPED_ESCO_DIR as e; ok = (m / 'env.py').is_file() and any(e.glob('*.csv.gz')) and head_revision(); sys.exit(0 if ok else f'migrations ({m}) or ESCO files ({e}) missing')"


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="competence-passport" \
      org.opencontainers.image.description="A lifelong, verifiable record of a citizen's competences (ESCO)." \
      org.opencontainers.image.licenses="EUPL-1.2"

# No system packages beyond the base image: Typst (a wheel) typesets the CV attachment in the
# DejaVu fonts the package ships.

# A fixed numeric UID/GID, so Kubernetes can check runAsNonRoot and volumes can be given to it.
RUN groupadd --system --gid 10001 passport \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin passport

COPY --from=build /opt/venv /opt/venv

# HOME, TMPDIR and the data dir live under /tmp, the one writable mount (an emptyDir in
# Kubernetes, --tmpfs with docker run); nothing else is written, bytecode included.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    PASSPORT_DATA_DIR=/tmp/passport \
    PASSPORT_ENVIRONMENT=production \
    PASSPORT_HOST=0.0.0.0 \
    PASSPORT_PORT=8000 \
    PASSPORT_WORKERS=2

# Empty and root-owned: the process cannot write its working directory.
WORKDIR /app
USER 10001:10001
EXPOSE 8000

# No curl in slim images; -I keeps the working directory and PYTHON* variables out of sys.path.
# urlopen raises on a refused connection or any non-2xx status, which makes the exit code 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-I", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"]

# Exec form through sh so ${PASSPORT_WORKERS} expands; `exec` makes the server PID 1, so it
# receives SIGTERM itself and shuts down gracefully.
CMD ["sh", "-c", "exec passport serve --no-migrate --workers \"${PASSPORT_WORKERS:-2}\""]
