"""Frame presets: the number of frames (#F) the EgoTextVQA paper (CVPR 2025) gave each model,
chosen with ``--model_args frames=paper`` (or ``paper-open``) and resolved per question's setting.

The paper samples #F frames uniformly from the video before the question's timestamp:

=====================  =======  ======
model                  outdoor  indoor
=====================  =======  ======
GPT-4o, Gemini 1.5     32       60      (``paper``: the closed models; outdoor frames at 768x768)
Qwen2-VL               16       48      (``paper-open``)
InternVL2-8B           32       -
LLaVA-NeXT-Video       60       128
=====================  =======  ======

``paper-open`` takes Qwen2-VL's counts, the open model closest to the Qwen3-VL adapters. For the
other open models pass the count itself (``frames=60``). The paper does not cover EgoTempo, so a
preset leaves EgoTempo questions at the adapter's ``max_frames``.
"""

from __future__ import annotations

PAPER_FRAMES: dict[str, dict[str, int]] = {
    "paper": {"outdoor": 32, "indoor": 60},
    "paper-open": {"outdoor": 16, "indoor": 48},
}

Frames = str | int | None


def parse_frames(value: object) -> Frames:
    """The ``frames=`` model argument: a preset name, a positive count, or unset (None)."""
    if value in (None, "", "None"):
        return None
    text = str(value).strip().lower()
    if text in PAPER_FRAMES:
        return text
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"--model_args frames={value!r}: expected {' or '.join(PAPER_FRAMES)} (the EgoTextVQA "
                         "paper's frame counts) or a number of frames")
    return count


def max_frames_for(frames: Frames, setting: str | None, default: int) -> int:
    """How many frames to sample for a question of ``setting`` (indoor, outdoor, egotempo): the
    preset's count for it, the count given, or ``default`` (the adapter's ``max_frames``)."""
    if frames is None:
        return default
    if isinstance(frames, int):
        return frames
    return PAPER_FRAMES[frames].get(setting or "", default)
