"""The resume checkpoint: trained weights, optimizer, scheduler, step and RNG, written atomically to
``<output dir>/checkpoints/last`` so a run killed at any moment resumes from the last complete one."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FILE = "state.json"


def last_dir(output_dir: Path) -> Path:
    return output_dir / "checkpoints" / "last"


def find_last(output_dir: Path) -> Path | None:
    """The last complete checkpoint; a kill during a save leaves the previous one as ``last.old``."""
    for path in (last_dir(output_dir), last_dir(output_dir).with_name("last.old")):
        if (path / STATE_FILE).is_file():
            return path
    return None


def save(output_dir: Path, *, weights: dict[str, torch.Tensor], optimizer: Any, scheduler: Any,
         state: dict[str, Any]) -> Path:
    final = last_dir(output_dir)
    tmp, old = final.with_name("last.tmp"), final.with_name("last.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(weights, tmp / "weights.pt")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save({"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp / "rng.pt")
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=2))  # written last: marks the folder complete
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load(path: Path) -> dict[str, Any]:
    return {
        "state": json.loads((path / STATE_FILE).read_text()),
        "weights": torch.load(path / "weights.pt", map_location="cpu", weights_only=True),
        "optimizer": torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False),
        "scheduler": torch.load(path / "scheduler.pt", map_location="cpu", weights_only=False),
        "rng": torch.load(path / "rng.pt", map_location="cpu", weights_only=False),
    }


def restore_rng(rng: dict[str, Any]) -> None:
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
