"""``python -m sci_ext`` runs the ``jupyter sci`` command line."""

from .cli import run

run()
