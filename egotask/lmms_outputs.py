"""lmms-eval's own output files (the results JSON and the samples JSONL), written whole or not at all.

lmms-eval's ``EvaluationTracker`` writes them in place (the samples appended line by line) and, when a
write fails, logs "Could not save ..." and goes on: a full disk leaves a cut file behind and exit
status 0. egotask's entry gives lmms-eval a tracker that lets it write each file, as it always does,
into a staging folder inside ``--output_path`` (the same disk), checks that the file is complete (the
results parse; the samples file has one JSON line per sample), flushes it to disk and renames it into
place. A file that is not complete is removed and recorded with lmms-eval's own error; the entry then
exits non-zero naming it (:func:`write_failures`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from egotask.runs import RESULTS_SUFFIX, samples_name

STAGING = ".egotask-writing"
_failures: list[str] = []  # "<file>: <why>", for this process's run


def write_failures() -> list[str]:
    """The output files this process's run could not write, each with the reason."""
    return list(_failures)


def _complete_json(path: Path, _: int | None) -> None:
    json.loads(path.read_text(encoding="utf-8"))


def _complete_jsonl(path: Path, expected: int | None) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    for n, line in enumerate(lines, 1):
        try:
            json.loads(line)
        except ValueError as exc:
            raise ValueError(f"line {n} is cut ({exc})") from None
    if expected is not None and len(lines) != expected:
        raise ValueError(f"{len(lines)} of {expected} samples written")


def _free_bytes(folder: Path) -> int | str:
    try:
        stat = os.statvfs(folder)
    except OSError:
        return "?"
    return stat.f_bavail * stat.f_frsize


def tracker_class() -> type:
    """lmms-eval's ``EvaluationTracker`` with whole-file saves (lmms-eval is imported here, late)."""
    from lmms_eval.loggers import EvaluationTracker
    from loguru import logger

    class WholeFileTracker(EvaluationTracker):
        def save_results_aggregated(self, results: dict, samples: dict | None, datetime_str: str) -> None:
            from egotask.judges.secrets import redact_secrets

            config = results.get("config")
            if isinstance(config, dict) and isinstance(config.get("model_args"), str):
                # lmms-eval masks api_key, token, secret and password; egotask every secret-looking value
                config["model_args"] = redact_secrets(config["model_args"])
            name = f"{datetime_str.replace(':', '-')}{RESULTS_SUFFIX}"  # lmms-eval's file name
            self._staged(lambda: super(WholeFileTracker, self).save_results_aggregated(
                results=results, samples=samples, datetime_str=datetime_str), name, _complete_json, None)

        def save_results_samples(self, task_name: str, samples: Any) -> None:
            name = samples_name(getattr(self, 'date_id', 'RUN'), task_name)
            self._staged(lambda: super(WholeFileTracker, self).save_results_samples(
                task_name=task_name, samples=samples), name, _complete_jsonl, len(samples))

        def _staged(self, write: Callable[[], None], name: str, check: Callable[[Path, int | None], None],
                    expected: int | None) -> None:
            if not self.output_path:
                write()
                return
            output = Path(self.output_path)
            model_dir = self.general_config_tracker.model_name_sanitized
            root = output / f"{STAGING}-{os.getpid()}"
            staged, final = root / model_dir / name, output / model_dir / name
            said: list[str] = []  # what lmms-eval logs about its failure ("Could not save ...", then the error)
            sink = logger.add(lambda m: said.append(m.record["message"]), level="INFO",
                              filter=lambda r: r["name"].startswith("lmms_eval.loggers"))
            self.output_path = str(root)
            try:
                staged.unlink(missing_ok=True)
                write()
            finally:
                self.output_path = str(output)
                logger.remove(sink)
            try:
                check(staged, expected)
                with open(staged, "rb") as fh:
                    os.fsync(fh.fileno())
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, final)
            except (OSError, ValueError) as exc:
                upstream = [said[i + 1] for i, m in enumerate(said[:-1]) if m.startswith("Could not save")]
                if upstream:
                    why = upstream[-1]
                elif isinstance(exc, OSError):
                    why = exc.strerror or str(exc)
                else:  # lmms-eval leaves its results file to be closed later, and a failed close is silent
                    why = f"lmms-eval wrote it incompletely ({exc}); {_free_bytes(output)} bytes free on its disk"
                _failures.append(f"{final}: {why}")
            finally:
                shutil.rmtree(root, ignore_errors=True)

    return WholeFileTracker


def install() -> None:
    """Make lmms-eval's CLI driver use the whole-file tracker for this process's run."""
    import lmms_eval.__main__ as upstream

    upstream.EvaluationTracker = tracker_class()
