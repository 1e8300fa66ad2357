# Multi-stage: build a wheel, install it into a clean image, run as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOST=0.0.0.0 PORT=3000 DATA_DIR=/app/data
RUN useradd --create-home --uid 10001 promptmetrics \
    && mkdir -p /app/data && chown promptmetrics /app/data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER promptmetrics
WORKDIR /app
VOLUME ["/app/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/health', timeout=2)"
CMD ["promptmetrics-server"]
