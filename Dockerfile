# The Overseer image: the operator (overseer-operator) and the runner (overseer-runner).
# Users build their runner image FROM this one with their handler module copied into /app
# (see examples/Dockerfile and docs/deploy.md).
#
#   docker build -t overseer:0.1.0 .
#
# The final stage holds the Python runtime and a virtualenv with Overseer and its
# dependencies, nothing else: no compiler, no source tree, no package caches. It runs as
# the numeric user 10001 and works with a read-only root filesystem (the chart mounts an
# emptyDir at /tmp, the only place anything is written).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: the wheel, and a virtualenv with it and its dependencies installed --------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel is built from, so that a change to the tests or docs keeps the cache.
COPY pyproject.toml README.md ./
COPY overseer/ overseer/
COPY controller/ controller/
COPY runner/ runner/
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/overseer \
 && /opt/overseer/bin/pip install /wheels/overseer-*.whl \
 # Byte-compile now: at run time the root filesystem is read-only.
 && /opt/overseer/bin/python -m compileall -q /opt/overseer

# --- final: the runtime ------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# A global ARG is not seen inside a stage unless the stage declares it again.
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="overseer" \
      org.opencontainers.image.description="Graphs of dependent jobs on Kubernetes: the operator and the runner" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

COPY --from=builder /opt/overseer /opt/overseer

# HOME is /tmp because nothing else is writable; bytecode is already compiled.
ENV PATH=/opt/overseer/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    OVERSEER_LOG_FORMAT=json

# The runner imports the handler module from its working directory: user images copy
# their package here.
WORKDIR /app
USER 10001:10001

# No ENTRYPOINT: a pod's command (or `docker run IMAGE overseer-runner ...`) names the
# program, overseer-operator or overseer-runner.
CMD ["overseer-runner", "--help"]
