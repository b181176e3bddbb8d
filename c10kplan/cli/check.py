"""Placeholder: commands are registered here by the owner of this module."""

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
