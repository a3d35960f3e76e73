# syntax=docker/dockerfile:1
# The dialtone image: every `dialtone` subcommand (migrate, api, relay, worker,
# b2bua, ...) from one image; docker-compose.yml picks the command per service.
FROM python:3.11-slim

COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /bin/

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1

WORKDIR /app

# Dependencies first, from the lock file only, so code edits reuse this layer.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project

# The project itself (editable, so migrations/ is found next to the code).
COPY . .
RUN uv sync --frozen --no-dev

# recordings/ exists in the image so a named volume mounted there (docker-compose.yml:
# the B2BUA writes, `dialtone recordings` uploads) starts owned by the service user.
RUN useradd --system --uid 10001 --create-home dialtone \
    && mkdir -p /var/lib/dialtone/recordings && chown -R dialtone /var/lib/dialtone
USER dialtone

# Inside a container the services must listen beyond loopback.
ENV DIALTONE_DATA_DIR=/var/lib/dialtone \
    DIALTONE_HTTP_HOST=0.0.0.0

EXPOSE 8080 5070/udp
ENTRYPOINT ["dialtone"]
CMD ["up"]
