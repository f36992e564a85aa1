"""The OCR baseline plugin: RapidOCR reads rendered scene text offline, and the answer is the text
most relevant to the question."""

from __future__ import annotations

from egotask_ocr.answer import NO_TEXT, Reading, choose_answer

from egotask.fixtures import text_frame


def test_text_sharing_the_questions_words_wins():
    readings = [Reading("EXIT 9", 0.99, 3.0), Reading("PARKING P2", 0.9, 1.0)]
    assert choose_answer("where is the parking?", readings) == "PARKING P2"


def test_without_shared_words_the_most_recent_text_wins():
    readings = [Reading("BOWL", 0.99, 0.5), Reading("SPOON", 0.95, 3.0), Reading("bowl", 0.9, 1.0)]
    assert choose_answer("what word appears after the first one?", readings) == "SPOON"


def test_no_text_read_says_so_instead_of_an_empty_answer():
    assert choose_answer("what does the sign say?", []) == NO_TEXT
    assert choose_answer("what does the sign say?", [Reading(" .. ", 0.9, 1.0)]) == NO_TEXT


def test_rapidocr_reads_rendered_scene_text_offline():
    from egotask_ocr.model import OCRBaseline

    model = OCRBaseline(min_side=320)
    assert [text for text, _ in model.read(text_frame("EXIT 9", (160, 96)))] == ["EXIT 9"]
    assert OCRBaseline(min_side=320, min_confidence=1.01).read(text_frame("EXIT 9", (160, 96))) == []


def _requirements(lines) -> dict[str, str]:
    from packaging.requirements import Requirement

    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            out[req.name.lower()] = str(req.specifier)
    return out


def test_the_headless_requirements_are_rapidocrs_own_with_the_headless_opencv():
    from importlib.metadata import requires

    from conftest import REPO

    declared = _requirements(r for r in requires("rapidocr-onnxruntime") if "extra ==" not in r)
    listed = _requirements((REPO / "plugins/egotask-ocr/requirements-headless.txt").read_text().splitlines())
    assert listed == {("opencv-python-headless" if name == "opencv-python" else name): spec
                      for name, spec in declared.items()}


def test_one_opencv_is_installed_the_headless_build_and_both_its_users_import_it():
    from importlib.metadata import distributions

    opencvs = sorted({d.metadata["Name"].lower() for d in distributions()} & {
        "opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"})
    assert opencvs == ["opencv-python-headless"], (
        f"installed: {opencvs}; `make install` installs the OCR plugin so that only the headless build is there")
    import cv2
    import rapidocr_onnxruntime  # noqa: F401 - RapidOCR imports cv2 at module level

    assert "GUI: NONE" in " ".join(cv2.getBuildInformation().split())  # the cv2/ folder is the headless one
