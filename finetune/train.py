"""The training loop: accelerate (one process, or data parallel under ``accelerate launch``/``torchrun``),
gradient accumulation, validation loss at intervals, best checkpoint kept, resumable.

Output folder::

    <output dir>/                      what ``pretrained=<output dir>`` loads (the best validation step,
        adapter_config.json            or the last step when there is no validation set)
        adapter_model.safetensors      (LoRA)  |  model.safetensors + config.json (full)
        processor / tokenizer files
        training.json                  base model, data, weights, manifest hash, settings, losses
        log.jsonl                      one line per logged step and per validation
        merged/                        with --merge: LoRA folded into a full checkpoint
        checkpoints/last/              resume state while training (removed when the run finishes)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from egotask import __version__
from egotask.atomic import write_text
from egotask.data.splits import load_manifest
from egotask.finetune import checkpoint
from egotask.finetune.collate import AnswerOnlyCollator
from egotask.finetune.config import FinetuneConfig, FinetuneError
from egotask.finetune.data import MixtureDataset, build_parts
from egotask.finetune.model import (
    choose_backend,
    load_for_training,
    load_trainable_state,
    resolve_model_id,
    save_for_adapters,
    save_merged,
    trainable_state,
)

log = logging.getLogger("egotask.finetune")
TRAINING_JSON = "training.json"
LOG_FILE = "log.jsonl"


def prepare_output_dir(config: FinetuneConfig) -> Path | None:
    """Check the output folder; returns the checkpoint to resume from, if any."""
    out = config.output_dir
    last = checkpoint.find_last(out)
    if config.overwrite:
        if out.exists():
            for name in ("checkpoints", "merged"):
                shutil.rmtree(out / name, ignore_errors=True)
            for name in (TRAINING_JSON, LOG_FILE):
                (out / name).unlink(missing_ok=True)
        return None
    if (out / TRAINING_JSON).is_file():
        raise FinetuneError(f"--output-dir {out} holds a finished run ({TRAINING_JSON}); choose a new folder or "
                            "pass --overwrite")
    if last is not None and not config.resume:
        raise FinetuneError(f"--output-dir {out} holds an interrupted run ({last}); drop --no-resume to continue "
                            "it, or pass --overwrite to start over")
    return last


class Trainer:
    def __init__(self, config: FinetuneConfig) -> None:
        from accelerate import Accelerator
        from transformers import set_seed

        self.config = config
        cuda = torch.cuda.is_available()
        bf16 = config.bf16 if config.bf16 is not None else (cuda and torch.cuda.is_bf16_supported())
        self.accelerator = Accelerator(mixed_precision="bf16" if bf16 else "no")
        self.dtype = torch.bfloat16 if bf16 else torch.float32
        self.is_main = self.accelerator.is_main_process
        self.world = self.accelerator.num_processes
        set_seed(config.seed)

        # Inputs are checked before the model loads: a bad dataset or a missing video fails in seconds.
        self.manifest = load_manifest(config.split_manifest)
        frame_args = {"max_frames": config.max_frames, "fps": config.fps, "max_pixels": config.max_pixels}
        self.train_parts = build_parts(config.train_datasets, "train", self.manifest, **frame_args)
        self.val_parts = build_parts(config.val_datasets, "val", self.manifest, limit=config.val_max_samples,
                                     **frame_args) if config.val_datasets else []
        self.base = resolve_model_id(config.model_id)
        self.resume_from = prepare_output_dir(config)
        self.resume_state = self._resumable(self.resume_from) if self.resume_from is not None else None
        self.backend = choose_backend(config)

        micro_per_step = config.batch_size * config.grad_accumulation * self.world
        n_train = sum(len(part) for _, _, part in self.train_parts)
        self.total_steps = config.max_steps or max(1, math.ceil(config.epochs * n_train / micro_per_step))

        log.info("loading %s (%s, %s backend, %s)", self.base, config.method, self.backend, self.dtype)
        self.model, self.processor = load_for_training(config, self.base, self.dtype, self.backend)
        if config.gradient_checkpointing if config.gradient_checkpointing is not None else cuda:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if hasattr(self.model, "enable_input_require_grads"):
                self.model.enable_input_require_grads()
        if hasattr(self.model, "config"):
            self.model.config.use_cache = False
        self.collator = AnswerOnlyCollator(self.processor)

        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise FinetuneError("no trainable parameters: check --lora-targets")
        self.optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        from transformers import get_scheduler

        self.scheduler = get_scheduler(config.scheduler, self.optimizer,
                                       num_warmup_steps=int(config.warmup_ratio * self.total_steps),
                                       num_training_steps=self.total_steps)
        self.model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)

        self.step = 0
        self.best_val: float | None = None
        self.best_step: int | None = None
        self.last_val: float | None = None
        self.resumed_at: list[int] = []
        self.started = time.time()
        self.wandb: Any = None
        if self.resume_from is not None and self.resume_state is not None:
            self._resume(self.resume_from, self.resume_state)

    # ----------------------------------------------------------------- resume

    def state(self) -> dict[str, Any]:
        return {"step": self.step, "total_steps": self.total_steps, "best_val_loss": self.best_val,
                "best_step": self.best_step, "last_val_loss": self.last_val, "resumed_at": self.resumed_at,
                "identity": self.config.identity()}

    def _resumable(self, path: Path) -> dict[str, Any]:
        """The checkpoint's JSON state, once its identity matches this run's: checked before the model
        loads and before any tensor file of the checkpoint is opened."""
        try:
            state = checkpoint.read_state(path)
        except checkpoint.CheckpointError as exc:
            raise FinetuneError(str(exc)) from None
        identity = state.get("identity") if isinstance(state.get("identity"), dict) else {}
        if identity != self.config.identity():
            changed = sorted(k for k in {*identity, *self.config.identity()}
                             if identity.get(k) != self.config.identity().get(k))
            raise FinetuneError(f"{path}: the interrupted run used other settings ({', '.join(changed)}); "
                                "rerun with the same flags, or pass --overwrite / a new --output-dir")
        return state

    def _resume(self, path: Path, state: dict[str, Any]) -> None:
        try:
            saved = checkpoint.load(path)
        except checkpoint.CheckpointError as exc:
            raise FinetuneError(str(exc)) from None
        load_trainable_state(self.accelerator.unwrap_model(self.model), saved["weights"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        checkpoint.restore_rng(saved["rng"])
        self.step, self.best_val, self.best_step = state["step"], state["best_val_loss"], state["best_step"]
        self.last_val = state["last_val_loss"]
        self.resumed_at = [*state["resumed_at"], self.step]
        if self.is_main:  # drop log lines of steps that are about to be redone
            log_path = self.config.output_dir / LOG_FILE
            if log_path.is_file():
                lines = [ln for ln in log_path.read_text().splitlines() if ln.strip()]
                kept = [ln for ln in lines if json.loads(ln)["step"] <= self.step]
                write_text(log_path, "".join(ln + "\n" for ln in kept))
        log.info("resuming from %s at step %d of %d", path, self.step, self.total_steps)

    def save_checkpoint(self) -> None:
        if self.is_main:
            checkpoint.save(self.config.output_dir,
                            weights=trainable_state(self.accelerator.unwrap_model(self.model)),
                            optimizer=self.optimizer, scheduler=self.scheduler, state=self.state())
        self.accelerator.wait_for_everyone()

    # ----------------------------------------------------------------- data

    def train_loader(self) -> tuple[DataLoader, MixtureDataset]:
        """Micro-batches from the current step to the end; each rank reads its own slice of every step."""
        cfg = self.config
        per_micro = cfg.batch_size * self.world
        per_step = per_micro * cfg.grad_accumulation
        mixture = MixtureDataset([p for _, _, p in self.train_parts], [w for _, w, _ in self.train_parts],
                                 cfg.seed, length=(self.total_steps - self.step) * per_step,
                                 offset=self.step * per_step)
        rank = self.accelerator.process_index
        order = [m * per_micro + rank * cfg.batch_size + j
                 for m in range(len(mixture) // per_micro) for j in range(cfg.batch_size)]
        loader = DataLoader(mixture, batch_size=cfg.batch_size, sampler=order, collate_fn=self.collator,
                            num_workers=cfg.num_workers)
        return loader, mixture

    # ----------------------------------------------------------------- loop

    def log_line(self, entry: dict[str, Any]) -> None:
        if not self.is_main:
            return
        with open(self.config.output_dir / LOG_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
        if self.wandb is not None:
            self.wandb.log({k: v for k, v in entry.items() if k != "step"}, step=entry["step"])

    def forward_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        batch = {k: v.to(self.accelerator.device) for k, v in batch.items()}
        n_tokens = int((batch["labels"][:, 1:] != -100).sum())
        with self.accelerator.autocast():
            out = self.model(**batch)
        return out.loss, n_tokens

    def train(self) -> dict[str, Any]:
        cfg = self.config
        cfg.output_dir.mkdir(parents=True, exist_ok=True)
        self.wandb = self._init_wandb() if self.is_main else None
        loader, mixture = self.train_loader()
        batches = iter(loader)
        bar = tqdm(total=self.total_steps, initial=self.step, desc="finetune", disable=not self.is_main,
                   dynamic_ncols=True)
        train_loss = None
        self.model.train()
        while self.step < self.total_steps:
            losses = []
            for micro in range(cfg.grad_accumulation):
                batch = next(batches)
                last = micro == cfg.grad_accumulation - 1
                with nullcontext() if last else self.accelerator.no_sync(self.model):
                    loss, _ = self.forward_loss(batch)
                    self.accelerator.backward(loss / cfg.grad_accumulation)
                losses.append(loss.detach().float())
            if cfg.max_grad_norm:
                self.accelerator.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            train_loss = float(self.accelerator.reduce(torch.stack(losses).mean(), reduction="mean"))
            bar.update(1)
            bar.set_postfix(loss=f"{train_loss:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            if self.step % cfg.logging_steps == 0 or self.step == self.total_steps:
                self.log_line({"step": self.step, "loss": train_loss, "lr": self.scheduler.get_last_lr()[0],
                               "seconds": round(time.time() - self.started, 2)})
            if self.val_parts and (self.step % cfg.eval_steps == 0 or self.step == self.total_steps):
                self.validate()
            if self.step % cfg.save_steps == 0 and self.step < self.total_steps:
                self.save_checkpoint()
        bar.close()
        return self.finish(train_loss, mixture)

    @torch.no_grad()
    def validate(self) -> float:
        """Weighted mean over the validation datasets of each one's per-answer-token loss."""
        self.model.eval()
        rank = self.accelerator.process_index
        per_dataset: dict[str, float] = {}
        for name, _, part in self.val_parts:
            mine = list(range(rank, len(part), self.world))
            loader = DataLoader(part, batch_size=self.config.batch_size, sampler=mine, collate_fn=self.collator,
                                num_workers=self.config.num_workers)
            total = torch.zeros(2, device=self.accelerator.device)
            for batch in tqdm(loader, desc=f"val {name}", leave=False, disable=not self.is_main):
                loss, n_tokens = self.forward_loss(batch)
                total += torch.tensor([float(loss) * n_tokens, n_tokens], device=total.device)
            total = self.accelerator.reduce(total, reduction="sum")
            per_dataset[name] = float(total[0] / total[1].clamp(min=1))
        val = sum(w * per_dataset[name] for name, w, _ in self.val_parts)
        self.last_val = val
        improved = self.best_val is None or val < self.best_val
        log.info("step %d: val loss %.4f%s", self.step, val, " (best so far)" if improved else "")
        self.log_line({"step": self.step, "val_loss": val, **{f"val_loss/{k}": v for k, v in per_dataset.items()}})
        if improved:
            self.best_val, self.best_step = val, self.step
            self.save_model()  # the best model is what pretrained=<output dir> loads, even if the run dies
        self.model.train()
        return val

    def save_model(self) -> None:
        if self.is_main:
            save_for_adapters(self.accelerator.unwrap_model(self.model), self.processor, self.config.output_dir,
                              self.config, self.base)
        self.accelerator.wait_for_everyone()

    def finish(self, train_loss: float | None, mixture: MixtureDataset) -> dict[str, Any]:
        cfg = self.config
        if not self.val_parts:
            self.save_model()
        summary = self.summary(train_loss, mixture)
        if self.is_main:
            if cfg.merge:
                model = self.accelerator.unwrap_model(self.model)
                if self.best_step is not None and self.best_step != self.step:  # merge the kept (best) weights
                    from peft import PeftModel

                    base = type(model.get_base_model()).from_pretrained(self.base, dtype=self.dtype)
                    model = PeftModel.from_pretrained(base, str(cfg.output_dir))
                log.info("writing the merged checkpoint to %s", cfg.output_dir / "merged")
                save_merged(model, self.processor, cfg.output_dir / "merged")
            write_text(cfg.output_dir / TRAINING_JSON, json.dumps(summary, indent=2))
            shutil.rmtree(cfg.output_dir / "checkpoints", ignore_errors=True)
            if self.wandb is not None:
                self.wandb.summary.update({"best_val_loss": self.best_val, "final_val_loss": self.last_val})
                self.wandb.finish()
        self.accelerator.wait_for_everyone()
        return summary

    def summary(self, train_loss: float | None, mixture: MixtureDataset) -> dict[str, Any]:
        cfg = self.config
        names = [name for name, _, _ in self.train_parts]
        counts = [0] * len(names)
        for dataset, _ in mixture.draws:
            counts[dataset] += 1
        total = max(1, sum(counts))
        return {
            "egotask_version": __version__,
            "base_model": self.base,
            "method": cfg.method,
            "backend": self.backend,
            "train_datasets": dict(cfg.train_datasets),
            "val_datasets": dict(cfg.val_datasets),
            "train_questions": {name: len(part) for name, _, part in self.train_parts},
            "val_questions": {name: len(part) for name, _, part in self.val_parts},
            # Shares actually drawn since the last (re)start; they follow the weights.
            "train_draw_shares": {name: c / total for name, c in zip(names, counts, strict=True)},
            "split_manifest": {"path": str(cfg.split_manifest),
                               "hash": self.manifest.get("hash") or file_sha256(cfg.split_manifest),
                               "seed": self.manifest.get("seed")},
            "hyperparameters": cfg.to_json(),
            "steps": self.step,
            "total_steps": self.total_steps,
            "examples_seen": self.step * cfg.batch_size * cfg.grad_accumulation * self.world,
            "world_size": self.world,
            "resumed_at_steps": self.resumed_at,
            "final_train_loss": train_loss,
            "final_val_loss": self.last_val,
            "best_val_loss": self.best_val,
            "best_step": self.best_step,
            "saved_weights": f"best validation step {self.best_step}" if self.best_step is not None
            else f"last step {self.step}",
            # Evaluate with the same frames the model was trained on.
            "evaluate_with": {"max_frames": cfg.max_frames, "fps": cfg.fps, "max_pixels": cfg.max_pixels},
            "seconds": round(time.time() - self.started, 1),
        }

    def _init_wandb(self) -> Any:
        if self.config.report_to != "wandb":
            return None
        try:
            import wandb
        except ImportError:
            raise FinetuneError("--report-to wandb needs the wandb package (pip install wandb)") from None
        return wandb.init(project="egotask-finetune", name=self.config.run_name, config=self.config.to_json())


def file_sha256(path: Path) -> str:
    return "sha256-of-file:" + hashlib.sha256(path.read_bytes()).hexdigest()


def run(config: FinetuneConfig) -> dict[str, Any]:
    """Finetune as configured; returns what ``training.json`` records."""
    return Trainer(config).train()
