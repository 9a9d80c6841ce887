"""URLs in the connectors file: http(s), and never with a user or password in them."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, HttpUrl


def _no_userinfo(url: HttpUrl) -> HttpUrl:
    """Refuse a user or password in a URL: it would be shown wherever the URL is (messages,
    run records) and sent as a second, unconfigured credential."""
    if url.username is not None or url.password is not None:
        raise ValueError(
            "a user or password in the URL is not accepted (it would be shown wherever the "
            "URL is): give credentials in the section's auth (bearer token_env, or smart), "
            "or in secret_env"
        )
    return url


Url = Annotated[HttpUrl, AfterValidator(_no_userinfo)]
"""An http(s) URL with no user or password in it."""
