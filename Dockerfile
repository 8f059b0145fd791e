# syntax=docker/dockerfile:1
# CPU-only image of the cce_demo Gradio app.
#
#   docker build -t cce-demo .
#   docker run --rm -p 7860:7860 \
#       -v cce-runs:/home/user/app/runs -v cce-data:/home/user/app/data cce-demo
#
# Then open http://localhost:7860. Writable state lives in two directories (named volumes keep it
# across restarts; without them it is lost with the container):
#   /home/user/app/runs  CCE_RUNS_DIR: training runs started from the UI
#   /home/user/app/data  CCE_DATA_DIR: CIFAR-10/100 (torchvision downloads it there on the first real-data run;
#                        HF_HUB_OFFLINE only concerns the Hugging Face Hub, not that download)
# Both are created owned by uid 1000 here, so a fresh named volume mounted on them inherits that owner and
# is writable by the app. For a bind mount, make the host folder writable by uid 1000.
# The shipped pretrained runs (checkpoints/) and the example images are read-only parts of the image.
#
# Same Python minor version as the project (3.11).
FROM python:3.11-slim

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
    CCE_RUNS_DIR=/home/user/app/runs \
    CCE_DATA_DIR=/home/user/app/data

# Non-root user with uid 1000 (the Hugging Face Spaces convention) and its writable state directories.
RUN useradd -m -u 1000 user \
    && mkdir -p /home/user/app/runs /home/user/app/data \
    && chown -R user:user /home/user/app

WORKDIR /home/user/app

# Dependencies first, so editing the code does not invalidate this layer.
# CPU-only torch/torchvision from the PyTorch CPU index (the default PyPI wheels pull in gigabytes of CUDA
# libraries). Keep these pins equal to requirements.txt (tests/test_deploy.py checks): the installed
# 2.14.1+cpu satisfies requirements.txt's torch==2.14.1 (PEP 440 ignores the local label), so the second
# pip call keeps it and installs only the rest.
COPY requirements.txt ./
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
        torch==2.14.1 torchvision==0.29.1 \
    && pip install --no-cache-dir -r requirements.txt

# What app.py needs at runtime: the entry point, the package, the shipped runs and the example images.
COPY --chown=user app.py ./
COPY --chown=user cce_demo/ ./cce_demo/
COPY --chown=user checkpoints/ ./checkpoints/
COPY --chown=user examples/ ./examples/

EXPOSE 7860

# No curl/wget in the slim image: probe the UI with Python's standard library.
HEALTHCHECK --interval=30s --timeout=10s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/' % os.environ.get('GRADIO_SERVER_PORT', '7860'), timeout=8)"]

USER user

CMD ["python", "app.py"]
