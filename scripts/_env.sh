# Sourced by the other scripts: make sure uv exists and .venv matches uv.lock exactly.
export UV_PYTHON_DOWNLOADS=never
if ! command -v uv >/dev/null 2>&1; then
    echo "==> installing uv (the Python package manager huihua uses)" >&2
    python3 -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1" >&2 || {
        echo "error: could not install uv with pip; install it (https://docs.astral.sh/uv/) and retry" >&2
        exit 1
    }
fi
uv sync --frozen --all-extras --group dev --group bench --python python3 --quiet
