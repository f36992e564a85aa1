"""egotask-ocr: an OCR scene-text baseline model for egotask, as a third-party plugin."""

__version__ = "0.1.0"
