# syntax=docker/dockerfile:1
# One image for every arxiv-bot service: the compose file picks the role with `command:`
# (arxiv-bot worker fetcher|scorer|summarizer|publisher, beat, db upgrade, serve).
# No secrets are baked in: keys and passwords come from the environment at run time (.env).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ARXIV_BOT_CONFIG=/app/config.json \
    OUTPUT_DIR=/app/output \
    LOG_LEVEL=INFO

WORKDIR /app

# A fixed uid so named volumes keep the same owner across image rebuilds.
RUN groupadd --system --gid 10001 arxivbot \
    && useradd --system --uid 10001 --gid arxivbot --home-dir /app --shell /usr/sbin/nologin arxivbot

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes, not on
# every code edit. The list is read from pyproject.toml itself so there is one source of truth.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code, then the package itself without dependencies (already installed above); this puts the
# `arxiv-bot` console script on PATH.
COPY shared ./shared
COPY services ./services
COPY web ./web
COPY arxiv_bot ./arxiv_bot
# pyproject.toml names README.md as the package description: the build needs it.
COPY README.md ./
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info \
    && mkdir -p /app/output /app/data \
    && chown arxivbot:arxivbot /app /app/output /app/data

# Last, so editing config.json rebuilds only this layer. Mount a file over it to change it without
# a rebuild (docs/DEPLOY.md).
COPY config.json ./

# /app itself is writable by the service user because Celery beat keeps its schedule state file
# in the working directory; the installed code lives in site-packages, owned by root. The user is
# given by number (arxivbot) so orchestrators can verify it is not root without reading /etc/passwd.
USER 10001:10001

EXPOSE 8000

# No HEALTHCHECK here: workers and beat share this image and have no HTTP port, so a web check
# would mark them unhealthy. docker-compose.yml gives the web service its /healthz check.
CMD ["arxiv-bot", "serve", "--host", "0.0.0.0", "--port", "8000"]
