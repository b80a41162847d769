# One image for every service of docker-compose.yml: api, ray-head, ray-worker.
FROM python:3.11-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 NAS_DATA_DIR=/data
# torch first, the CPU build, kept by pinning it again when the project installs
ARG TORCH_VERSION=2.13.0
RUN pip install "torch==${TORCH_VERSION}" --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY nas nas
COPY search_spaces search_spaces
COPY api api
COPY workers workers
COPY configs configs
RUN pip install . "torch==${TORCH_VERSION}"  # the pin again: resolving the project must not replace the CPU build
VOLUME /data
EXPOSE 8000
CMD ["nas", "serve", "--host", "0.0.0.0", "--port", "8000"]
