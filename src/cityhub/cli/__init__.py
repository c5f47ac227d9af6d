"""The `cityhub` command line (typer + rich)."""
