"""Run an ASGI peer exactly as `huihua serve` runs huihua (src/huihua/cli/serve.py):
`uvicorn.run(app, host=, port=, workers=, log_level=, access_log=False)` with uvicorn's defaults
for everything else (loop="auto" -> uvloop, http="auto" -> httptools, as installed by
uvicorn[standard]).

    python serve_asgi.py MODULE:APP --port P [--workers N] [--log-level warning]
"""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    os.environ["PYTHONPATH"] = here + os.pathsep + os.environ.get("PYTHONPATH", "")
    app = args.app
    if args.workers == 1:  # huihua passes the app object with one worker, an import string otherwise
        module, _, attr = args.app.partition(":")
        app = getattr(__import__(module), attr)
    uvicorn.run(app, host=args.host, port=args.port, workers=args.workers, log_level=args.log_level,
                access_log=False)  # fmt: skip


if __name__ == "__main__":
    main()
