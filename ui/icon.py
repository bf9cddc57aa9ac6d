"""The app's page icon, drawn here so the browser never fetches one: a `:material/…:` page icon
makes Streamlit's frontend load its SVG from fonts.gstatic.com (seen in tests/test_browser.py)."""
from __future__ import annotations

from functools import cache

from PIL import Image, ImageDraw

PRIMARY = (31, 111, 92)      # .streamlit/config.toml primaryColor


@cache
def page_icon() -> Image.Image:
    """A waymark: a filled disc with a white compass needle, 64×64."""
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.ellipse((2, 2, 62, 62), fill=PRIMARY)
    draw.polygon([(32, 8), (41, 32), (32, 56), (23, 32)], fill=(255, 255, 255))
    draw.polygon([(32, 32), (41, 32), (32, 56), (23, 32)], fill=(205, 225, 218))
    return img
