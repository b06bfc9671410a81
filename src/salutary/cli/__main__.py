"""``python -m salutary.cli``: the ``salutary`` command."""

from salutary.cli import main

main()
