"""The one place that knows where each benchmark's annotations and videos live.

Annotations come from a local file named by a setting (offline; see :mod:`egotask.settings`) or
from the Hugging Face Hub (online). Videos come from a local folder named by a setting, or are
downloaded one file at a time from the Hub. Every loader returns the same doc schema:

    {benchmark, setting, video_id, question_id, question_type, question, answer, timestamp,
     visible_start, visible_end}

``visible_end`` is ``None`` when the model may see the whole video.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from egotask.atomic import write_text
from egotask.records import ALTERNATIVES_SEPARATOR, join_alternatives
from egotask.settings import get_settings

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class DataError(ValueError):
    """Bad or missing benchmark data; the message names the file, field or variable at fault."""


@dataclass(frozen=True)
class Benchmark:
    name: str
    setting: str  # indoor | outdoor | egotempo
    question_types: tuple[str, ...]
    annotations_var: str
    video_dir_var: str
    hub_repo: str
    video_hub_repo: str | None
    video_subdir: str  # folder under the video dir (and the video hub repo)

    def video_relpath(self, video_id: str) -> str:
        """``<video_subdir>/<video_id>.mp4``: every video path built from an id goes through here, so
        an id that is not a plain file name (``../x``, ``/abs/x``, ``a/b``) never leaves the folder."""
        if not is_file_name(video_id):
            raise DataError(f"video id {video_id!r} is not a file name, so it would point outside "
                            f"{self.video_dir_var}; the annotation or record holding it is wrong")
        name = f"{video_id}.mp4"
        return f"{self.video_subdir}/{name}" if self.video_subdir else name


def is_file_name(name: str) -> bool:
    """A single path component: no separator, not absolute, not ``.`` or ``..``, no NUL."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
            and "\0" not in name)


INDOOR_TYPES = ("hands-on", "kitchen", "shopping", "gameplay", "book-related", "others")
OUTDOOR_TYPES = ("location", "direction", "description", "intention reasoning", "others")
EGOTEMPO_TYPES = (
    "action sequence", "action-specific object", "counting actions", "counting objects",
    "future action prediction", "locating object", "object sequence", "object-specific action",
    "spatial relationship", "temporal event ordering",
)

BENCHMARKS: dict[str, Benchmark] = {
    "egotextvqa_indoor": Benchmark(
        "egotextvqa_indoor", "indoor", INDOOR_TYPES, "EGOTEXTVQA_ANNOTATIONS", "EGOTEXTVQA_VIDEO_DIR",
        "petkopetkov/EgoTextVQA", "ShengZhou97/EgoTextVQA", "EgoTextVQA-Indoor"),
    "egotextvqa_outdoor": Benchmark(
        "egotextvqa_outdoor", "outdoor", OUTDOOR_TYPES, "EGOTEXTVQA_ANNOTATIONS", "EGOTEXTVQA_VIDEO_DIR",
        "petkopetkov/EgoTextVQA", "ShengZhou97/EgoTextVQA", "EgoTextVQA-Outdoor"),
    "egotempo_openqa": Benchmark(
        "egotempo_openqa", "egotempo", EGOTEMPO_TYPES, "EGOTEMPO_ANNOTATIONS", "EGOTEMPO_VIDEO_DIR",
        "lmms-lab-eval/egotempo", None, ""),
}

# A folder written by `egotask data build-qa`: when set, EgoTextVQA questions and video paths come from it.
EGOTEXTVQA_DATASET_VAR = "EGOTEXTVQA_DATASET"
EGOTEXTVQA_FILES = {"indoor": "egotextvqa_indoor_annotation.jsonl",
                    "outdoor": "egotextvqa_outdoor_annotation.jsonl"}
EGOTEXTVQA_FIELDS = ("video_id", "question_id", "question_type", "question", "correct_answer", "timestamp")
EGOTEMPO_FIELDS = ("question_id", "clip_id", "question_type", "question", "answer")


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise DataError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


