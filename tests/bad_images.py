"""Bad and unusual uploads, written to a folder; shared by the handler, API and browser tests."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def write_bad_images(folder: Path) -> dict[str, Path]:
    """name -> path. 'refused' files must give a clear error; 'odd' ones must be classified with a note."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG")
    files["truncated.jpg"] = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    files["text.png"] = b"this is not an image, just text with a .png name\n"
    files["empty.png"] = b""
    for name, data in files.items():
        (folder / name).write_bytes(data)
    paths = {name: folder / name for name in files}
    # 64 megapixels of one colour: a few hundred kB on disk, 192 MB decoded — a decompression bomb.
    Image.new("L", (8000, 8000)).save(folder / "huge.png", optimize=False)
    paths["huge.png"] = folder / "huge.png"
    Image.new("RGB", (1, 1), (200, 30, 30)).save(folder / "one-pixel.png")
    paths["one-pixel.png"] = folder / "one-pixel.png"
    gradient = (np.linspace(0, 65535, 40 * 40).reshape(40, 40)).astype(np.uint16)
    Image.fromarray(gradient).save(folder / "grey16.png")
    paths["grey16.png"] = folder / "grey16.png"
    # 24.9 megapixels of PNG in about 25 kB: refused from its header, never decoded (issue 18's flood image).
    Image.new("L", (5000, 4980)).save(folder / "flood.png")
    paths["flood.png"] = folder / "flood.png"
    Image.new("RGB", (40, 40), (10, 200, 10)).save(folder / "image.tif")  # TIFF: not a format the app names
    paths["image.tif"] = folder / "image.tif"
    rgba = np.zeros((40, 40, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = np.linspace(0, 255, 40, dtype=np.uint8)[None, :]
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    paths["rgba.png"] = folder / "rgba.png"
    return paths


REFUSED = {"truncated.jpg": "truncated", "text.png": "not an image", "empty.png": "empty", "huge.png": "megapixels",
           "flood.png": "decoded up to 4 megapixels", "image.tif": "not an image in a format the app reads"}
ODD = {"one-pixel.png": "enlarged", "grey16.png": "rescaled", "rgba.png": "transparency"}
