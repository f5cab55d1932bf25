"""Fixtures shared by the parts' tests."""
import io
import struct

import pytest
from PIL import Image, ImageOps


@pytest.fixture
def malformed_exif_jpeg():
    """Factory: JPEG bytes of an image stored sideways (EXIF orientation 6) whose EXIF also holds a malformed tag
    (text in RowsPerStrip, one byte away from a camera's Make tag): ImageOps.exif_transpose raises struct.error on it."""
    def make(img: Image.Image) -> bytes:
        exif = Image.Exif()
        exif[0x0112] = 6
        exif[0x010F] = "cam"  # Make, type 2 (ASCII)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=95, exif=exif.tobytes())
        data = buf.getvalue()
        big_endian = b"MM\x00*" in data[:64]
        make_tag = b"\x01\x0f\x00\x02" if big_endian else b"\x0f\x01\x02\x00"  # tag id, then type
        rows_tag = b"\x01\x16\x00\x02" if big_endian else b"\x16\x01\x02\x00"
        assert data.count(make_tag) == 1
        data = data.replace(make_tag, rows_tag)
        with pytest.raises(struct.error):  # the fixture really is the failure it stands for
            ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        return data

    return make