def setting_of_video_id(video_id: str) -> str:
    """EgoTextVQA indoor videos are Ego4D UUIDs, outdoor ones are numbers (RoadTextVQA)."""
    vid = str(video_id).strip()
    if UUID_RE.match(vid):
        return "indoor"
    if re.fullmatch(r"\d+(\.0+)?", vid):
        return "outdoor"
    raise DataError(f"video id {vid!r} is neither an Ego4D UUID (indoor) nor numeric (outdoor)")


# --------------------------------------------------------------------------- annotations

def _require(row: dict[str, Any], fields: Iterable[str], where: str) -> None:
    missing = [f for f in fields if row.get(f) in (None, "")]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}")


# Small checks shared by every reader (local files and the Hub): each names the row and the field.

def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, bool | list | dict) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def text_field(row: dict[str, Any], name: str, where: str) -> str:
    """A text field: a string, never a list or object turned into its repr."""
    value = row[name]
    if not isinstance(value, str):
        raise DataError(f"{where}: field {name} must be a string, got {type(value).__name__} {_shown(value)}")
    return value


def id_field(row: dict[str, Any], name: str, where: str) -> str:
    """An id: a string, or a whole number written without quotes (outdoor video ids are numbers)."""
    value = row[name]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DataError(f"{where}: field {name} must be a string or an integer, got {type(value).__name__} "
                        f"{_shown(value)}")
    return str(value)


def answer_field(row: dict[str, Any], name: str, where: str) -> str:
    """The reference: a string, or a list of acceptable answers (strings), kept as alternatives that
    the judges read back with :func:`egotask.records.answer_alternatives`."""
    value = row[name]
    if isinstance(value, list):
        if not value or not all(isinstance(v, str) and v.strip() and ALTERNATIVES_SEPARATOR not in v for v in value):
            raise DataError(f"{where}: field {name} must be a string or a list of non-empty strings without "
                            f"{ALTERNATIVES_SEPARATOR.strip()!r}, got list {_shown(value)}")
        return join_alternatives([v.strip() for v in value])
    return text_field(row, name, where)


