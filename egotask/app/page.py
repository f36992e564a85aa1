"""The Streamlit page of `egotask app`. Layout only: loading, selecting and comparing live in
:mod:`egotask.app.runs`, :mod:`egotask.app.selection` and :mod:`egotask.app.media`.

Every section runs inside :func:`guard`, so an unexpected error shows as a message in that section
and the rest of the page still works.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from egotask.app import media
from egotask.app.labelling import DEFAULT_SEED, DEFAULT_SIZE, done_labels, item_key, run_labels_path, sample
from egotask.app.runs import Loaded, load_paths, unique_names
from egotask.app.selection import (
    VERDICTS,
    VideoGroup,
    compare_runs,
    distinct,
    filter_records,
    format_time,
    generation_text,
    paired_rows,
    question_label,
    question_rows,
    reason_of,
    short_qid,
    side_by_side,
    summary_rows,
    task_of,
    task_rows,
    verdict_label,
    videos_of,
    webvtt,
)
from egotask.atomic import write_bytes
from egotask.data.sources import DataError
from egotask.frames import VideoError
from egotask.labels import HumanLabel, LabelError, append_label, now
from egotask.records import SampleRecord
from egotask.reports.paired import compare_records
from egotask.reports.render import pvalue, signed, signed_ci
from egotask.reports.tables import describe_generation
from egotask.runs import Run, runs_stamp
from egotask.scoring import summarize

TITLE = "egotask · error analysis"


@contextlib.contextmanager
def guard(section: str) -> Iterator[None]:
    """Show an unexpected error in one section instead of ending the whole page."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the app must keep running; the message names the section
        st.error(f"{section}: {type(exc).__name__}: {exc}")
        with st.expander("details"):
            st.exception(exc)


def md(value: Any) -> str:
    """Text shown literally inside markdown (names may hold *, `, # or HTML, and Streamlit reads
    ``:name[...]`` as a directive and ``:name:`` as an emoji). Record text itself goes through
    :func:`literal` instead."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", str(value if value not in (None, "") else "–"))


def literal(lines: list[tuple[str, Any]]) -> None:
    """Labelled record text (questions, answers, reasons) as plain text: never parsed as markdown."""
    width = max(len(label) for label, _ in lines)
    st.text("\n".join(f"{label + ':':<{width + 1}} {'–' if value in (None, '') else value}"
                       for label, value in lines))


def attempt(section: str, fn, *args: Any) -> Any:
    """``fn(*args)``, or None after showing the error (see :func:`guard`)."""
    with guard(section):
        return fn(*args)
    return None


def table(rows: list[dict[str, Any]], **kwargs: Any) -> None:
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", **kwargs)


# --------------------------------------------------------------------------- loading

@st.cache_data(show_spinner="Reading runs…", max_entries=64)
def _load_cached(path: str, _stamp_value: tuple) -> Loaded:
    return load_paths([path])


def _load(path: str) -> Loaded:
    return _load_cached(path, runs_stamp(Path(path)))


def _upload_path(upload: Any) -> Path:
    """An uploaded file, written once under this session's temporary folder (the reader wants a path)."""
    if "upload_dir" not in st.session_state:
        st.session_state.upload_dir = tempfile.TemporaryDirectory(prefix="egotask-app-")
    target = Path(st.session_state.upload_dir.name) / upload.file_id / Path(upload.name).name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(target, upload.getvalue())  # whole or not at all: a cut file would be reused
    return target


def _add_path() -> None:
    value = st.session_state.get("add_path", "").strip()
    if value and value not in st.session_state.extra_paths:
        st.session_state.extra_paths.append(value)
    st.session_state.add_path = ""


