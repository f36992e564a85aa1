"""Shared by the finetune tests: the split manifest of the sample data and the fast settings."""

from __future__ import annotations

import json
from pathlib import Path

from egotask.data.splits import canonical_hash
from egotask.fixtures import EGOTEMPO_SAMPLE, INDOOR_SAMPLE

# A random tiny model's frozen, tied lm_head caps its logits (unit-RMS hidden x 0.02-scale embeddings),
# so the answer loss cannot fall far unless the LoRA also covers lm_head. Real checkpoints do not need it.
TINY_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,lm_head"
FAST = ["--grad-accumulation", "1", "--batch-size", "4", "--max-frames", "2", "--lora-dropout", "0",
        "--warmup-ratio", "0", "--scheduler", "constant", "--lora-targets", TINY_TARGETS]
OUTDOOR_TEST_VIDEO = "104"


def write_manifest(path: Path) -> Path:
    """All indoor clips train; outdoor 101-102 train, 103 val, 104 test; EgoTempo one train, one val."""
    manifest = {"version": 1, "seed": 42, "ratios": {"train": 0.8, "val": 0.1, "test": 0.1}, "hash": "",
                "splits": {
                    "egotextvqa_indoor": {"train": [q.video_id for q in INDOOR_SAMPLE], "val": [], "test": []},
                    "egotextvqa_outdoor": {"train": ["101", "102"], "val": ["103"], "test": [OUTDOOR_TEST_VIDEO]},
                    "egotempo_openqa": {"train": [EGOTEMPO_SAMPLE[0].video_id], "val": [EGOTEMPO_SAMPLE[1].video_id],
                                        "test": []}}}
    manifest["hash"] = canonical_hash(manifest["splits"])
    path.write_text(json.dumps(manifest))
    return path
