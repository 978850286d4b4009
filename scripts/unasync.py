"""Generate the synchronous twins of the orchestrators from their async source (httpcore's way).

python scripts/unasync.py          # rewrite the generated parts
python scripts/unasync.py --check  # exit 1 if a committed generated part is stale (CI runs this)

The async twin is the hand-written source: in its file, the part after a line starting with
`# unasync: source` (up to a generated part, or the end). Its sync twin is made by the fixed
token substitutions of `SUBSTITUTIONS` alone, never by knowing which calls are async: removing
`async` and `await` is always safe, adding them is not. The result replaces the generated part
of the target file: everything from the line starting with `# unasync: generated` to the end.
What differs between the twins beyond these substitutions (a thread or a task, a sleep or an
event's wait) lives in small hand-written pairs the substitutions map onto each other
(`AsyncRepeater` / `Repeater` in core/sweeper.py).
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src/huihua"

TWINS = (  # (the file holding the async source, the file whose generated part is its sync twin)
    ("core/async_manager.py", "core/manager.py"),
    ("core/sweeper.py", "core/sweeper.py"),
    ("wechat/tokens.py", "wechat/tokens.py"),
)

SUBSTITUTIONS = (  # whole words, applied in this order
    ("AsyncSessionManager", "SessionManager"),
    ("AsyncStore", "Store"),
    ("AsyncSweeper", "Sweeper"),
    ("AsyncRepeater", "Repeater"),
    ("AsyncTokenManager", "TokenManager"),
    ("AsyncWeChatClient", "WeChatClient"),
    ("AsyncIterator", "Iterator"),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
    ("aclose", "close"),
    ("async def", "def"),
    ("async with", "with"),
    ("async for", "for"),
    ("await ", ""),
)
COMPILED = [
    (re.compile(rf"\b{re.escape(old)}" + (r"\b" if old[-1].isalnum() or old[-1] == "_" else "")), new)
    for old, new in SUBSTITUTIONS
]
LEFT_OVER = re.compile(r"\b(async|await|asyncio|Async\w*)\b")

SOURCE_MARK = "# unasync: source"
GENERATED_MARK = "# unasync: generated"
BANNER = """\
# unasync: generated from {source} by scripts/unasync.py: do not edit below this line;
# edit the async twin there, then run `python scripts/unasync.py`.
"""


def _split(text: str, mark: str) -> tuple[str, str | None]:
    """The text before the line starting with `mark`, and from it on (None: no such line)."""
    match = re.search(rf"^{re.escape(mark)}", text, flags=re.M)
    if match is None:
        return text, None
    return text[: match.start()], text[match.start() :]


def unasync(source: str) -> str:
    """The sync twin of async code: the substitutions, and nothing else."""
    lines = []
    for number, original in enumerate(source.splitlines(), 1):
        line = original
        for pattern, new in COMPILED:
            line = pattern.sub(new, line)
        left = LEFT_OVER.search(line)
        if left is not None:
            raise SystemExit(f"line {number} of the source keeps {left.group()!r}: add a substitution")
        lines.append(line)
    return "\n".join(lines)


def source_part(path: pathlib.Path) -> str:
    _, marked = _split(path.read_text(), SOURCE_MARK)
    if marked is None:
        raise SystemExit(f"{path.relative_to(ROOT)} has no line starting with {SOURCE_MARK!r}")
    body, _ = _split(marked.split("\n", 1)[1], GENERATED_MARK)
    return body.strip("\n")


def generate(source: str, target: str, current: str) -> str:
    """The target file with its generated part made anew (`current`: the target's text now)."""
    head, _ = _split(current, GENERATED_MARK)
    body = unasync(source_part(PACKAGE / source))
    text = f"{head.rstrip()}\n\n\n{BANNER.format(source=source)}\n\n{body}\n"
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(PACKAGE / target), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return formatted.stdout


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    for source, target in TWINS:
        path = PACKAGE / target
        current = path.read_text()
        generated = generate(source, target, current)
        if generated == current:
            continue
        if check:
            stale.append(target)
        else:
            path.write_text(generated)
            print(f"wrote {target}")
    if stale:
        print(f"stale generated twins: {', '.join(stale)}: run python scripts/unasync.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