def sidebar_sources(paths: list[str]) -> Loaded:
    """The sources panel: paths from the command line, added paths and uploads, all loaded."""
    st.session_state.setdefault("extra_paths", [])
    sb = st.sidebar
    sb.title(TITLE)
    uploads = sb.file_uploader("Upload samples or record files (.jsonl)", type=["jsonl"],
                               accept_multiple_files=True, key="uploads",
                               help="lmms-eval samples files of egotask tasks, or JSONL files of sample "
                                    "records (what `egotask import-legacy` writes).")
    sb.text_input("Add a file or folder", key="add_path", on_change=_add_path,
                  placeholder="path, then Enter",
                  help="An lmms-eval output folder, a results or samples file, or a record JSONL file.")
    sources = [*paths, *st.session_state.extra_paths]
    if sources:
        sb.caption("Loaded from: " + ", ".join(f"`{p}`" for p in sources))
    loaded = Loaded()
    for source in sources:
        loaded.extend(_load(source))
    for upload in uploads or []:
        part = _load(str(_upload_path(upload)))
        part.runs = [dataclasses.replace(r, label=f"uploaded: {r.label}") for r in part.runs]
        loaded.extend(part)
    loaded.runs = unique_names(loaded.runs)
    return loaded


# --------------------------------------------------------------------------- filters

def sidebar_filters(run: Run) -> list[SampleRecord]:
    sb = st.sidebar
    sb.header("Filters")
    tasks = sb.multiselect("Task", sorted({task_of(r) for r in run.records}), key="f_tasks", placeholder="all tasks")
    types = sb.multiselect("Question type", distinct(run.records, "question_type"), key="f_types",
                           placeholder="all types")
    verdicts = sb.multiselect("Verdict", list(VERDICTS), key="f_verdicts", placeholder="all verdicts",
                              help="failed to judge: the judge gave no verdict; no answer: the model gave "
                                   "none. Neither counts as wrong unless the run chose so. pending: judging was "
                                   "deferred (--judge-mode defer) and not done yet.")
    score = sb.slider("Score", 0, 5, (0, 5), key="f_score",
                      help="The judge's 0-5 score. Items that failed to be judged have none; the verdict "
                           "filter selects them.")
    text = sb.text_input("Search questions and answers", key="f_text",
                         help="Keeps questions whose question, reference or prediction contain every word.")
    return filter_records(run.records, tasks=tasks or None, types=types or None, verdicts=verdicts or None,
                          score_range=None if score == (0, 5) else score, text=text)


# --------------------------------------------------------------------------- tabs

def summary_tab(selection: list[SampleRecord], run: Run) -> None:
    # The run's own choice of counting failures as wrong, never the app's environment.
    summary = summarize(selection, run.count_failed_as_wrong)
    if summary["n_pending"]:
        folders = " ".join(sorted({str(p.parent) for p in run.files}))
        st.warning(f"{summary['n_pending']} verdict(s) are pending: the run was made with --judge-mode defer "
                   f"and is not judged yet, so it has no accuracy or score. Judge it with `egotask judge "
                   f"{md(folders)} --batch` (or without --batch).")
    no_answer = summary["n_generation_failed"]
    cols = st.columns(6 if no_answer else 5)
    cols[0].metric("questions", summary["n"])
    cols[1].metric("judged", summary["n_judged"])
    cols[2].metric("failed to judge", summary["n_failed"])
    if no_answer:
        cols[-3].metric("no answer", no_answer)
    cols[-2].metric("accuracy", "–" if summary["accuracy"] is None else f"{100 * summary['accuracy']:.1f} %")
    cols[-1].metric("score (0-5)", "–" if summary["score"] is None else f"{summary['score']:.2f}")
    st.caption(f"judge: {summary['judge'] or '?'} ({summary['judge_model'] or '?'}), prompt "
               f"{summary['prompt_version'] or '?'}. "
               + ("Items that failed to be judged (or got no answer) count as wrong: the run chose so when it "
                  "was scored (EGOTASK_COUNT_FAILED_AS_WRONG)."
                  if summary["failed_counted_as_wrong"] else
                  "Items that failed to be judged (or got no answer) are left out of accuracy and score."))
    st.caption(f"Model side: {md(describe_generation(summary['generation']))}.")
    st.subheader("By question type")
    table(summary_rows(summary))
    if len({task_of(r) for r in selection}) > 1:
        st.subheader("By task")
        table(task_rows(selection, run.count_failed_as_wrong))
    if summary["failed"]:
        with st.expander(f"{len(summary['failed'])} item(s) failed to be judged"):
            st.text("\n".join(summary["failed"]))
    if summary["generation_failed"]:
        with st.expander(f"{len(summary['generation_failed'])} item(s) without an answer from the model"):
            st.text("\n".join(summary["generation_failed"]))


