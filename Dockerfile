# syntax=docker/dockerfile:1
# One image for the iotmon services; the command picks which: `ingest`, `api`,
# `simulate ...` (see docker-compose.yml). Entry point: the `iotmon` CLI.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system iotmon \
    && useradd --system --gid iotmon --home-dir /app --no-create-home iotmon \
    && install -d -o iotmon -g iotmon /var/lib/iotmon

WORKDIR /app

# The distributables, each with its own pyproject.toml; pinned by the shared constraints.
COPY requirements/ requirements/
COPY contract/ contract/
COPY devices/ devices/
COPY edge/ edge/
COPY services/ services/
RUN pip install -c requirements/constraints.txt ./contract ./devices ./edge ./services

# Dashboards for `iotmon dashboards push` (it looks in ./dashboards).
COPY dashboards/ dashboards/

USER iotmon
EXPOSE 8000
ENTRYPOINT ["iotmon"]
CMD ["--help"]
