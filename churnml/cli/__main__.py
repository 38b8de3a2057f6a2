"""``python -m churnml.cli``: the console script's ``main``."""

from churnml.cli import main

main()