def questions_tab(selection: list[SampleRecord]) -> None:
    rows = question_rows(selection)
    table(rows)
    st.download_button("Download as CSV", pd.DataFrame(rows).to_csv(index=False).encode(),
                       file_name="egotask_selection.csv", mime="text/csv", key="download_csv")


@st.cache_data(show_spinner="Sampling frames…", max_entries=32)
def _frames(path: str, mtime: int, visible: tuple, max_frames: int, fps: float | None):
    sampled = media.frames_seen(Path(path), list(visible), max_frames, fps)
    return list(sampled.frames), sampled.timestamps


def _video_path(group: VideoGroup) -> Path | None:
    """The video file, or None after explaining why it is missing (offering a download if it can)."""
    record = group.records[0]
    downloaded = st.session_state.setdefault("downloaded", {})
    key = f"{group.benchmark}/{group.video_id}"
    if key in downloaded:
        return downloaded[key]
    location = media.locate_video(record)
    if location.path is not None:
        return location.path
    st.warning(location.problem)
    if location.downloadable and st.button("Download this video from the Hugging Face Hub", key="download_video"):
        try:
            with st.spinner("Downloading…"):
                downloaded[key] = media.download_video(record)
            return downloaded[key]
        except DataError as exc:
            st.error(str(exc))
    return None


def video_tab(selection: list[SampleRecord], run: Run) -> None:
    groups = {g.key: g for g in videos_of(selection)}
    # Plain option strings: the URL carries the choice (?video=...), so it must not depend on the filters.
    choice = st.selectbox(f"Video ({len(groups)} in the selection)", list(groups), key="video",
                          bind="query-params")
    group = groups[choice]
    st.caption(group.counts)
    by_id = {r.question_id: r for r in group.records}
    qid = st.selectbox("Question (the player starts at it; the frames below are the ones the model saw for it)",
                       list(by_id), key="question", format_func=lambda q: question_label(by_id[q]))
    record = by_id[qid]
    left, right = st.columns([3, 2])
    path = None
    with left, guard("Video player"):
        path = _video_path(group)
        if path is not None:
            duration = media.video_duration(path)
            # Whole seconds only (st.video); rounding up puts the question's caption on screen at once.
            st.video(str(path), start_time=math.ceil(record.timestamp or 0),
                     subtitles={"questions": webvtt(group.records, duration).encode()})
            st.caption(f"{path.name} · each question is captioned from its timestamp: ✓ correct, ✗ wrong, "
                       "? not judged, – no answer, then the prediction and the reference")
    with right:
        score = record.verdict.score
        why = "why no answer" if record.generation_error else "judge's reason"
        st.markdown(f"**Q{md(short_qid(record))}** ({md(record.question_type)}, {format_time(record.timestamp)})")
        literal([("question", record.question), ("reference", record.answer), ("prediction", record.prediction),
                 ("verdict", f"{verdict_label(record)}, score {'–' if score is None else score}"),
                 (why, reason_of(record)), ("model side", generation_text(record))])
        if record.reasoning:
            with st.expander("model's reasoning"):
                st.text(record.reasoning)
        with guard("Frames"):
            frames_section(record, path, run)
    st.subheader("Questions on this video")
    table(question_rows(group.records, with_video=False))


