"""Profile one peer under the benchmark's load with py-spy, and print where the time goes.

    uv run python bench/http/pyspy_profile.py --peer huihua-sqlite --scenario me \
        --py-spy /tmp/pyspy-venv/bin/py-spy [--seconds 8] [--connections 32] [--top 40]

py-spy is not a project dependency: install it into a throwaway venv
(`uv venv /tmp/pyspy-venv && VIRTUAL_ENV=/tmp/pyspy-venv uv pip install py-spy`). It samples
the server process (sudo or CAP_SYS_PTRACE may be needed) while `wrk` drives it exactly as
run.py does; the collapsed stacks are kept beside a summary of self and inclusive time per
source line, filtered to huihua's own files with --only (default: src/huihua).
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run


def summarize(collapsed: Path, top: int, only: str) -> str:
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if "(" in f]
        if frames:
            self_t[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    out = [f"{total} samples", "", "self time (top frames):"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in self_t.most_common(top)]
    out += ["", f"inclusive time, frames in {only}:"]
    mine = [(f, n) for f, n in incl.most_common() if only in f]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in mine[:top]]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", default="huihua-sqlite")
    ap.add_argument("--scenario", default="me", choices=list(run.SCENARIOS))
    ap.add_argument("--py-spy", required=True, dest="py_spy")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--only", default="src/huihua")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "huihua-profile.txt")
    args = ap.parse_args()
    import redis

    redis.Redis.from_url(run.REDIS_URL).flushdb()
    peer = next(p for p in run.make_peers() if p.name == args.peer)
    workdir = Path(tempfile.mkdtemp(prefix="huihua-bench-profile-"))
    peer.workdir = workdir
    peer.start()
    try:
        peer.wait_ready()
        peer.headers = peer.seed(peer, args.connections)
        headers = workdir / "headers"
        headers.write_text("\n".join(peer.headers) + "\n")
        files = {peer.name: headers} if peer.headers else {}
        run.wrk(peer, args.scenario, connections=2, duration=1, timeout=30, headers_file=files.get(peer.name))
        result: dict[str, object] = {}

        def load() -> None:
            result.update(run.wrk(peer, args.scenario, connections=args.connections,
                                  duration=args.seconds + 2, timeout=30,
                                  headers_file=files.get(peer.name)))  # fmt: skip

        t = threading.Thread(target=load)
        t.start()
        assert peer.proc is not None
        subprocess.run([args.py_spy, "record", "--pid", str(peer.proc.pid), "--subprocesses",
                        "--duration", str(int(args.seconds)), "--rate", "250", "--format", "raw", "--gil",
                        "--full-filenames", "--nonblocking", "--output", str(args.out)],
                       check=True, capture_output=True)  # fmt: skip
        t.join()
        print(f"load: {result}")
        print(f"collapsed stacks: {args.out}")
        print(summarize(args.out, args.top, args.only))
    finally:
        peer.stop()
        redis.Redis.from_url(run.REDIS_URL).flushdb()
    return 0


if __name__ == "__main__":
    sys.exit(main())
