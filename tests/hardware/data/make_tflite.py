"""Writes tiny8.tflite and tiny16.tflite (slimforge.testing.devices.tiny_net at 1x3x16x16), the LiteRT
device's test models where litert-torch (the converter) is not installed.

Run from the repository root: python tests/hardware/data/make_tflite.py
"""

from pathlib import Path

from slimforge.hardware.export import convert_model
from slimforge.testing.devices import tiny_net

here = Path(__file__).parent
for width, seed in ((8, 0), (16, 1)):
    out = here / f"tiny{width}"
    out.mkdir(exist_ok=True)
    path = convert_model(tiny_net(width, seed=seed), "tflite", out, input_shape=(1, 3, 16, 16)).files[0]
    path.rename(here / f"tiny{width}.tflite")
    out.rmdir()
