# The cvatkit image: the TFJob's `cvatkit worker RUN_DIR` and every step of the Argo
# Workflow that `cvatkit cluster render` writes. Its entry point is the `cvatkit` command.
# The kit is installed with the pins of .venv (constraints.txt).
#
#   docker build -t cvatkit:0.1.0 .                                 # CPU
#   docker build --build-arg DEVICE=cuda -t cvatkit:0.1.0-cuda .    # NVIDIA GPUs
#
# DEVICE=cuda adds TensorFlow's CUDA libraries as pip wheels (tensorflow[and-cuda], at the
# pinned TensorFlow version); the node's NVIDIA driver comes from the cluster (the NVIDIA
# device plugin / container toolkit), so both flavours start from the same Python base.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ARG DEVICE=cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/home/cvatkit

WORKDIR /opt/cvatkit
COPY pyproject.toml constraints.txt README.md ./
COPY cvatkit ./cvatkit
RUN case "$DEVICE" in \
        cpu) extra="" ;; \
        cuda) extra="tensorflow[and-cuda]" ;; \
        *) echo "DEVICE must be cpu or cuda, not '$DEVICE'" >&2; exit 1 ;; \
    esac \
    && python -m pip install -c constraints.txt . ${extra:+"$extra"} \
    && python -m pip check \
    && mkdir -p "$HOME" && chmod 1777 "$HOME"

# Any user id works (the manifests run the pods as the notebook's user, so files on the
# shared claim stay theirs); this one is JupyterHub's default user.
USER 1000:100
WORKDIR /home/cvatkit
ENTRYPOINT ["cvatkit"]
CMD ["--help"]
