"""The user's own documents: images and PDF pages as RGB arrays; an unreadable file is refused naming it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from mlexp.errors import DataError

IMAGE_TYPES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
TYPES = IMAGE_TYPES | {".pdf"}


class BadDocument(DataError):
    """A file that cannot be read as a document page; the message names the file and what to do."""


def find(path: Path) -> list[Path]:
    """The files under `path` (a file or a folder, searched recursively), sorted; ground-truth JSON is skipped."""
    if not path.exists():
        raise DataError(f"{path} does not exist; set dataset.path to a file or folder of images/PDFs")
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() != ".json")


def _checked(path: Path, page: np.ndarray, empty_std: float, label: str) -> np.ndarray:
    if float(page.std()) < empty_std:
        raise BadDocument(f"{path}{label}: empty page (no ink); remove it or check the scan")
    return page


def pages(path: Path, max_pixels: int, pdf_dpi: int, empty_std: float) -> Iterator[np.ndarray]:
    """Each page of `path` as an RGB array; a BadDocument naming the file for anything unreadable."""
    suffix = path.suffix.lower()
    if suffix not in TYPES:
        raise BadDocument(f"{path}: unsupported file type {suffix or '(none)'}; use PNG, JPEG, TIFF, BMP or PDF")
    if suffix == ".pdf":
        yield from _pdf_pages(path, max_pixels, pdf_dpi, empty_std)
        return
    # PIL's own decompression-bomb limit follows ours while this file is read, then goes back
    default_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                frames = getattr(image, "n_frames", 1)
                for index in range(frames):
                    image.seek(index)
                    label = f" page {index + 1}" if frames > 1 else ""
                    # each TIFF frame has its own size: every one is checked before it is decoded
                    if image.width * image.height > max_pixels:
                        raise BadDocument(
                            f"{path}{label}: image of {image.width}×{image.height} pixels is over "
                            f"preprocessing.max_pixels={max_pixels}; downscale it or raise the limit"
                        )
                    yield _checked(path, np.asarray(image.convert("RGB")), empty_std, label)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise BadDocument(f"{path}: image is over preprocessing.max_pixels={max_pixels}; downscale it") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise BadDocument(f"{path}: unreadable or truncated image ({error}); export it again") from error
    finally:
        Image.MAX_IMAGE_PIXELS = default_limit


def _pdf_pages(path: Path, max_pixels: int, dpi: int, empty_std: float) -> Iterator[np.ndarray]:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as error:
        if "password" in str(error).lower():
            raise BadDocument(f"{path}: password-protected PDF; save an unprotected copy") from error
        raise BadDocument(f"{path}: unreadable PDF ({error}); export it again") from error
    try:
        if len(document) == 0:
            raise BadDocument(f"{path}: PDF has no pages; export it again")
        for index in range(len(document)):
            try:
                page = document[index]
            except pdfium.PdfiumError as error:
                # a page tree that counts pages it does not hold: no page to read
                raise BadDocument(
                    f"{path} page {index + 1}: PDF has no such page ({error}); export it again"
                ) from error
            width, height = page.get_size()
            scale = dpi / 72
            if width * scale * height * scale > max_pixels:
                raise BadDocument(f"{path} page {index + 1}: over preprocessing.max_pixels={max_pixels} at {dpi} dpi")
            array = np.asarray(page.render(scale=scale).to_pil().convert("RGB"))
            yield _checked(path, array, empty_std, f" page {index + 1}")
    finally:
        document.close()
