"""The assist package's one error: a model named in configuration cannot be loaded."""

from __future__ import annotations

from carebound._errors import CareboundError


class ModelConfigError(CareboundError):
    """A model named by ``provider:model`` (``CAREBOUND_MODEL``, ``--model``, the connectors
    file's ``models:`` table) cannot be loaded: langchain or the provider's package is not
    installed, the name has no provider, or the provider is unknown. The hint says what to
    install or how to spell the name."""
