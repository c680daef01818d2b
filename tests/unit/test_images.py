"""The photo cleaner on its own: formats by magic bytes, bombs refused from the header, metadata gone."""

from __future__ import annotations

import io
import resource
import struct
import zlib

import pytest
from PIL import Image

from backend.visits.images import ImageRejected, clean, sniff

LIMIT = 40_000_000


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))


def _encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def _with_metadata(fmt: str) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise to display
    exif[0x8825] = {1: "N", 2: (31.0, 42.0, 18.0), 3: "E", 4: (119.0, 54.0, 6.0)}
    exif[0x010F] = "PhoneMaker"
    image = Image.new("RGB", (300, 200), (10, 120, 200))
    return _encoded(
        image, fmt, exif=exif.tobytes(), icc_profile=b"\0" * 128 + b"icc", xmp=b"<x:xmpmeta>home</x:xmpmeta>"
    )


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_every_accepted_format_comes_out_as_an_upright_jpeg_without_metadata(fmt: str) -> None:
    photo = clean(_with_metadata(fmt), max_pixels=LIMIT)
    out = Image.open(io.BytesIO(photo.jpeg))
    assert out.format == "JPEG" and out.size == (200, 300) == (photo.width, photo.height)
    assert dict(out.getexif()) == {}
    assert not {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment"} & set(out.info)
    assert b"PhoneMaker" not in photo.jpeg and b"home" not in photo.jpeg
    thumb = Image.open(io.BytesIO(photo.thumbnail))
    assert thumb.size == (photo.thumb_width, photo.thumb_height) and max(thumb.size) <= 320
    assert dict(thumb.getexif()) == {}


def test_a_large_photo_keeps_its_size_and_gets_a_320px_thumbnail() -> None:
    photo = clean(_encoded(Image.new("RGB", (1600, 1200), (1, 2, 3)), "JPEG"), max_pixels=LIMIT)
    assert (photo.width, photo.height) == (1600, 1200)
    assert (photo.thumb_width, photo.thumb_height) == (320, 240)


def test_transparent_pixels_become_white_not_black() -> None:
    image = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    photo = clean(_encoded(image, "PNG"), max_pixels=LIMIT)
    assert min(Image.open(io.BytesIO(photo.jpeg)).getpixel((25, 25))) > 240


def test_a_decompression_bomb_is_refused_from_its_header_without_decoding() -> None:
    bomb = _png_header_only(60_000, 60_000)  # 3.6 gigapixels claimed, ~100 bytes sent
    assert len(bomb) < 200
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageRejected) as refused:
        clean(bomb, max_pixels=LIMIT)
    assert refused.value.code == "photo.too_many_pixels"
    # Decoding would need ~10 GiB for the pixels; refused from the header, the process never grew.
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 64 * 1024


def test_our_limit_is_stricter_than_pillows_own() -> None:
    # 7000 × 7000 = 49 MP: under Pillow's bomb error (2 × 89 MP), over our 40 MP.
    with pytest.raises(ImageRejected) as refused:
        clean(_png_header_only(7000, 7000), max_pixels=LIMIT)
    assert refused.value.code == "photo.too_many_pixels"


@pytest.mark.parametrize(
    "data",
    [
        b"just some text pretending to be a .jpg",
        b"",
        b"GIF89a" + b"\0" * 64,
        b"%PDF-1.7\n",
        b"\xff\xd8\xff\xe0" + b"\0" * 64,  # JPEG magic, garbage after
        b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 16,
    ],
    ids=["text", "empty", "gif", "pdf", "broken-jpeg", "broken-webp"],
)
def test_anything_else_is_not_an_image(data: bytes) -> None:
    with pytest.raises(ImageRejected) as refused:
        clean(data, max_pixels=LIMIT)
    assert refused.value.code == "photo.not_an_image"


def test_a_truncated_photo_is_refused() -> None:
    whole = _encoded(Image.new("RGB", (400, 400), (9, 9, 9)), "JPEG")
    with pytest.raises(ImageRejected):
        clean(whole[: len(whole) // 2], max_pixels=LIMIT)


def test_sniff_trusts_bytes_not_names() -> None:
    assert sniff(b"\xff\xd8\xff\xdb") == "JPEG"
    assert sniff(b"\x89PNG\r\n\x1a\n....") == "PNG"
    assert sniff(b"RIFF\x10\0\0\0WEBPVP8 ") == "WEBP"
    assert sniff(b"RIFF\x10\0\0\0AVI LIST") is None
