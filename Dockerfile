# The image compose.yaml builds for `migrate` and `worker`.
FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir -e .
# Compile the compare kernel into numba's on-disk cache now, not in each new container.
RUN python -c "from neardup.kernel import warm; warm()"
CMD ["dramatiq", "actors", "--processes", "1", "--threads", "2"]
