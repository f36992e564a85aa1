"""Training and validation examples: the tasks' docs (same loaders, same offline variables), kept to
one split of the manifest, with frames from the evaluation sampler and the evaluation prompt.

The training stream is a weighted mixture of datasets. It is a pure function of the seed and the
position in the stream, so a resumed run (or another data-parallel rank) can find its place without
replaying anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from egotask import tasklib
from egotask.data.sources import DataError, load_docs, missing_videos
from egotask.data.splits import videos_split
from egotask.finetune.prompts import question_text
from egotask.frames import SampledFrames, sample_visual

log = logging.getLogger("egotask.finetune")


def split_docs(benchmark: str, split: str, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The benchmark's docs whose video the manifest puts in ``split`` (never another split's videos)."""
    if split == "test":
        raise ValueError("finetuning never reads the test split")
    docs = load_docs(benchmark)
    splits = videos_split(manifest, benchmark, [d["video_id"] for d in docs])
    kept = [d for d, s in zip(docs, splits, strict=True) if s == split]
    missing = missing_videos(kept)
    if missing:
        shown = "\n  ".join(str(p) for p in missing[:5])
        more = f"\n  ... and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(f"{benchmark} ({split} split): {len(missing)} video file(s) missing:\n  {shown}{more}")
    return kept


@dataclass
class Example:
    """One question ready for the collator: the evaluation prompt, its answer and its frames."""

    text: str
    answer: str
    frames: SampledFrames
    benchmark: str
    video_id: str


class DocDataset(Dataset):
    """Docs turned into :class:`Example` s; frames are sampled when an item is read."""

    def __init__(self, docs: list[dict[str, Any]], *, max_frames: int, fps: float | None = None,
                 max_pixels: int | None = None) -> None:
        self.docs = docs
        self.max_frames, self.fps, self.max_pixels = max_frames, fps, max_pixels

    def __len__(self) -> int:
        return len(self.docs)

    def __getitem__(self, index: int) -> Example:
        doc = self.docs[index]
        # Exactly evaluation's visual: the task's doc_to_visual (visible interval) through the adapters'
        # sampler, with the same max_frames/fps/max_pixels the adapter takes as --model_args.
        (visual,) = tasklib.doc_to_visual(doc)
        frames = sample_visual(visual, max_frames=self.max_frames, fps=self.fps, max_pixels=self.max_pixels)
        return Example(question_text(doc), doc["answer"], frames, doc["benchmark"], doc["video_id"])


class MixtureStream:
    """An endless, seeded stream of ``(dataset index, item index)`` draws: each draw picks a dataset by
    weight, then that dataset's next item in a per-dataset shuffled order (reshuffled when used up)."""

    def __init__(self, sizes: list[int], weights: list[float], seed: int) -> None:
        if len(sizes) != len(weights):
            raise ValueError("one weight per dataset")
        if any(n < 1 for n in sizes):
            raise ValueError("every dataset in a mixture needs at least one item")
        total = float(sum(weights))
        self.sizes, self.weights, self.seed = sizes, [w / total for w in weights], seed
        self._choices_chunk = 4096

    def _dataset_choices(self, chunk: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 0, chunk])
        return rng.choice(len(self.sizes), size=self._choices_chunk, p=self.weights)

    def _order(self, dataset: int, cycle: int) -> np.ndarray:
        return np.random.default_rng([self.seed, 1, dataset, cycle]).permutation(self.sizes[dataset])

    def take(self, start: int, count: int) -> list[tuple[int, int]]:
        """Draws ``start .. start+count-1`` of the stream."""
        # How many times each dataset was drawn before `start` tells where its order stands.
        used = [0] * len(self.sizes)
        out: list[tuple[int, int]] = []
        position, chunk = 0, 0
        end = start + count
        while position < end:
            choices = self._dataset_choices(chunk)
            lo, hi = position, position + len(choices)
            if hi <= start:  # whole chunk before the window: only count
                counts = np.bincount(choices, minlength=len(self.sizes))
                used = [u + int(c) for u, c in zip(used, counts, strict=True)]
            else:
                for offset, dataset in enumerate(choices):
                    pos = lo + offset
                    if pos >= end:
                        break
                    d = int(dataset)
                    if pos >= start:
                        cycle, within = divmod(used[d], self.sizes[d])
                        out.append((d, int(self._order(d, cycle)[within])))
                    used[d] += 1
            position, chunk = hi, chunk + 1
        return out


class MixtureDataset(Dataset):
    """The training stream as a map-style dataset over positions ``offset ..``: item ``i`` is draw
    ``offset + i`` of the :class:`MixtureStream`."""

    def __init__(self, parts: list[DocDataset], weights: list[float], seed: int, length: int,
                 offset: int = 0) -> None:
        self.parts = parts
        self.stream = MixtureStream([len(p) for p in parts], weights, seed)
        self.draws = self.stream.take(offset, length)

    def __len__(self) -> int:
        return len(self.draws)

    def __getitem__(self, index: int) -> Example:
        dataset, item = self.draws[index]
        return self.parts[dataset][item]


def build_parts(datasets: list[tuple[str, float]], split: str, manifest: dict[str, Any], *,
                max_frames: int, fps: float | None, max_pixels: int | None,
                limit: int | None = None) -> list[tuple[str, float, DocDataset]]:
    """One :class:`DocDataset` per benchmark; an empty split is an error naming benchmark and manifest."""
    parts = []
    for benchmark, weight in datasets:
        docs = split_docs(benchmark, split, manifest)
        if not docs:
            raise DataError(f"{manifest.get('path', 'the split manifest')}: the {split} split of {benchmark} "
                            "has no questions")
        if limit is not None and len(docs) > limit:
            # A fixed, spread-out subset so validation is cheap and comparable across evaluations.
            picks = np.linspace(0, len(docs) - 1, limit).round().astype(int)
            docs = [docs[i] for i in picks]
        log.info("%s %s: %d questions on %d videos", benchmark, split, len(docs),
                 len({d["video_id"] for d in docs}))
        parts.append((benchmark, weight, DocDataset(docs, max_frames=max_frames, fps=fps, max_pixels=max_pixels)))
    return parts
