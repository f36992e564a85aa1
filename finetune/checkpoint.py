"""The resume checkpoint: trained weights, optimizer, scheduler, step and RNG, written atomically to
``<output dir>/checkpoints/last`` so a run killed at any moment resumes from the last complete one.

Nothing in it is a pickle: tensors are safetensors files and everything else is JSON, so a file
planted in the output folder can hold data but never run code. A resume reads ``state.json`` first
and checks the run's identity (:func:`read_state`) before it loads anything else (:func:`load`).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from egotask.atomic import write_text

STATE_FILE = "state.json"
WEIGHTS, OPTIMIZER, RNG = "weights.safetensors", "optimizer", "rng"  # the last two: .safetensors + .json
SCHEDULER = "scheduler.json"
PICKLES = ("weights.pt", "optimizer.pt", "scheduler.pt", "rng.pt")  # what older egotask versions wrote


class CheckpointError(ValueError):
    """The resume checkpoint cannot be used; the message names the folder and what to do."""


def last_dir(output_dir: Path) -> Path:
    return output_dir / "checkpoints" / "last"


def find_last(output_dir: Path) -> Path | None:
    """The last complete checkpoint; a kill during a save leaves the previous one as ``last.old``."""
    for path in (last_dir(output_dir), last_dir(output_dir).with_name("last.old")):
        if (path / STATE_FILE).is_file():
            return path
    return None


# --------------------------------------------------------------------------- tensors and JSON, no pickle

def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    plain = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    try:
        save_file(plain, str(path))
    except RuntimeError:  # tensors sharing memory (tied weights): safetensors wants each apart
        save_file({k: v.clone() for k, v in plain.items()}, str(path))


def _split(value: dict[str, Any], prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` with each tensor moved into ``tensors`` under a dotted name, left as ``{"tensor": name}``."""
    if isinstance(value, torch.Tensor):
        tensors[prefix] = value
        return {"tensor": prefix}
    if isinstance(value, dict):
        return {"dict": [[k, _split(v, f"{prefix}.{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return {"list" if isinstance(value, list) else "tuple": [_split(v, f"{prefix}.{i}", tensors)
                                                                 for i, v in enumerate(value)]}
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": str(value.dtype)}
    if value is None or isinstance(value, bool | int | float | str):
        return {"value": value}
    raise TypeError(f"{prefix}: a {type(value).__name__} cannot be kept in a resume checkpoint")


def _join(value: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Any:
    if "tensor" in value:
        return tensors[value["tensor"]]
    if "dict" in value:
        # keys come back as written: optimizer state is keyed by parameter index (an int)
        return {k: _join(v, tensors) for k, v in value["dict"]}
    if "list" in value:
        return [_join(v, tensors) for v in value["list"]]
    if "tuple" in value:
        return tuple(_join(v, tensors) for v in value["tuple"])
    if "ndarray" in value:
        return np.array(value["ndarray"], dtype=value["dtype"])
    return value["value"]


def _save_structure(value: Any, folder: Path, name: str) -> None:
    tensors: dict[str, torch.Tensor] = {}
    write_text(folder / f"{name}.json", json.dumps(_split(value, name, tensors)))
    _save_tensors(tensors, folder / f"{name}.safetensors")


def _load_structure(folder: Path, name: str) -> Any:
    return _join(json.loads((folder / f"{name}.json").read_text()), load_file(str(folder / f"{name}.safetensors")))


# --------------------------------------------------------------------------- save and load

def save(output_dir: Path, *, weights: dict[str, torch.Tensor], optimizer: Any, scheduler: Any,
         state: dict[str, Any]) -> Path:
    final = last_dir(output_dir)
    tmp, old = final.with_name("last.tmp"), final.with_name("last.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _save_tensors(weights, tmp / WEIGHTS)
    _save_structure(optimizer.state_dict(), tmp, OPTIMIZER)
    write_text(tmp / SCHEDULER, json.dumps(scheduler.state_dict()))
    _save_structure({"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                     "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp, RNG)
    write_text(tmp / STATE_FILE, json.dumps(state, indent=2))  # written last: marks the folder complete
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def read_state(path: Path) -> dict[str, Any]:
    """The checkpoint's step and identity (JSON only): what a resume checks before loading anything.
    A folder an older egotask wrote (pickle files) is refused unread."""
    if any((path / name).exists() for name in PICKLES):
        raise CheckpointError(f"{path} holds pickle files ({', '.join(n for n in PICKLES if (path / n).exists())}), "
                              "which egotask does not load (unpickling can run code planted in the folder); "
                              "pass --overwrite or a new --output-dir to start over")
    try:
        return json.loads((path / STATE_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path / STATE_FILE}: cannot read the resume state ({exc}); pass --overwrite "
                              "or a new --output-dir") from None


def load(path: Path) -> dict[str, Any]:
    """Weights, optimizer, scheduler and RNG states (safetensors and JSON; nothing is unpickled)."""
    try:
        return {
            "weights": load_file(str(path / WEIGHTS)),
            "optimizer": _load_structure(path, OPTIMIZER),
            "scheduler": json.loads((path / SCHEDULER).read_text()),
            "rng": _load_structure(path, RNG),
        }
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: the resume checkpoint is incomplete or damaged ({exc}); pass --overwrite "
                              "or a new --output-dir") from None


def restore_rng(rng: dict[str, Any]) -> None:
    python = rng["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
