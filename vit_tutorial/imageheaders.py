"""Notebook 07: an image file's header, read before anything is decoded: its format, size and orientation.

Why read it ourselves: OpenCV allocates whatever a header declares before it decodes a pixel
(a 2.6 MB PNG can declare 30000x30000 pixels: 2.7 GB), decodes some truncated files without a word,
and ignores the EXIF orientation that phones store instead of turning the pixels. These few bytes
say all three, for the formats of ``IMAGE_SUFFIXES``; :func:`vit_tutorial.images.read_image` decides.
"""
from __future__ import annotations

import struct
import zlib

#: The file types a folder dataset picks up (what OpenCV decodes on every platform).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm")


class NotAnImage(ValueError):
    """Why a file's bytes are not a usable image (the reader adds the file's name)."""


def image_header(data: bytes) -> tuple[str, int, int, int]:
    """``(format, width, height, EXIF orientation)`` from a file's first bytes, without decoding it.

    PNG, JPEG, BMP, TIFF, WebP and PNM (the formats of ``IMAGE_SUFFIXES``); anything else is
    refused. PNG and JPEG are also checked to be complete (a PNG's chunks up to IEND with their
    CRCs, a JPEG's end-of-image marker after its scan): OpenCV decodes some truncated files without
    a word. The orientation is 1 (as stored) where the file has none, and for TIFF, which OpenCV
    turns itself.
    """
    for signature, parse in _PARSERS:
        if data.startswith(signature):
            try:
                kind, width, height, orientation = parse(data)
            except NotAnImage:
                raise
            except (struct.error, IndexError, ValueError):
                raise NotAnImage("truncated or damaged: its header ends early or does not add up") from None
            if width <= 0 or height <= 0:
                raise NotAnImage(f"its {kind} header declares {width}x{height} pixels: no image")
            return kind, width, height, orientation
    raise NotAnImage(f"not an image OpenCV can read (the formats it reads: {', '.join(IMAGE_SUFFIXES)})")


def _png(data: bytes):
    width, height = struct.unpack(">II", data[16:24])
    if data[12:16] != b"IHDR":
        raise NotAnImage("a damaged PNG: its first chunk is not IHDR")
    pos, orientation = 8, 1
    while True:
        if pos + 12 > len(data):
            raise NotAnImage("a truncated PNG: it ends before its last chunk (IEND)")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise NotAnImage(f"a truncated PNG: its {kind.decode('latin-1')} chunk ends past the end of the file")
        if zlib.crc32(data[pos + 4:end - 4]) != struct.unpack(">I", data[end - 4:end])[0]:
            raise NotAnImage(f"a damaged PNG: its {kind.decode('latin-1')} chunk fails its CRC check")
        if kind == b"eXIf":
            orientation = _exif_orientation(data[pos + 8:end - 4])
        if kind == b"IEND":
            return "PNG", width, height, orientation
        pos = end


#: Channels of a PNG by colour type: grey, RGB, palette, grey + alpha, RGBA.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def check_pixels(kind: str, data: bytes) -> None:
    """For a PNG whose header passed (size within the limit), inflate its compressed pixels a little at a
    time, keeping nothing, and check each row's filter byte.

    Why: libpng prints its own complaint on stderr before OpenCV gives up on a damaged stream, so
    a damaged PNG would not be one line. This also refuses a stream that stops short of the last row.
    Other formats are left to the decoder (JPEG has no checksums to check).
    """
    if kind != "PNG":
        return
    width, height = struct.unpack(">II", data[16:24])
    pixels, pos = [], 8
    while pos + 12 <= len(data):  # image_header walked these chunks already: they are whole
        length, chunk = struct.unpack(">I4s", data[pos:pos + 8])
        if chunk == b"IDAT":
            pixels.append(memoryview(data)[pos + 8:pos + 8 + length])
        pos += 12 + length
    bit_depth, colour, interlaced = data[24], data[25], data[28]
    if colour not in _PNG_CHANNELS or bit_depth not in (1, 2, 4, 8, 16):
        raise NotAnImage(f"a damaged PNG: colour type {colour} at {bit_depth} bits is not a PNG format")
    stride = 1 + (width * _PNG_CHANNELS[colour] * bit_depth + 7) // 8  # a filter byte, then the row
    inflate, total = zlib.decompressobj(), 0
    try:
        for part in pixels:
            while part:
                out = inflate.decompress(part, 1 << 22)
                if not interlaced:
                    first = (-total) % stride  # where the next row starts in this piece
                    if any(b > 4 for b in out[first::stride]):
                        raise NotAnImage("a damaged PNG: a row of its pixels has an unknown filter")
                total += len(out)
                part = inflate.unconsumed_tail
                if total > stride * height:
                    break
    except zlib.error as e:
        raise NotAnImage(f"a damaged PNG: its compressed pixels are not valid ({e})") from None
    if not interlaced and total < stride * height:
        raise NotAnImage(f"a damaged PNG: its pixels stop after {total // stride} of its {height} rows")


