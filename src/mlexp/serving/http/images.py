"""Limits for endpoints that take images."""

from __future__ import annotations

from mlexp.serving.http.json_api import ServiceError
from mlexp.serving.http.settings import ServiceSettings


def check_image_pixels(width: int, height: int, settings: ServiceSettings) -> None:
    """413 when an image has more pixels than deploy.max_pixels (a decompression bomb).

    Call it with the size read from the image's header, before decoding (PIL's `Image.open` reads only the header).
    """
    if width * height > settings.max_pixels:
        raise ServiceError(
            413,
            f"the image is {width}x{height} = {width * height} pixels, over the limit of {settings.max_pixels} "
            "(deploy.max_pixels)",
        )
