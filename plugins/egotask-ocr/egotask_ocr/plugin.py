"""The plugin module egotask loads through the ``egotask`` entry point. It only describes the model;
lmms-eval imports the class (and RapidOCR) when the model is actually run."""

from __future__ import annotations

from egotask.hookspecs import ModelAdapter, hookimpl


@hookimpl
def egotask_model_adapters() -> list[ModelAdapter]:
    return [ModelAdapter("ocr_baseline", "egotask_ocr.model.OCRBaseline",
                         "scene-text baseline: RapidOCR reads the frames, answers with the most relevant text",
                         aliases=("rapidocr",), reads_intervals=True,
                         # OCRBaseline's own keywords, then those of egotask's FramesModel it extends.
                         model_args=("min_confidence", "min_side", "device", "batch_size", "max_frames", "fps",
                                     "max_pixels", "frames", "force_frames", "frame_memory"),
                         example="max_frames=8,min_side=320")]
