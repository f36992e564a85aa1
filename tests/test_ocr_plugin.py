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
