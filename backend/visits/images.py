"""Turning an uploaded photo into what we keep: a clean JPEG and a thumbnail, nothing else.

The checks run cheapest first and before any pixel is decoded: magic bytes (JPEG, PNG, WebP
only), then the dimensions from the header against a pixel limit (a 60 000 × 60 000 PNG is a
few kilobytes on the wire and 10 GB in memory). Only then is the image decoded, turned upright
from its EXIF orientation, and re-encoded without any metadata: EXIF (with the phone's GPS
position of a family's home), ICC, XMP and comments are all dropped.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
)


class ImageRejected(Exception):
    """The bytes are not a photo we accept. ``code`` is the problem's stable code."""

    def __init__(self, code: str, message_en: str, message_zh: str) -> None:
        super().__init__(message_en)
        self.code = code
        self.message_en = message_en
        self.message_zh = message_zh


@dataclass(frozen=True)
class CleanPhoto:
    jpeg: bytes
    width: int
    height: int
    thumbnail: bytes
    thumb_width: int
    thumb_height: int


def sniff(data: bytes) -> str | None:
    """The format named by the file's first bytes, or None: the file name and Content-Type are not trusted."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _not_an_image() -> ImageRejected:
    return ImageRejected(
        "photo.not_an_image", "The file is not a JPEG, PNG or WebP photo", "文件不是 JPEG、PNG 或 WebP 格式的照片"
    )


def _too_large(max_pixels: int) -> ImageRejected:
    return ImageRejected(
        "photo.too_many_pixels",
        f"The photo has more than {max_pixels // 1_000_000} million pixels",
        f"照片像素超过 {max_pixels // 1_000_000} 百万",
    )


def clean(data: bytes, *, max_pixels: int, thumbnail_px: int = 320, quality: int = 85) -> CleanPhoto:
    kind = sniff(data)
    if kind is None:
        raise _not_an_image()
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its own limit and twice it; ours is stricter and checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[kind])  # lazy: reads the header only
    except Image.DecompressionBombError as exc:
        raise _too_large(max_pixels) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _not_an_image() from exc
    with image:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise _not_an_image()
        if width * height > max_pixels:
            raise _too_large(max_pixels)
        try:
            upright = _decode_upright(image)
        except Image.DecompressionBombError as exc:
            raise _too_large(max_pixels) from exc
        except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt pixel data
            raise _not_an_image() from exc
    jpeg = _encode(upright, quality)
    thumb = upright.copy()
    thumb.thumbnail((thumbnail_px, thumbnail_px), Image.Resampling.LANCZOS)
    thumbnail = _encode(thumb, max(quality - 10, 50))
    return CleanPhoto(jpeg, upright.width, upright.height, thumbnail, thumb.width, thumb.height)


def _decode_upright(image: Image.Image) -> Image.Image:
    image.load()
    upright = ImageOps.exif_transpose(image) or image
    if upright.mode in ("RGBA", "LA") or (upright.mode == "P" and "transparency" in upright.info):
        # Transparent pixels become white, as on paper, not black.
        rgba = upright.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba.getchannel("A"))
    else:
        rgb = upright.convert("RGB")
    # A fresh image carries no info dict and no cached EXIF: nothing of the original's metadata survives.
    bare = Image.new("RGB", rgb.size)
    bare.paste(rgb)
    return bare


def _encode(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True, exif=b"", icc_profile=None)
    return out.getvalue()
