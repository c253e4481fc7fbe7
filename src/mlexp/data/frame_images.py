"""The image bytes a manifest's `source-ref` names: a local file, a local copy of S3, or S3 itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

OFFLINE = "; a local copy of the bucket is read with dataset.image_root=<its folder>"


class ImageMissing(Exception):
    """The image a source-ref names cannot be read (the message says where it was looked for)."""


def split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


class ImageSource:
    """Reads `source-ref`s.

    `s3://<bucket>/<key>` is `<image_root>/<key>` when image_root is set (a synced copy of the
    labeling job's bucket), else it is fetched from S3. Other refs are local paths; relative
    ones start at the manifest's folder.
    """

    def __init__(self, image_root: Path | None, manifest_dir: Path, s3_client: Any = None) -> None:
        self.image_root = image_root
        self.manifest_dir = manifest_dir
        self._s3 = s3_client

    def _client(self) -> Any:
        if self._s3 is None:
            import boto3  # imported here: only runs that read S3 need it

            self._s3 = boto3.client("s3")
        return self._s3

    def where(self, source_ref: str) -> str:
        if source_ref.startswith("s3://"):
            bucket, key = split_s3(source_ref)
            return str(self.image_root / key) if self.image_root is not None else f"s3://{bucket}/{key}"
        path = Path(source_ref)
        return str(path if path.is_absolute() else self.manifest_dir / path)

    def read(self, source_ref: str) -> bytes:
        location = self.where(source_ref)
        if location.startswith("s3://"):
            from botocore.exceptions import BotoCoreError, ClientError

            bucket, key = split_s3(location)
            try:
                body: bytes = self._client().get_object(Bucket=bucket, Key=key)["Body"].read()
            except (ClientError, BotoCoreError) as error:
                # anything but "no such object" (S3 out of reach, these credentials refused, ...): the labeling job's
                # bucket may be on disk already
                code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
                offline = "" if code in ("NoSuchKey", "NoSuchBucket", "404") else OFFLINE
                raise ImageMissing(f"{location}: {error}{offline}") from error
            return body
        try:
            return Path(location).read_bytes()
        except OSError as error:
            raise ImageMissing(f"{location}: {error.strerror or error}") from error