def frames_section(record: SampleRecord, path: Path | None, run: Run) -> None:
    max_frames_default, fps = run.frame_settings()
    if record.frames:  # what the adapter recorded wins over the run's --model_args
        max_frames_default = int(record.frames.get("max_frames") or max_frames_default)
        fps = record.frames.get("fps") or fps
    start, end = record.visible
    st.markdown(f"**Frames the model saw for Q{md(short_qid(record))}**")
    shown = ("not recorded" if record.seen is None
             else f"{format_time(record.seen[0])} to {format_time(record.seen[1])}")
    st.caption(f"visible interval: {format_time(start or 0.0)} to "
               f"{'the end' if end is None else format_time(end)}; frames shown to the model: {shown}"
               + (f", fps {fps}" if fps else "") + "; re-sampled with the model adapters' sampler")
    max_frames = st.number_input("max_frames", 1, 256, max_frames_default, key="max_frames",
                                 help="The model's max_frames: by default the run's --model_args value, "
                                      "else the adapters' default.")
    if path is None:
        st.info("No video file, so no frames.")
        return
    try:
        frames, stamps = _frames(str(path), path.stat().st_mtime_ns, (start, end), int(max_frames), fps)
    except VideoError as exc:
        st.error(str(exc))
        return
    st.image(frames, caption=[f"{t:.2f} s" for t in stamps], width=96)


def compare_tab(selection: list[SampleRecord], run: Run, runs: list[Run]) -> None:
    others = [r for r in runs if r is not run]
    if not others:
        st.info("Load a second run (another output folder or file, or an upload) to compare it with this one.")
        return
    names = {r.label: r for r in others}
    other = names[st.selectbox("Compare with", list(names), key="compare_run")]
    st.caption(f"A = **{md(run.label)}**, B = **{md(other.label)}**. The filters select A's questions; B's answers "
               "to the same questions (same setting, video id and question id) are shown beside them.")
    comparison = compare_runs(selection, other.records)
    for note in comparison.duplicates:
        st.warning(note)
    rows = comparison.rows
    # The report's paired comparison, from the same function, over the same pairs.
    paired = compare_records(comparison.common_a, comparison.common_b)
    overall = paired.overall
    cols = st.columns(5)
    cols[0].metric("in both", len(rows))
    cols[1].metric("verdicts differ", len(comparison.disagreements))
    cols[2].metric("A correct, B wrong", overall.a_only)
    cols[3].metric("A wrong, B correct", overall.b_only)
    cols[4].metric("not in B", len(comparison.missing_in_b))
    if not rows:
        st.warning("The two runs have no question in common in this selection.")
        return
    # A tile cuts a long value off ("[+100.0, …"): each CI goes in a caption under its difference, which wraps.
    cols = st.columns(3)
    tiles = [("Δ accuracy A − B (pp)", signed(overall.accuracy_diff, 1, 100), overall.accuracy_diff_ci, (1, 100)),
             ("Δ score A − B", signed(overall.score_diff), overall.score_diff_ci, (2, 1))]
    for col, (label, value, ci, scale) in zip(cols, tiles, strict=False):
        col.metric(label, value)
        col.caption(f"95% CI {signed_ci(ci, *scale)}")
    cols[2].metric("McNemar p", pvalue(overall.mcnemar_p))
    st.caption(f"Over the {overall.n} questions both runs judged ({overall.n_left_out} left out: a failure or no "
               f"answer in either run), from {overall.n_clusters} videos. CIs: paired cluster bootstrap over "
               "videos (2000 resamples, seed 0), as in `egotask report`; McNemar: exact, on the questions only "
               "one run got right. † the CI excludes 0.")
    st.subheader("On the same questions")
    if run.count_failed_as_wrong != other.count_failed_as_wrong:
        counted = run.label if run.count_failed_as_wrong else other.label
        st.warning(f"The runs chose differently: failures count as wrong only for {md(counted)}, so its "
                   "accuracy and score are not on the same footing.")
    table(paired_rows(paired))
    table(side_by_side(comparison.common_a, comparison.common_b, run.count_failed_as_wrong,
                       other.count_failed_as_wrong))
    only = st.checkbox("Only questions where the verdicts differ", value=True, key="only_disagree")
    shown = comparison.disagreements if only else rows
    if shown:
        table(shown)
    else:
        st.success(f"The two runs' verdicts agree on all {len(rows)} questions.")


