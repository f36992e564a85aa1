"""`egotask app` in a real browser: Debian's headless Chromium, driven through chromium-driver with
Selenium, on recorded outputs over generated clips. The AppTest tests (test_app.py) see Streamlit's
element tree; this one sees what a person sees: the rendered page, its filters, images and tables.

`.ci/run` installs chromium and chromium-driver from Debian's packages; elsewhere the test skips,
saying which is missing, only when no browser can be found."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import urllib.parse
from pathlib import Path

import pytest
from test_app import (
    IN,
    STAMP,
    base_records,
    finetuned_records,
    write_lmms_output,
    write_records,
)

from egotask.fixtures import INDOOR_SAMPLE
from egotask.testing.app_server import app_server

pytestmark = pytest.mark.slow  # the server, the browser and the first frame sampling: about 30-60 s

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver", "chromium-driver")
WAIT = 180  # the Video view imports torch for the adapters' sampler on a shared machine
XSS = "<img src=x onerror=window.__egotask_xss=1>"


def _find(names: tuple[str, ...], extra: tuple[str, ...] = ()) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in extra if Path(p).is_file()), None)


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra has it)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary = _find(BROWSERS)
    driver = _find(DRIVERS, ("/usr/lib/chromium/chromedriver",))
    if binary is None or driver is None:
        pytest.skip(f"no browser to drive: {'chromium' if binary is None else 'chromium-driver'} is not installed "
                    "(apt-get install -y chromium chromium-driver; .ci/run does it)")
    options = Options()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1400",
                "--disable-gpu"):
        options.add_argument(arg)
    session = webdriver.Chrome(options=options, service=Service(driver))
    yield session
    session.quit()


@pytest.fixture
def served(tmp_path, sample_env):
    """`egotask app` serving run A (an lmms-eval folder, one prediction that is HTML) and run B (records)."""
    by_task = base_records()
    by_task[IN][2] = dataclasses.replace(by_task[IN][2], prediction=XSS)  # "cumin", judged wrong
    base = write_lmms_output(tmp_path / "base_output", by_task)
    finetuned = write_records(tmp_path / "finetuned.jsonl", finetuned_records())
    with app_server([base, finetuned], os.environ.copy()) as (url, _):
        yield url


def wait_for(driver, condition, what: str, timeout: float = WAIT):
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def check(d):
        try:
            return condition(d)
        except StaleElementReferenceException:  # Streamlit re-rendered the element: look again
            return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(check)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}; page text:\n{driver.find_element('tag name', 'body').text}"
                             ) from None


def texts(driver, css: str) -> list[str]:
    return [e.text for e in driver.find_elements("css selector", css)]


def metric(driver, label: str) -> str | None:
    for element in driver.find_elements("css selector", '[data-testid="stMetric"]'):
        if element.find_element("css selector", '[data-testid="stMetricLabel"]').text.strip() == label:
            return element.find_element("css selector", '[data-testid="stMetricValue"]').text.strip()
    return None


def open_tab(driver, name: str) -> None:
    tab = wait_for(driver, lambda d: next((t for t in d.find_elements("css selector", '[role="tab"]')
                                           if t.text.strip() == name), None), f"the {name} tab")
    tab.click()
    wait_for(driver, lambda d: any(t.get_attribute("aria-selected") == "true" and t.text.strip() == name
                                   for t in d.find_elements("css selector", '[role="tab"]')), f"{name} open")


def grid_rows(driver) -> list[int]:
    """Data rows of each table on the page (the grids' accessible row count, less the header)."""
    grids = driver.find_elements("css selector", 'table[role="grid"]')
    return [int(g.get_attribute("aria-rowcount")) - 1 for g in grids]


def test_a_browser_loads_a_run_filters_it_opens_a_video_and_compares_two_runs(browser, served):
    from selenium.webdriver.common.keys import Keys

    d = browser
    # Loads a run: its name, and its summary.
    d.get(served)
    wait_for(d, lambda d: f"base-qwen · {STAMP}" in texts(d, "h2"), "the run's header")
    wait_for(d, lambda d: metric(d, "questions") == "6", "the summary metrics")
    assert metric(d, "accuracy") == "60.0 %"

    # A verdict filter: two wrong answers, in the caption, the summary and the Questions table.
    verdict = next(m for m in d.find_elements("css selector", '[data-testid="stMultiSelect"]') if "Verdict" in m.text)
    box = verdict.find_element("css selector", "input")
    box.click()
    box.send_keys("wrong")
    box.send_keys(Keys.ENTER)
    wait_for(d, lambda d: any("2 of 6 questions selected" in t for t in texts(d, '[data-testid="stCaptionContainer"]')),
             "the filtered selection")
    assert metric(d, "questions") == "2"
    open_tab(d, "Questions")
    wait_for(d, lambda d: grid_rows(d) == [2], "two rows in the Questions table")

    # The Video view of one question (a deep link, as the app's URLs are): its frames, captions and text.
    video = f"{INDOOR_SAMPLE[1].video_id} [indoor]"
    d.get(f"{served}/?{urllib.parse.urlencode({'view': 'Video', 'video': video})}")
    images = wait_for(d, lambda d: d.find_elements("css selector", '[data-testid="stImage"] img') or None,
                      "the frames the model saw")
    assert len(images) == 4 and all(img.get_attribute("naturalWidth") not in (None, "0") for img in images)
    stamps = texts(d, '[data-testid="stImageCaption"]')
    assert len(stamps) == 4 and all(s.endswith(" s") for s in stamps)
    assert all(0.0 <= float(s.removesuffix(" s")) < 3.5 for s in stamps)  # only the video before the question
    track = d.find_element("css selector", "video track")
    assert track.get_attribute("label") == "questions"
    vtt = d.execute_async_script("const done = arguments[1]; fetch(arguments[0]).then(r => r.text()).then(done);",
                                 track.get_attribute("src"))
    assert vtt.startswith("WEBVTT") and INDOOR_SAMPLE[1].question in vtt
    assert "&lt;img src=x onerror=" in vtt  # escaped in the caption track too
    # Text from records is shown as text: the prediction's HTML is not an element and never ran.
    body = d.find_element("tag name", "body").text
    assert re.search(r"prediction:\s+" + re.escape(XSS), body), body  # a plain-text block, labels aligned
    assert not d.find_elements("css selector", 'img[src="x"]')
    assert d.execute_script("return window.__egotask_xss === undefined")

    # Compare runs: the paired numbers (A = base-qwen, B = the finetuned records), as `egotask report` gives
    # them. On the 4 questions both judged A alone is right once, B alone twice: McNemar p = 1;
    # accuracy 2/4 against 3/4; scores (5-5) + (0-5) + (1-5) + (5-0) = -4 over 4.
    d.get(served)
    wait_for(d, lambda d: f"base-qwen · {STAMP}" in texts(d, "h2"), "the run again")
    open_tab(d, "Compare runs")
    wait_for(d, lambda d: metric(d, "McNemar p") is not None, "the paired comparison")
    assert (metric(d, "in both"), metric(d, "A correct, B wrong"), metric(d, "A wrong, B correct")) == ("5", "1", "2")
    assert metric(d, "Δ accuracy A − B (pp)") == "-25.0" and metric(d, "Δ score A − B") == "-1.00"
    assert metric(d, "McNemar p") == "1.000"
    assert any("Over the 4 questions both runs judged (1 left out" in t
               for t in texts(d, '[data-testid="stCaptionContainer"]'))


def progress(driver) -> str:
    return " ".join(texts(driver, '[data-testid="stProgress"]'))


def keys(driver, *pressed: str) -> None:
    """Key presses on the page itself (not in a text box), as a person labelling would type them."""
    from selenium.webdriver.common.action_chains import ActionChains

    for key in pressed:
        ActionChains(driver).send_keys(key).perform()


def label(driver, mark: str, score: str) -> None:
    """Y or N, then a score, each key once the page has shown the one before it (a key pressed while the
    page still reruns may be dropped by Streamlit; it then writes nothing, never a wrong label)."""
    wait_for(driver, lambda d: "not marked yet" in d.find_element("tag name", "body").text
             and d.find_elements("css selector", '[data-testid="stImage"] img'), "the item, drawn to its frames")
    keys(driver, mark)
    shown = "marked right" if mark == "y" else "marked wrong"
    wait_for(driver, lambda d: shown in d.find_element("tag name", "body").text, shown)
    keys(driver, score)


def test_a_person_labels_a_sample_with_the_keyboard_and_a_reopened_browser_resumes(browser, served, tmp_path,
                                                                                    capsys):
    from selenium.webdriver.common.keys import Keys

    from egotask.cli import main
    from egotask.labels import read_labels

    d = browser
    url = f"{served}/?{urllib.parse.urlencode({'view': 'Label', 'label_size': 3})}"
    d.get(url)
    name = wait_for(d, lambda d: next((e for e in d.find_elements("css selector", '[data-testid="stTextInput"]')
                                       if "Your name" in e.text), None), "the name box")
    box = name.find_element("css selector", "input")
    box.click()
    box.send_keys("alice", Keys.ENTER)
    wait_for(d, lambda d: "0 of 3 labelled by alice" in progress(d), "the first item")
    d.find_element("tag name", "h2").click()  # leave the text box: keys now go to the page
    images = wait_for(d, lambda d: d.find_elements("css selector", '[data-testid="stImage"] img') or None,
                      "the frames the model saw")
    assert images and all(img.get_attribute("naturalWidth") not in (None, "0") for img in images)
    main_area = d.find_element("css selector", '[data-testid="stMain"]').text  # the sidebar has a verdict filter
    assert "question:" in main_area and "prediction:" in main_area and "Keys: Y the answer is right" in main_area
    # The judge's verdict, score and reason ("hand-made") stay hidden.
    assert "hand-made" not in main_area and "verdict:" not in main_area and "correct" not in main_area

    label(d, "y", "4")
    wait_for(d, lambda d: "1 of 3 labelled by alice" in progress(d), "the first label saved")
    label(d, "n", "1")
    wait_for(d, lambda d: "2 of 3 labelled by alice" in progress(d), "the second label saved")
    # Back to the second item, which now says how it was labelled, and label it again.
    keys(d, "b")
    wait_for(d, lambda d: "labelled before: wrong, score 1" in d.find_element("tag name", "body").text, "back")
    label(d, "y", "5")
    wait_for(d, lambda d: "labelled before" not in d.find_element("tag name", "body").text, "relabelled")

    run_dir = tmp_path / "base_output" / "models__base-qwen"
    alice = run_dir / f"{STAMP}_alice.labels.jsonl"
    lines = read_labels(alice)
    assert [(x.pred, x.score) for x in lines] == [("yes", 4), ("no", 1), ("yes", 5)]
    assert lines[1].key == lines[2].key and all(x.labeller == "alice" for x in lines)

    # A closed browser loses nothing: a new session at the same address resumes at the third item.
    d.delete_all_cookies()
    d.get(f"{url}&labeller=alice")
    wait_for(d, lambda d: "2 of 3 labelled by alice" in progress(d), "the resumed sample")
    d.find_element("tag name", "h2").click()
    label(d, "n", "0")
    wait_for(d, lambda d: "All 3 items of the sample are labelled" in d.find_element("tag name", "body").text,
             "the sample done")
    assert len(read_labels(alice)) == 4

    # A second person writes a second file; both measure the run's judge, and each other.
    d.get(f"{url}&labeller=bob")
    wait_for(d, lambda d: "0 of 3 labelled by bob" in progress(d), "bob's first item")
    d.find_element("tag name", "h2").click()
    label(d, "y", "3")
    wait_for(d, lambda d: "1 of 3 labelled by bob" in progress(d), "bob's label saved")
    bob = run_dir / f"{STAMP}_bob.labels.jsonl"
    assert [x.labeller for x in read_labels(bob)] == ["bob"]
    assert main(["judge", "agreement", str(tmp_path / "base_output"), "--human", str(alice), str(bob)]) == 0
    out = capsys.readouterr().out
    assert "heuristic (heuristic-v1, prompt heuristic-v1)" in out and "alice" in out
    assert "People against each other" in out
