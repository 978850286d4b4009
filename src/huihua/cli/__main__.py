"""`python -m huihua.cli`."""

from . import main

main()
