"""``ocr_baseline``: an lmms-eval model that reads scene text with RapidOCR in the frames egotask's
sampler takes from each task's visible interval, and answers with the most relevant text."""

from __future__ import annotations

from typing import Any

import numpy as np

from egotask.model_adapters.base import FramesModel, VideoPrompt
from egotask_ocr.answer import Reading, choose_answer


class OCRBaseline(FramesModel):
    family = "ocr_baseline"

    def __init__(self, min_confidence: float | str = 0.5, min_side: int | str = 736, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from rapidocr_onnxruntime import RapidOCR  # ONNX models ship in the wheel: no download

        self.min_confidence = float(min_confidence)
        # Text detection upscales frames whose short side is below min_side (RapidOCR's default 736);
        # larger frames are read as they are. Lower it for small frames to trade recall for speed.
        self.engine = RapidOCR(det_limit_side_len=int(min_side))

    def read(self, frame: np.ndarray) -> list[tuple[str, float]]:
        """(text, confidence) of each line in one RGB frame."""
        found, _elapsed = self.engine(np.ascontiguousarray(frame[..., ::-1]))  # RapidOCR takes BGR arrays
        return [(text, float(conf)) for _box, text, conf in found or [] if float(conf) >= self.min_confidence]

    def readings(self, prompt: VideoPrompt) -> list[Reading]:
        """Every text line read in every sampled frame of the prompt's videos, with its frame's time."""
        return [Reading(text, conf, time)
                for video in prompt.videos
                for frame, time in zip(video.frames, video.timestamps, strict=True)
                for text, conf in self.read(frame)]

    def generate(self, batch: list[VideoPrompt]) -> list[str]:
        # egotask's tasks put the bare question in the doc; other tasks only have the prompt.
        return [choose_answer(str((prompt.doc or {}).get("question") or prompt.text), self.readings(prompt))
                for prompt in batch]
