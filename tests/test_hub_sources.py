"""The Hub path, tested at the Hub boundary: datasets built here with exactly the published features
(from the real annotations) are served in place of ``datasets.load_dataset``, and a file listing in
place of ``HfApi.list_repo_files``. The loader itself runs unchanged."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import datasets
import huggingface_hub
import pytest

from egotask import settings
from egotask.data import sources
from egotask.data.sources import DataError, load_docs, resolve_video

SUBSET_NAMES = ["EgoTextVQA-Indoor", "EgoTextVQA-Outdoor"]
# petkopetkov/EgoTextVQA as the predecessor's data/create_qa_dataset.py wrote it (no video column).
PUBLISHED_FEATURES = datasets.Features({
    "video_id": datasets.Value("string"),
    "subset": datasets.ClassLabel(names=SUBSET_NAMES),
    "question_id": datasets.Value("string"),
    "question_type": datasets.Value("string"),
    "timestamp": datasets.Value("float32"),
    "question": datasets.Value("string"),
    "answer": datasets.Value("string"),
    "video_url": datasets.Value("string"),
})


def published_rows(folder: Path) -> list[dict]:
    rows = []
    for label, name in enumerate(SUBSET_NAMES):
        setting = name.split("-")[1].lower()
        with open(folder / f"egotextvqa_{setting}_annotation.jsonl", encoding="utf-8") as fh:
            for line in fh:
                a = json.loads(line)
                rows.append({"video_id": str(a["video_id"]), "subset": label, "question_id": str(a["question_id"]),
                             "question_type": a["question_type"], "timestamp": a["timestamp"],
                             "question": a["question"], "answer": a["correct_answer"],
                             "video_url": a.get("video_url", "")})
    random.Random(0).shuffle(rows)  # the loader must not rely on the subsets coming in blocks
    return rows


class FakeHub:
    """What the Hub would answer: one dataset per repo, one file listing per repo. Records each call."""

    def __init__(self, monkeypatch, datasets_by_repo: dict, files_by_repo: dict | None = None):
        self.loads: list[tuple] = []
        self.listings: list[str] = []
        self.downloads: list[tuple] = []
        self.datasets, self.files = datasets_by_repo, files_by_repo or {}
        monkeypatch.setattr(datasets, "load_dataset", self.load_dataset)
        monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files",
                            lambda _api, repo_id, **kwargs: self.list_repo_files(repo_id, **kwargs))
        monkeypatch.setattr(huggingface_hub, "hf_hub_download", self.hf_hub_download)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", self.snapshot_download)
        sources._load_docs_cached.cache_clear()
        sources._hub_repo_files_cached.cache_clear()

    def load_dataset(self, path, name=None, split=None, **kwargs):
        self.loads.append((path, split))
        splits = self.datasets[path]
        return splits[split] if split else datasets.DatasetDict(splits)

    def list_repo_files(self, repo_id, *, repo_type=None, **kwargs):
        self.listings.append(repo_id)
        if repo_id not in self.files:
            raise OSError(f"404 Client Error: repository {repo_id} not found")
        assert repo_type == "dataset"
        return list(self.files[repo_id])

    def hf_hub_download(self, repo_id, filename, *, repo_type=None, **kwargs):
        self.downloads.append((repo_id, filename))
        return f"/hub-cache/{repo_id}/{filename}"

    def snapshot_download(self, *args, **kwargs):
        self.downloads.append(("snapshot", args))
        raise AssertionError("the loader must not download a snapshot")


@pytest.fixture
def published(shared_data, monkeypatch):
    ds = datasets.Dataset.from_list(published_rows(shared_data / "egotextvqa"), features=PUBLISHED_FEATURES)
    yield lambda files=None: FakeHub(monkeypatch, {"petkopetkov/EgoTextVQA": {"train": ds}}, files)
    sources._load_docs_cached.cache_clear()
    sources._hub_repo_files_cached.cache_clear()


def test_published_features_give_every_indoor_and_outdoor_question_without_downloading_videos(
        published, shared_data, monkeypatch):
    hub = published()
    indoor, outdoor = load_docs("egotextvqa_indoor"), load_docs("egotextvqa_outdoor")
    assert (len(indoor), len(outdoor)) == (2216, 4848)
    assert {d["setting"] for d in indoor} == {"indoor"} and {d["setting"] for d in outdoor} == {"outdoor"}
    assert hub.loads == [("petkopetkov/EgoTextVQA", "train")] * 2
    assert hub.downloads == [] and hub.listings == []  # annotations only: no video fetched or listed

    # The same docs as the local annotation files, float32 timestamps back to their decimals.
    monkeypatch.setenv("EGOTEXTVQA_ANNOTATIONS", str(shared_data / "egotextvqa"))
    settings.reset()  # egotask reads its variables once per process
    for setting, hub_docs in (("indoor", indoor), ("outdoor", outdoor)):
        local = {(d["video_id"], d["question_id"]): d for d in load_docs(f"egotextvqa_{setting}")}
        assert len(local) == len(hub_docs)
        for doc in hub_docs:
            assert doc == local[(doc["video_id"], doc["question_id"])]
    assert any(d["timestamp"] == 10.3 for d in indoor)  # stored as float32 10.300000190734863
    assert all(d["visible_end"] == d["timestamp"] for d in indoor + outdoor)


def test_a_subset_label_that_contradicts_the_video_id_is_an_error_naming_the_row(monkeypatch):
    rows = [{"video_id": "0479bea8-d221-4c6a-8c91-60108e43fe56", "subset": 0, "question_id": "1",
             "question_type": "kitchen", "timestamp": 1.5, "question": "q?", "answer": "a", "video_url": ""},
            {"video_id": "42", "subset": 0, "question_id": "1", "question_type": "location", "timestamp": 2.0,
             "question": "q?", "answer": "a", "video_url": ""}]
    FakeHub(monkeypatch, {"petkopetkov/EgoTextVQA": {
        "train": datasets.Dataset.from_list(rows, features=PUBLISHED_FEATURES)}})
    with pytest.raises(DataError, match=r"petkopetkov/EgoTextVQA\[train\]\[1\]: field subset is "
                                        r"'EgoTextVQA-Indoor' \(indoor\), but video_id '42' is an outdoor id"):
        load_docs("egotextvqa_indoor")


def test_videos_are_found_in_the_repo_listing_whatever_its_layout(published):
    listing = ["README.md", ".gitattributes", "data/EgoTextVQA-Outdoor/11.mp4", "data/EgoTextVQA-Outdoor/3.mp4",
               "data/EgoTextVQA-Indoor/0479bea8-d221-4c6a-8c91-60108e43fe56.mp4", "data/EgoTextVQA-Indoor/11.mp4"]
    hub = published({"ShengZhou97/EgoTextVQA": listing})
    outdoor = {d["video_id"]: d for d in load_docs("egotextvqa_outdoor")}
    indoor = {d["video_id"]: d for d in load_docs("egotextvqa_indoor")}
    assert resolve_video(outdoor["11"]) == Path("/hub-cache/ShengZhou97/EgoTextVQA/data/EgoTextVQA-Outdoor/11.mp4")
    assert resolve_video(outdoor["3"]).name == "3.mp4"
    assert resolve_video(indoor["0479bea8-d221-4c6a-8c91-60108e43fe56"]).parent.name == "EgoTextVQA-Indoor"
    assert hub.listings == ["ShengZhou97/EgoTextVQA"]  # listed once, however many videos resolve
    assert len(hub.downloads) == 3
    with pytest.raises(DataError, match=r"ShengZhou97/EgoTextVQA: no video file for video id '26'"):
        resolve_video(outdoor["26"])
    assert len(hub.downloads) == 3


def test_a_listing_kept_on_disk_serves_a_later_offline_process(published, monkeypatch):
    published({"ShengZhou97/EgoTextVQA": ["EgoTextVQA-Outdoor/11.mp4"]})
    doc = next(d for d in load_docs("egotextvqa_outdoor") if d["video_id"] == "11")
    assert resolve_video(doc).name == "11.mp4"
    hub = published({})  # the Hub now refuses every listing
    assert resolve_video(doc).name == "11.mp4"
    assert hub.listings == ["ShengZhou97/EgoTextVQA"]


def test_egotempo_comes_from_the_test_split_with_the_fields_lmms_evals_task_reads(shared_data, monkeypatch):
    release = json.loads((shared_data / "egotempo" / "egotempo_openQA.json").read_text())["annotations"]
    # lmms-lab-eval/egotempo as lmms-eval's `egotempo` task reads it: `video` (and no question ids here).
    rows = [{"video": f"{a['clip_id']}.mp4", "question": a["question"], "answer": a["answer"],
             "question_type": a["question_type"]} for a in release]
    hub = FakeHub(monkeypatch, {"lmms-lab-eval/egotempo": {"test": datasets.Dataset.from_list(rows)}})
    docs = load_docs("egotempo_openqa")
    assert hub.loads == [("lmms-lab-eval/egotempo", "test")] and hub.downloads == []
    assert len(docs) == 500 and len({d["video_id"] for d in docs}) == 367
    assert [d["video_id"] for d in docs] == [a["clip_id"] for a in release]  # "x_120.0_180.0" keeps its ".0"
    assert Counter(d["question_type"] for d in docs) == Counter(a["question_type"] for a in release)
    same_id = sum(d["question_id"] == a["question_id"] for d, a in zip(docs, release, strict=True))
    assert same_id == 498  # the release's own numbering, but for its two unnumbered ids
    assert all(d["visible_end"] is None for d in docs)


def test_hub_unreachable_names_the_variable_that_avoids_it(monkeypatch):
    FakeHub(monkeypatch, {})
    with pytest.raises(DataError, match="could not load petkopetkov/EgoTextVQA .*set EGOTEXTVQA_ANNOTATIONS"):
        load_docs("egotextvqa_outdoor")


def test_a_video_column_is_read_as_its_path_never_decoded(monkeypatch):
    """Decoding would need torchcodec and the file; the loader casts the column to Video(decode=False)."""
    features = datasets.Features({"video": datasets.Video(), "question_id": datasets.Value("string"),
                                  "question": datasets.Value("string"), "answer": datasets.Value("string"),
                                  "question_type": datasets.Value("string")})
    rows = [{"video": "videos/0d270946-95c5-4e71-ae49-b9e802548147_120.0_180.0.mp4", "question_id": "q1",
             "question": "which object?", "answer": "a spoon", "question_type": "locating object"}]
    FakeHub(monkeypatch, {"lmms-lab-eval/egotempo": {"test": datasets.Dataset.from_list(rows, features=features)}})
    (doc,) = load_docs("egotempo_openqa")
    assert (doc["video_id"], doc["question_id"]) == ("0d270946-95c5-4e71-ae49-b9e802548147_120.0_180.0", "q1")
