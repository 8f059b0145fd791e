# CPU-only image of the cce_demo Gradio app.
#
#   docker build -t cce-demo .
#   docker run --rm -p 127.0.0.1:7860:7860 -v cce-storage:/data -v cce-cifar:/home/user/app/data cce-demo
#
# Then open http://127.0.0.1:7860 (the -p form publishes on this machine only). Writable state:
#   /data                persistent storage, as a Hugging Face Space mounts it: when a volume is mounted here
#                        the app keeps its runs in /data/runs, so they survive restarts. Without a volume the
#                        runs go to /home/user/app/runs, inside the container.
#   /home/user/app/data  CCE_DATA_DIR: CIFAR-10/100 (torchvision downloads it there on the first real-data run;
#                        HF_HUB_OFFLINE only concerns the Hugging Face Hub, not that download)
# CCE_RUNS_DIR is deliberately not set here: it would override the choice of /data/runs (set it with -e to
# choose another folder). These folders are created owned by uid 1000, so a fresh named volume mounted on
# them inherits that owner and is writable by the app. For a bind mount, make the host folder writable by
# uid 1000.
# The code, the shipped pretrained runs (checkpoints/) and the example images belong to root: the app
# (uid 1000) can read them but not change them.
#
# Two build arguments replace what a mirror or an offline build has to replace; the defaults give the
# standard image:
#   BASE_IMAGE       the Python 3.11 base image (default python:3.11-slim), e.g. the same image from a
#                    registry mirror: --build-arg BASE_IMAGE=mirror.example/library/python:3.11-slim
#   TORCH_INDEX_URL  where torch/torchvision come from (default: PyTorch's CPU wheel index). Another URL is
#                    used as pip's --index-url for them (a mirror of that index); an empty value means pip's
#                    default index (PyPI, or whatever PIP_INDEX_URL / pip.conf of the base image names),
#                    whose Linux torch wheels are the CUDA build: several GB larger, same behaviour on CPU.
# Proxies need no argument: docker build passes HTTP_PROXY/HTTPS_PROXY/NO_PROXY through to pip.
# No `# syntax=` directive on purpose: it would make BuildKit pull a frontend image from Docker Hub, which
# a mirror-only or offline builder may not reach. Nothing here needs more than the built-in frontend.
#
# scripts/docker_smoke.sh IMAGE runs a built image end to end (health, API, restart, uid, read-only files).

# Same Python minor version as the project (3.11).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# Declared after FROM so that it is in scope for the RUN below.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    HOME=/home/user \
    CCE_DATA_DIR=/home/user/app/data

# Non-root user with uid 1000 (the Hugging Face Spaces convention) and its writable state directories.
RUN useradd -m -u 1000 user \
    && mkdir -p /home/user/app/runs /home/user/app/data /data \
    && chown -R user:user /home/user/app /data

WORKDIR /home/user/app

# Dependencies first, so editing the code does not invalidate this layer.
# torch/torchvision first, from TORCH_INDEX_URL (default: the CPU index; the PyPI wheels pull in gigabytes of
# CUDA libraries); an empty TORCH_INDEX_URL drops --index-url, so pip uses its default index. Keep these pins
# equal to requirements.txt (tests/test_deploy.py checks): the CPU index's 2.14.1+cpu satisfies
# requirements.txt's torch==2.14.1 (PEP 440 ignores the local label), so the second pip call keeps it and
# installs only the rest. The second call holds the web stack (and torch's small dependencies) at the tested
# versions of constraints.txt, as every install does; the first does not, because the torch index need not
# carry those versions.
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} \
        torch==2.14.1 torchvision==0.29.1 \
    && pip install --no-cache-dir -r requirements.txt -c constraints.txt

# What app.py needs at runtime: the entry point, the whole package directory (new modules and subpackages
# come along), the shipped runs, the example images and the result grids of the Results tab. Owned by root,
# made world-readable and not writable by anyone else whatever the build context's permissions were.
# results/<grid>/ holds results.json (what the tab reads) and results.md; the grid's per-cell runs
# (results/<grid>/runs/, git-ignored, present only where a grid was trained) are not needed and are removed.
COPY app.py ./
COPY cce_demo/ ./cce_demo/
COPY checkpoints/ ./checkpoints/
COPY examples/ ./examples/
COPY results/ ./results/
RUN rm -rf results/*/runs \
    && chmod -R a+rX,go-w app.py cce_demo checkpoints examples results

EXPOSE 7860

# No curl/wget in the slim image: probe the UI with Python's standard library.
HEALTHCHECK --interval=30s --timeout=10s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/' % os.environ.get('GRADIO_SERVER_PORT', '7860'), timeout=8)"]

# `python app.py` runs as PID 1, which gets no default action for any signal: the app handles SIGINT and
# SIGTERM itself, whenever they come (also during start-up and the speed probe). It closes the server, stops
# the speed probe and the running jobs within a step (they keep what they trained), joins those threads and
# exits 0. SIGINT, so that the same stop works for `docker stop` and for Ctrl-C in `docker run -it`.
STOPSIGNAL SIGINT

USER user

CMD ["python", "app.py"]
