# lstm-viz: the Streamlit app on a CPU-only PyTorch.
#   docker build -t lstm-viz .
#   docker run --rm -p 8501:8501 lstm-viz                               # http://localhost:8501
#   docker run --rm -p 9000:9000 -e STREAMLIT_SERVER_PORT=9000 lstm-viz  # another port
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_PORT=8501 \
    NUMBA_CACHE_DIR=/tmp/numba-cache

# The app runs as this unprivileged user; the files it serves stay owned by root, read-only to it,
# so numba keeps its compiled kernels (lstm_viz/kernels.py) under /tmp (NUMBA_CACHE_DIR above).
RUN useradd --create-home --uid 10001 app
WORKDIR /app

# requirements.txt names PyTorch's CPU wheel index and pins torch's +cpu build on Linux: a ~190 MB
# wheel instead of several GB of CUDA libraries (no nvidia-* or triton packages).
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
    && pip check

COPY . .
USER 10001

EXPOSE 8501
# The port is Streamlit's own setting, read from STREAMLIT_SERVER_PORT by the server and by this check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('STREAMLIT_SERVER_PORT', '8501'); urllib.request.urlopen(f'http://localhost:{port}/_stcore/health', timeout=4)"]

# Extra arguments after the image name go to `streamlit run`, e.g. --logger.level=debug.
ENTRYPOINT ["streamlit", "run", "app.py"]