#: JPEG markers that start a frame (SOF0-15 except DHT C4, JPG C8, DAC CC): they hold the image's size.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes):
    pos, size, orientation = 2, None, 1
    while True:
        if pos + 2 > len(data):
            raise NotAnImage("a truncated JPEG: it ends inside its header")
        if data[pos] != 0xFF:
            raise NotAnImage("a damaged JPEG: its header segments do not follow one another")
        if data[pos + 1] == 0xFF:  # a fill byte before the marker
            pos += 1
            continue
        marker = data[pos + 1]
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if pos + 4 > len(data):
            raise NotAnImage("a truncated JPEG: it ends inside its header")
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        segment = data[pos + 4:pos + 2 + length]
        if marker in _SOF:
            height, width = struct.unpack(">HH", segment[1:5])
            size = (width, height)
        elif marker == 0xE1 and segment.startswith(b"Exif\0\0") and orientation == 1:
            orientation = _exif_orientation(segment[6:])
        elif marker == 0xDA:  # start of scan: the compressed pixels follow, up to the end-of-image marker
            if size is None:
                raise NotAnImage("a damaged JPEG: it has no frame header (SOF) before its pixels")
            if data.find(b"\xff\xd9", pos + 2 + length) < 0:
                raise NotAnImage("a truncated JPEG: it has no end-of-image marker")
            return "JPEG", size[0], size[1], orientation
        elif marker == 0xD9:
            raise NotAnImage("a damaged JPEG: it ends before its pixels")
        pos += 2 + length


def _bmp(data: bytes):
    declared, = struct.unpack("<I", data[2:6])
    if 0 < len(data) < declared:
        raise NotAnImage(f"a truncated BMP: {len(data):,} of its {declared:,} bytes")
    if struct.unpack("<I", data[14:18])[0] == 12:  # the old OS/2 header
        width, height = struct.unpack("<HH", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    return "BMP", width, abs(height), 1


def _tiff(data: bytes):
    tags = _tiff_tags(data, {256, 257})
    if 256 not in tags or 257 not in tags:
        raise NotAnImage("a damaged TIFF: it declares no width and height")
    return "TIFF", tags[256], tags[257], 1  # OpenCV applies a TIFF's own orientation tag


def _tiff_tags(block: bytes, wanted: set[int]) -> dict[int, int]:
    """The integer values of ``wanted`` tags in the first directory of a TIFF structure (also EXIF's)."""
    order = {b"II": "<", b"MM": ">"}.get(block[:2])
    if order is None or struct.unpack(order + "H", block[2:4])[0] != 42:
        raise ValueError("not a TIFF structure")
    offset, = struct.unpack(order + "I", block[4:8])
    count, = struct.unpack(order + "H", block[offset:offset + 2])
    found = {}
    for i in range(count):
        tag, kind, n, value = struct.unpack(order + "HHI4s", block[offset + 2 + 12 * i:offset + 14 + 12 * i])
        if tag in wanted and n == 1 and kind in (3, 4):  # one SHORT or LONG
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[:2 if kind == 3 else 4])[0]
    return found


def _exif_orientation(block: bytes) -> int:
    """The orientation tag (1-8) of an EXIF block; 1 when it has none or cannot be read (as viewers do)."""
    try:
        value = _tiff_tags(block, {0x0112}).get(0x0112, 1)
    except (struct.error, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def _webp(data: bytes):
    riff_size, = struct.unpack("<I", data[4:8])
    if data[8:12] != b"WEBP":
        raise NotAnImage("not an image OpenCV can read (a RIFF file that is not WebP)")
    if len(data) < riff_size + 8:
        raise NotAnImage(f"a truncated WebP: {len(data):,} of its {riff_size + 8:,} bytes")
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = (v & 0x3FFF for v in struct.unpack("<HH", data[26:30]))
    elif chunk == b"VP8L":
        bits, = struct.unpack("<I", data[21:25])
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
    else:
        raise NotAnImage(f"a damaged WebP: unknown first chunk {chunk!r}")
    orientation, pos = 1, 12
    while pos + 8 <= len(data):  # an EXIF chunk anywhere in the file
        kind, length = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if kind == b"EXIF":
            block = data[pos + 8:pos + 8 + length]
            orientation = _exif_orientation(block[6:] if block.startswith(b"Exif\0\0") else block)
        pos += 8 + length + (length & 1)
    return "WebP", width, height, orientation


def _pnm(data: bytes):
    fields, pos = [], 2
    while len(fields) < 2:
        while pos < len(data) and (data[pos:pos + 1].isspace() or data[pos:pos + 1] == b"#"):
            if data[pos:pos + 1] == b"#":
                pos = data.index(b"\n", pos)
            pos += 1
        start = pos
        while pos < len(data) and data[pos:pos + 1].isdigit():
            pos += 1
        fields.append(int(data[start:pos]))  # ValueError if no digits: a damaged header
    return "PNM", fields[0], fields[1], 1


_PARSERS = ((b"\x89PNG\r\n\x1a\n", _png), (b"\xff\xd8", _jpeg), (b"BM", _bmp), (b"II*\0", _tiff),
            (b"MM\0*", _tiff), (b"RIFF", _webp)) + tuple((b"P" + bytes([c]), _pnm) for c in b"123456")


__all__ = ["IMAGE_SUFFIXES", "NotAnImage", "image_header", "check_pixels"]