def timestamp_field(row: dict[str, Any], name: str, where: str) -> float:
    """Seconds: a finite number >= 0 (not a string, a boolean, NaN or infinity)."""
    value = row[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DataError(f"{where}: field {name} must be a number, got {_shown(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise DataError(f"{where}: field {name} must be a finite number, got {number}")
    if number < 0:
        raise DataError(f"{where}: field {name} must be >= 0, got {number}")
    return number


class UniqueKeys:
    """Remembers where each (video_id, question_id) was first seen; a second one is an error, since
    it would be evaluated twice."""

    def __init__(self) -> None:
        self.first: dict[tuple[str, str], str] = {}

    def add(self, doc: dict[str, Any], where: str, first_where: str | None = None) -> None:
        key = (doc["video_id"], doc["question_id"])
        if key in self.first:
            raise DataError(f"{where}: duplicate question (video_id {key[0]!r}, question_id {key[1]!r}), "
                            f"first on {self.first[key]}")
        self.first[key] = first_where or where


def read_text(path: Path) -> str:
    """A UTF-8 text file; any other encoding is an error naming the file and line."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}: "
                        f"{exc.reason}); save the file as UTF-8") from None


def read_egotextvqa_jsonl(path: Path, setting: str, *, allow_duplicates: bool = False) -> list[dict[str, Any]]:
    """Read one EgoTextVQA annotation JSONL file into docs, validating every row.

    A repeated (video_id, question_id) is an error unless ``allow_duplicates`` (for `egotask data
    build-qa`, which lists them in its report).
    """
    bench = get_benchmark(f"egotextvqa_{setting}")
    docs = []
    keys = UniqueKeys()
    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
        docs.append(egotextvqa_doc(row, bench, where))
        if not allow_duplicates:
            keys.add(docs[-1], where, f"line {lineno}")
    if not docs:
        raise DataError(f"{path}: no annotation rows")
    return docs


def egotextvqa_doc(row: dict[str, Any], bench: Benchmark, where: str) -> dict[str, Any]:
    row = dict(row)
    if "correct_answer" not in row and "answer" in row:  # the hub dataset's column name
        row["correct_answer"] = row["answer"]
    _require(row, EGOTEXTVQA_FIELDS, where)
    video_id = id_field(row, "video_id", where)
    try:
        actual = setting_of_video_id(video_id)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    if actual != bench.setting:
        raise DataError(f"{where}: video_id {video_id!r} is an {actual} id, but these are the {bench.setting} "
                        "annotations")
    timestamp = timestamp_field(row, "timestamp", where)
    return {
        "benchmark": bench.name,
        "setting": bench.setting,
        "video_id": video_id,
        "question_id": id_field(row, "question_id", where),
        "question_type": text_field(row, "question_type", where),
        "question": text_field(row, "question", where),
        "answer": answer_field(row, "correct_answer", where),
        "timestamp": timestamp,
        # Real-time QA (the paper's protocol): only the video before the question is visible.
        "visible_start": 0.0,
        "visible_end": timestamp,
    }


def read_egotempo_json(path: Path) -> list[dict[str, Any]]:
    """Read EgoTempo's ``egotempo_openQA.json`` ({"annotations": [...]}) into docs; errors name the
    line where the annotation starts."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    rows = data.get("annotations") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected an object with an 'annotations' list")
    lines = _array_lines(text, "annotations") or [None] * len(rows)
    bench = BENCHMARKS["egotempo_openqa"]
    docs, keys = [], UniqueKeys()
    for i, (row, line) in enumerate(zip(rows, lines, strict=True)):
        where = f"{path}:{line}: annotations[{i}]" if line else f"{path}: annotations[{i}]"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
        docs.append(egotempo_doc(row, bench, where))
        keys.add(docs[-1], where)
    return docs


def _array_lines(text: str, key: str) -> list[int] | None:
    """The line on which each element of the top-level object's ``key`` array starts (None when the
    text is not laid out so: the caller then names elements by index only)."""
    decoder, space = json.JSONDecoder(), re.compile(r"\s*")

    def skip(i: int, char: str = "") -> int:
        i = space.match(text, i).end()
        if char and text.startswith(char, i):
            i = space.match(text, i + 1).end()
        return i

    try:
        i = skip(0)
        if not text.startswith("{", i):
            return None
        i = skip(i + 1)
        while not text.startswith("}", i):
            name, i = decoder.raw_decode(text, i)
            i = skip(skip(i), ":")
            if name == key and text.startswith("[", i):
                lines, line, pos = [], 1, 0
                i = skip(i + 1)
                while not text.startswith("]", i):
                    line, pos = line + text.count("\n", pos, i), i
                    lines.append(line)
                    _, i = decoder.raw_decode(text, i)
                    i = skip(i, ",")
                return lines
            _, i = decoder.raw_decode(text, i)
            i = skip(i, ",")
    except (json.JSONDecodeError, IndexError):
        return None
    return None


VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi")


def clip_id_of(video: str) -> str:
    """The clip id of a video path: its file name less a video extension, and only that, since clip ids
    end in their times ("x_120.0_180.0", whose ".0" is no extension)."""
    name = Path(video).name
    return name[: -len(Path(name).suffix)] if name.lower().endswith(VIDEO_SUFFIXES) else name


def egotempo_doc(row: dict[str, Any], bench: Benchmark, where: str) -> dict[str, Any]:
    row = dict(row)
    if "clip_id" not in row and "video" in row:  # lmms-lab-eval/egotempo names it so
        row["clip_id"] = clip_id_of(text_field(row, "video", where))
    _require(row, EGOTEMPO_FIELDS, where)
    clip_id = id_field(row, "clip_id", where)
    if not is_file_name(clip_id):
        raise DataError(f"{where}: field clip_id must be a file name (the clip is <clip_id>.mp4 inside "
                        f"{bench.video_dir_var}), got {clip_id!r}")
    return {
        "benchmark": bench.name,
        "setting": bench.setting,
        "video_id": clip_id,
        "question_id": id_field(row, "question_id", where),
        "question_type": text_field(row, "question_type", where),
        "question": text_field(row, "question", where),
        "answer": answer_field(row, "answer", where),
        "timestamp": None,
        "visible_start": 0.0,
        "visible_end": None,  # EgoTempo questions are about the whole clip
    }


def _env_path(var: str) -> Path | None:
    """The path setting that variable sets (None when unset)."""
    return get_settings().value_of(var)


def load_docs(benchmark: str) -> list[dict[str, Any]]:
    """All docs of a benchmark, from the offline files when their variable is set, else the Hub.

    Parsed once per process and source (a preflight check and lmms-eval's loader share it); callers
    get their own copies.
    """
    bench = get_benchmark(benchmark)
    local = _built_dataset(bench) or _env_path(bench.annotations_var)
    stamp = None
    if local is not None and local.exists():
        stamp = tuple(p.stat().st_mtime_ns for p in ([local] if local.is_file() else sorted(local.iterdir())))
    return [dict(d) for d in _load_docs_cached(benchmark, str(local), stamp)]


def _built_dataset(bench: Benchmark) -> Path | None:
    return _env_path(EGOTEXTVQA_DATASET_VAR) if bench.name.startswith("egotextvqa_") else None


@lru_cache(maxsize=16)
def _load_docs_cached(benchmark: str, _local: str, _stamp: tuple | None) -> tuple[dict[str, Any], ...]:
    return tuple(_load_docs_uncached(benchmark))


def _load_docs_uncached(benchmark: str) -> list[dict[str, Any]]:
    bench = get_benchmark(benchmark)
    local = _env_path(bench.annotations_var)
    if bench.setting == "egotempo":
        if local is not None:
            if not local.is_file():
                raise DataError(f"{bench.annotations_var}={local}: no such file (expected egotempo_openQA.json)")
            return read_egotempo_json(local)
        return _load_hub_docs(bench, lambda row, where: egotempo_doc(row, bench, where))
    built = _built_dataset(bench)
    if built is not None:
        return _load_built_docs(bench, built)
    if local is not None:
        path = local / EGOTEXTVQA_FILES[bench.setting]
        if not path.is_file():
            raise DataError(f"{bench.annotations_var}={local}: {path.name} not found in that folder")
        return read_egotextvqa_jsonl(path, bench.setting)
    return _load_hub_docs(bench, lambda row, where: egotextvqa_doc(row, bench, where),
                          subset=bench.setting)


def _load_built_docs(bench: Benchmark, folder: Path) -> list[dict[str, Any]]:
    """Docs from a `egotask data build-qa` folder; each keeps the row's ``video_path``."""
    import datasets

    try:
        built = datasets.load_from_disk(str(folder))
    except FileNotFoundError as exc:
        raise DataError(f"{EGOTEXTVQA_DATASET_VAR}={folder}: not a saved dataset ({exc}); "
                        "make one with `egotask data build-qa`") from None
    parts = built.items() if isinstance(built, datasets.DatasetDict) else [("test", built)]
    docs = []
    keys = UniqueKeys()
    for hf_split, part in parts:
        for i, row in enumerate(part):
            if str(row.get("subset", "")).lower() != bench.setting:
                continue
            where = f"{folder}[{hf_split}][{i}]"
            doc = egotextvqa_doc(row, bench, where)
            if not row.get("video_path"):
                raise DataError(f"{where}: missing field(s) video_path")
            doc["video_path"] = text_field(row, "video_path", where)
            keys.add(doc, where)
            docs.append(doc)
    if not docs:
        raise DataError(f"{EGOTEXTVQA_DATASET_VAR}={folder}: no rows for the {bench.setting} subset")
    return docs


def _load_hub_docs(bench: Benchmark, convert, subset: str | None = None) -> list[dict[str, Any]]:
    """Docs from the benchmark's Hub dataset, read through its published features (see "the Hub" below)."""
    split = HUB_SPLITS[bench.hub_repo]
    ds = hub_annotations(bench, split)
    decode_subset = hub_subset_decoder(ds.features, bench.hub_repo) if subset else None
    number_questions = bench.setting == "egotempo" and "question_id" not in ds.features
    per_clip: dict[str, int] = {}
    docs = []
    for i, raw in enumerate(ds):
        where = f"{bench.hub_repo}[{split}][{i}]"
        if decode_subset is not None and decode_subset(raw, where) != subset:
            continue
        row = hub_row(raw, ds.features)
        if number_questions and row.get("clip_id"):
            row["question_id"] = _egotempo_question_id(row["clip_id"], per_clip)
        docs.append(convert(row, where))
    if not docs:
        raise DataError(f"{bench.hub_repo}[{split}]: no rows for the {bench.setting} subset")
    return docs


# --------------------------------------------------------------------------- the Hub
# The datasets as published. petkopetkov/EgoTextVQA (written by the predecessor's create_qa_dataset.py):
# video_id str; subset ClassLabel(["EgoTextVQA-Indoor", "EgoTextVQA-Outdoor"]), so rows hold 0/1;
# question_id, question_type str; timestamp float32; question, answer, video_url str; one `train` split;
# no video column. lmms-lab-eval/egotempo: split `test`, with the fields lmms-eval's own `egotempo` task
# reads (`video` or `clip_id`, question, answer, question_type). ShengZhou97/EgoTextVQA holds the
# videos as a video-folder dataset whose label is the folder name; its files are listed, not assumed.

HUB_SPLITS = {"petkopetkov/EgoTextVQA": "train", "lmms-lab-eval/egotempo": "test"}
# The ClassLabel names of `subset`, which are also the video repo's folder names.
HUB_SUBSETS = {"EgoTextVQA-Indoor": "indoor", "EgoTextVQA-Outdoor": "outdoor"}


def hub_annotations(bench: Benchmark, split: str) -> Any:
    """One split of the annotation dataset, with any video column left undecoded (nothing is fetched
    or decoded per row; the videos are resolved one file at a time by :func:`resolve_video`)."""
    import datasets

    try:
        ds = datasets.load_dataset(bench.hub_repo, split=split)
    except Exception as exc:  # no network, no token, repo gone: say which variable avoids the Hub
        raise DataError(
            f"could not load {bench.hub_repo} (split {split}) from the Hugging Face Hub ({exc}); "
            f"set {bench.annotations_var} to use local annotation files instead") from exc
    for name, feature in ds.features.items():
        if isinstance(feature, datasets.Video) and feature.decode:
            ds = ds.cast_column(name, datasets.Video(decode=False))
    return ds


def hub_subset_decoder(features: Any, repo: str):
    """``decode(row, where) -> "indoor" | "outdoor"`` for the dataset's ``subset`` column.

    A ClassLabel is read through its names; a string column may hold a name or the setting itself.
    The result is checked against the video id (an Ego4D UUID is indoor, a number outdoor), and a
    row where the two disagree is an error naming it.
    """
    from datasets import ClassLabel

    feature = features.get("subset")
    if feature is None:
        raise DataError(f"{repo}: no `subset` column (columns: {', '.join(features)}); cannot tell "
                        "indoor from outdoor")
    names = feature.names if isinstance(feature, ClassLabel) else None

    def decode(row: dict[str, Any], where: str) -> str:
        raw = row.get("subset")
        if names is not None:
            if not isinstance(raw, int) or not 0 <= raw < len(names):
                raise DataError(f"{where}: field subset is {raw!r}, not a label of the ClassLabel {names}")
            name = names[raw]
        else:
            name = str(raw)
        setting = HUB_SUBSETS.get(name) or (name.lower() if name.lower() in ("indoor", "outdoor") else None)
        if setting is None:
            raise DataError(f"{where}: field subset is {name!r}, neither of {', '.join(HUB_SUBSETS)}")
        video_id = str(row.get("video_id") or "")
        try:
            by_id = setting_of_video_id(video_id)
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
        if by_id != setting:
            raise DataError(f"{where}: field subset is {name!r} ({setting}), but video_id {video_id!r} is an "
                            f"{by_id} id (an Ego4D UUID is indoor, a number outdoor)")
        return setting

    return decode


def hub_row(row: dict[str, Any], features: Any) -> dict[str, Any]:
    """A Hub row as the local readers' rows: float32 values back to the decimals that were stored
    (10.3, not 10.300000190734863), and an undecoded video reference to its clip id."""
    import numpy as np
    from datasets import Value, Video

    out = dict(row)
    for name, feature in features.items():
        value = out.get(name)
        if isinstance(feature, Value) and feature.dtype == "float32" and isinstance(value, float):
            out[name] = float(str(np.float32(value)))  # the shortest decimal that is this float32
        elif isinstance(feature, Video) and isinstance(value, dict):
            out[name] = value.get("path") or ""
    video = out.get("video")
    if not out.get("clip_id") and isinstance(video, str) and video:
        out["clip_id"] = clip_id_of(video)
    return out


def _egotempo_question_id(clip_id: str, per_clip: dict[str, int]) -> str:
    """For a Hub copy without question ids: ``<clip_id>_<n>``, n counting the clip's questions in
    file order, which is how EgoTempo's release numbers 498 of its 500 questions."""
    n = per_clip.get(clip_id, 0)
    per_clip[clip_id] = n + 1
    return f"{clip_id}_{n}"


def hub_repo_files(repo: str) -> tuple[str, ...]:
    """Every file of a Hub dataset repo, listed once per process and kept on disk
    (``$EGOTASK_CACHE_DIR/hub_files/``), so a machine that listed it once works offline."""
    return _hub_repo_files_cached(repo, str(get_settings().cache_dir))


@lru_cache(maxsize=8)
def _hub_repo_files_cached(repo: str, cache_dir: str) -> tuple[str, ...]:
    from huggingface_hub import HfApi

    stored = Path(cache_dir) / "hub_files" / (repo.replace("/", "--") + ".json")
    try:
        files = tuple(HfApi().list_repo_files(repo, repo_type="dataset"))
    except Exception as exc:
        if stored.is_file():
            return tuple(json.loads(stored.read_text(encoding="utf-8"))["files"])
        raise DataError(f"could not list the files of {repo} on the Hugging Face Hub ({exc}), and no earlier "
                        f"listing is kept in {stored.parent}") from exc
    stored.parent.mkdir(parents=True, exist_ok=True)
    write_text(stored, json.dumps({"repo": repo, "files": list(files)}))
    return files


def hub_video_file(bench: Benchmark, video_id: str) -> str:
    """The path inside the video repo of ``video_id``'s file, found in the repo's listing: the video
    file named ``<video_id>.<ext>``, preferring one inside the setting's folder (the label,
    ``EgoTextVQA-Indoor``/``EgoTextVQA-Outdoor``). None, or several equally good, is an error."""
    if bench.video_hub_repo is None:
        raise DataError(f"{bench.name} has no Hub video repo; set {bench.video_dir_var}")
    matches = [f for f in hub_repo_files(bench.video_hub_repo)
               if f.lower().endswith(VIDEO_SUFFIXES) and Path(f).stem == str(video_id)]
    in_folder = [f for f in matches if bench.video_subdir in Path(f).parts[:-1]]
    chosen = in_folder or matches
    if not chosen:
        raise DataError(f"{bench.video_hub_repo}: no video file for video id {video_id!r} ({bench.setting}); "
                        f"set {bench.video_dir_var} to a local folder")
    if len(chosen) > 1:
        raise DataError(f"{bench.video_hub_repo}: several files for video id {video_id!r}: {', '.join(chosen)}; "
                        f"set {bench.video_dir_var} to a local folder")
    return chosen[0]


# --------------------------------------------------------------------------- videos

def local_video_path(doc: dict[str, Any]) -> Path | None:
    """The video's path under the local video folder, or None when its variable is unset.

    A doc from a build-qa dataset carries ``video_path``: an absolute one is used when the folder
    variable is unset (the variable wins, so videos can move); a relative one is the Hub layout.
    """
    bench = get_benchmark(doc["benchmark"])
    root = _env_path(bench.video_dir_var)
    if root is None:
        given = doc.get("video_path")
        return Path(given) if given and Path(given).is_absolute() else None
    return root / bench.video_relpath(doc["video_id"])


def resolve_video(doc: dict[str, Any]) -> Path:
    """The local file for a doc's video, downloading it from the Hub when no folder is set."""
    bench = get_benchmark(doc["benchmark"])
    path = local_video_path(doc)
    if path is not None:
        if not path.is_file():
            origin = (f"folder from {bench.video_dir_var}" if _env_path(bench.video_dir_var)
                      else f"video_path from {EGOTEXTVQA_DATASET_VAR}")
            raise DataError(f"video not found: {path} (question {doc['video_id']}/{doc['question_id']}; "
                            f"{origin})")
        return path
    if bench.video_hub_repo is None:
        raise DataError(f"set {bench.video_dir_var} to the folder holding <clip_id>.mp4 files "
                        f"(make them with `egotask data trim-egotempo`)")
    from huggingface_hub import hf_hub_download

    filename = hub_video_file(bench, doc["video_id"])  # from the repo's listing, not an assumed layout
    try:
        return Path(hf_hub_download(bench.video_hub_repo, filename, repo_type="dataset"))
    except Exception as exc:
        raise DataError(f"could not download {filename} from "
                        f"{bench.video_hub_repo} ({exc}); set {bench.video_dir_var} to a local folder") from exc


def missing_videos_hint(docs: list[dict[str, Any]], missing: list[Path]) -> str:
    """Which variable set the folder of the missing videos, and, when the files sit one folder deeper
    than it says (``.../EgoTextVQA-Indoor/EgoTextVQA-Indoor/x.mp4``), the value that finds them."""
    gone = set(missing)
    lines = []
    for name in dict.fromkeys(d["benchmark"] for d in docs):
        bench = get_benchmark(name)
        root = _env_path(bench.video_dir_var)
        doc = next((d for d in docs if d["benchmark"] == name and local_video_path(d) in gone), None)
        if root is None or doc is None:
            continue
        rel = bench.video_relpath(doc["video_id"])
        lines.append(f"{bench.video_dir_var}={root} (the {bench.setting} videos are looked for as "
                     f"{bench.video_dir_var}/{rel})")
        deeper = sorted(child for child in (root.iterdir() if root.is_dir() else ()) if (child / rel).is_file())
        if deeper:
            lines.append(f"  the files are one folder deeper: set {bench.video_dir_var}={deeper[0]}")
        elif not root.is_dir():
            lines.append(f"  {root} is not a folder")
    return "\n".join(lines)


def missing_videos(docs: list[dict[str, Any]]) -> list[Path]:
    """Local video files the docs need but that do not exist (empty when videos come from the Hub)."""
    seen: dict[Path, bool] = {}
    for doc in docs:
        path = local_video_path(doc)
        if path is not None and path not in seen:
            seen[path] = path.is_file()
    return [p for p, ok in seen.items() if not ok]
