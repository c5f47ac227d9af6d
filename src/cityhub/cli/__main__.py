"""`python -m cityhub.cli` runs the same command line as the `cityhub` script."""

from cityhub.cli.main import app

app()