# --------------------------------------------------------------------------- labelling

LABEL_KEYS = ("Keys: **Y** the answer is right, **N** it is wrong, then **0**-**5** its score (0: unrelated, "
              "5: a full match), which saves the label and shows the next item; **B** goes back to the item "
              "before, to label it again (the later label wins), and **F** returns to the first unlabelled item.")


def _mark(key: tuple[str, str, str], pred: str) -> None:
    st.session_state.label_pred = (key, pred)
    st.session_state.label_note = None


def _score(record: SampleRecord, score: int, path: Path, labeller: str, run_name: str, seed: int) -> None:
    """Save the label once the person has said right or wrong; the file is appended at once."""
    key = item_key(record)
    marked = st.session_state.get("label_pred")
    if not marked or marked[0] != key:
        st.session_state.label_note = "Press Y (right) or N (wrong) first, then the score."
        return
    append_label(path, HumanLabel(
        task=record.task, video_id=record.video_id, question_id=record.question_id, pred=marked[1], score=score,
        labeller=labeller, setting=record.setting, question_type=record.question_type,
        prediction=record.prediction, labelled_at=now(), extra={"run": run_name, "sample_seed": seed}))
    st.session_state.label_pred = None
    st.session_state.label_back = None
    st.session_state.label_note = None


def _back(keys: list[tuple[str, str, str]]) -> None:
    """Show the labelled item before the current one (in sample order) again."""
    if keys:
        st.session_state.label_back = keys[-1]
        st.session_state.label_pred = None


def _forward() -> None:
    st.session_state.label_back = None
    st.session_state.label_pred = None


def _label_settings() -> tuple[str, int, int]:
    """The labeller's name, the sample size and the seed (all kept in the URL)."""
    cols = st.columns([2, 1, 1])
    labeller = (cols[0].text_input("Your name (once; it names your labels file)", key="labeller",
                                   bind="query-params") or "").strip()
    size = int(cols[1].number_input("Sample size", 1, 1_000_000, DEFAULT_SIZE, key="label_size",
                                    bind="query-params",
                                    help="A larger size extends the same sample; labelled items stay labelled."))
    seed = int(cols[2].number_input("Seed", 0, 2**31 - 1, DEFAULT_SEED, key="label_seed", bind="query-params",
                                    help="The same seed and size give the same items (to everyone)."))
    return labeller, size, seed


def _label_buttons(record: Any, mark: str | None, args: tuple, earlier: list[str], back: str | None) -> None:
    """Right/wrong, the six scores, back and forward, each with its keyboard key; the chosen mark is highlighted."""
    key = item_key(record)
    buttons = st.columns(10)
    buttons[0].button("right", key="label_yes", shortcut="Y", on_click=_mark, args=(key, "yes"),
                      type="primary" if mark == "yes" else "secondary")
    buttons[1].button("wrong", key="label_no", shortcut="N", on_click=_mark, args=(key, "no"),
                      type="primary" if mark == "no" else "secondary")
    for score in range(6):
        buttons[2 + score].button(f"score {score}", key=f"label_score_{score}", shortcut=str(score),
                                  on_click=_score, args=(record, score, *args))
    buttons[8].button("back", key="label_back_button", shortcut="B", on_click=_back, args=(earlier,),
                      disabled=not earlier)
    buttons[9].button("to the first unlabelled", key="label_forward", shortcut="F", on_click=_forward,
                      disabled=back is None)


def label_tab(run: Run) -> None:
    st.caption("Label a random sample of this run's answers yourself, stratified by setting and question type: "
               "the judge's verdict is not shown. Each label is written to a file next to the run as you make "
               "it, so closing the browser loses nothing and reopening resumes; a second person, under their "
               "own name, writes a second file. `egotask judge agreement RUN --human LABELS.jsonl...` then "
               "measures each judge against the labels. The sidebar filters do not apply here.")
    labeller, size, seed = _label_settings()
    if not labeller:
        st.info("Type your name, then Enter, to start labelling.")
        return
    items = sample(run.records, size, seed)
    path = run_labels_path(run.files, labeller, run.records[0].model)
    try:
        done = done_labels(path, labeller)
    except LabelError as exc:
        st.error(f"{exc}. Fix or move that line; nothing was written.")
        return
    in_sample = [r for r in items if item_key(r) in done]
    remaining = [r for r in items if item_key(r) not in done]
    st.progress(len(in_sample) / len(items) if items else 1.0,
                text=f"{len(in_sample)} of {len(items)} labelled by {md(labeller)}")
    st.caption(f"Labels file: {md(path)}")
    if run.label.startswith("uploaded: "):
        st.warning("This run was uploaded, so its labels file is in a temporary folder that goes when the app "
                   "stops: load the run by its path (sidebar) to keep the labels next to it.")
    st.markdown(LABEL_KEYS)
    back = st.session_state.get("label_back")
    by_key = {item_key(r): r for r in items}
    record = (by_key.get(back) if back else None) or (remaining[0] if remaining else None)
    if record is None:
        st.success(f"All {len(items)} items of the sample are labelled. Raise the sample size to label more.")
        return
    key = item_key(record)
    position = [item_key(r) for r in items].index(key)
    earlier = [item_key(r) for r in items[:position] if item_key(r) in done]
    args = (path, labeller, run.label, seed)
    marked = st.session_state.get("label_pred")
    mark = marked[1] if marked and marked[0] == key else None
    _label_buttons(record, mark, args, earlier, back)
    note = st.session_state.get("label_note")
    if note:
        st.warning(note)
    status = f"marked {'right' if mark == 'yes' else 'wrong'}: now its score, 0-5" if mark else "not marked yet: Y or N"
    previous = done.get(key)
    if previous is not None:
        status += f" (labelled before: {'right' if previous.pred == 'yes' else 'wrong'}, score {previous.score})"
    st.markdown(f"**Item {position + 1} of {len(items)}** · {md(record.setting)} · {md(record.question_type)} · "
                f"{md(format_time(record.timestamp))} · {md(status)}")
    left, right = st.columns([2, 3])
    with left:
        literal([("question", record.question), ("reference", record.answer), ("prediction", record.prediction)])
    with right, guard("Frames"):
        group = VideoGroup(record.benchmark, record.setting, record.video_id, [record])
        frames_section(record, _video_path(group), run)


# --------------------------------------------------------------------------- the page

def render(paths: list[str]) -> None:
    st.set_page_config(page_title=TITLE, layout="wide")
    loaded = attempt("Loading", sidebar_sources, paths)
    if loaded is None:
        return
    for problem in loaded.problems:
        st.warning(problem)
    if not loaded.runs:
        st.info("No runs loaded yet. Start the app with `egotask app OUTPUT_DIR...` (lmms-eval output run "
                "with --log_samples, or `egotask import-legacy` files), add a path or upload a file in the "
                "sidebar.")
        return
    runs = {r.label: r for r in loaded.runs}
    run = runs[st.sidebar.selectbox("Run", list(runs), key="run", bind="query-params")]
    selection = attempt("Filters", sidebar_filters, run)
    if selection is None:
        return
    st.header(run.label)
    st.caption(f"{len(selection)} of {len(run.records)} questions selected · read from "
               + ", ".join(f"`{p.name}`" for p in run.files))
    if not selection:
        st.warning("No question matches the filters. Widen them in the sidebar.")
        return
    # Only the open tab runs (no frame sampling behind a hidden tab); the URL names it (?view=Video).
    views = {"Summary": lambda: summary_tab(selection, run), "Questions": lambda: questions_tab(selection),
             "Video": lambda: video_tab(selection, run),
             "Compare runs": lambda: compare_tab(selection, run, loaded.runs), "Label": lambda: label_tab(run)}
    for tab, (name, show) in zip(st.tabs(list(views), key="view", bind="query-params", on_change="rerun"),
                                 views.items(), strict=True):
        if tab.open:
            with tab, guard(name):
                show()
