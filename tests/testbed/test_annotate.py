"""The annotation page: a real headless Chromium (Debian's, over the DevTools protocol) labels a
persona's items; then over plain HTTP the awkward cases: unknown annotator, double submit, a
server restart mid-session, several annotators at once, and bad inputs at the CLI."""

from __future__ import annotations

import csv
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pandas as pd
import pytest

from personasim.cli.main import main
from personasim.testbed.annotate import make_server, shown_first
from personasim.testbed.roleplay import read_annotations

from .browser import DevTools, chromium_path

QS = ["q1", "q2", "q3"]
ITEMS = pd.DataFrame(
    [
        {
            "persona_id": p,
            "question_id": q,
            "persona": f"- Age: 7{i}\n- Lives: VT",
            "question": f"What should I do about {q}?",
            "answer_a": f"Generic {q}.",
            "answer_b": f"Answer made for {p} on {q}.",
        }
        for i, p in enumerate(("p1", "p2"))
        for q in QS
    ]
)
ROSTER = {"a1": ["p1"], "a2": ["p1"], "b1": ["p2"]}


class Running:
    """A server on a free port in a thread, shut down on exit."""

    def __init__(self, out):
        self.server = make_server(ITEMS, ROSTER, out)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.server.url

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def post(url: str, annotator: str, question: str, choice: str = "B", persona: str = "p1"):
    """Submit one choice as the page's form does; returns (status, final url, body)."""
    data = urlencode(
        {
            "persona_id": persona,
            "question_id": question,
            "choice": choice,
            "shown_first": "A",
            "shown_at": "0",
        }
    ).encode()
    try:
        with urllib.request.urlopen(f"{url}a/{annotator}", data=data, timeout=10) as reply:
            return reply.status, reply.url, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, url, error.read().decode()


def rows(out, annotator: str) -> list[dict[str, str]]:
    with (out / "labels" / f"{annotator}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.skipif(chromium_path() is None, reason="chromium is absent; `make test` installs it")
def test_an_annotator_labels_every_item_in_a_real_browser(tmp_path):
    out = tmp_path / "annotation"
    browser = DevTools(tmp_path / "profile")
    try:
        with Running(out) as url:
            browser.open(url)
            assert "play a role" in browser.js("document.body.innerText")
            external = browser.js(
                "[...document.querySelectorAll('[src],[href]')]"
                ".filter(e => /^(https?:)?\\/\\//.test(e.getAttribute('src') "
                "|| e.getAttribute('href'))).length"
            )
            assert external == 0
            browser.js(
                "document.querySelector('input[name=annotator]').value = 'a1';"
                "document.querySelector('form').submit()"
            )
            browser.wait_for("document.body.innerText.includes('item 1 of 3')")
            browser.screenshot(tmp_path / "item.png")
            for n, q in enumerate(QS, start=1):
                assert f"What should I do about {q}?" in browser.js("document.body.innerText")
                # click the button of the answer made for the persona, wherever it is shown
                browser.js(
                    "[...document.querySelectorAll('.answer')].find(d => d.innerText"
                    f".includes('made for p1 on {q}')).querySelector('button').click()"
                )
                after = f"'item {n + 1} of 3'" if n < 3 else "'All done'"
                browser.wait_for(f"document.body.innerText.includes({after})")
            browser.open(f"{url}a/nobody")
            assert "Unknown annotator id 'nobody'" in browser.js("document.body.innerText")
    finally:
        browser.close()
    got = rows(out, "a1")
    assert [(r["question_id"], r["choice"]) for r in got] == [(q, "B") for q in QS]
    assert [r["shown_first"] for r in got] == [shown_first("a1", "p1", q) for q in QS]
    assert all(float(r["seconds"]) >= 0 and r["submitted_at"] for r in got)
    labels = read_annotations(out / "labels", ITEMS)  # what `testbed agreement` reads
    assert labels["choice"].tolist() == ["B"] * 3
    assert (tmp_path / "item.png").read_bytes()[:4] == b"\x89PNG"


def test_double_submit_and_a_restart_neither_lose_nor_repeat_labels(tmp_path):
    out = tmp_path / "annotation"
    with Running(out) as url:
        assert post(url, "a2", "q1", "A")[0] == 200
        status, final, body = post(url, "a2", "q1", "B")  # a second click on the same item
        assert status == 200 and "already recorded" in body and "item 2 of 3" in body
        assert post(url, "zz", "q1")[0] == 404
        assert post(url, "a2", "q9")[0] == 400 and post(url, "a2", "q2", "banana")[0] == 400
    with Running(out) as url:  # restarted: a2 resumes at item 2
        with urllib.request.urlopen(f"{url}a/a2", timeout=10) as reply:
            assert "item 2 of 3" in reply.read().decode()
        assert "already recorded" in post(url, "a2", "q1", "B")[2]  # a form from before
        post(url, "a2", "q2", "B")
    assert [(r["question_id"], r["choice"]) for r in rows(out, "a2")] == [("q1", "A"), ("q2", "B")]


def test_several_annotators_at_once_keep_their_own_labels(tmp_path):
    out = tmp_path / "annotation"
    jobs = [
        (a, q, c, "p2" if a == "b1" else "p1")
        for a, c in (("a1", "A"), ("a2", "B"), ("b1", "A"))
        for q in QS
    ]
    with Running(out) as url, ThreadPoolExecutor(max_workers=9) as pool:
        statuses = list(pool.map(lambda j: post(url, j[0], j[1], j[2], j[3])[0], jobs * 2))
    assert set(statuses) == {200}
    for annotator, choice in (("a1", "A"), ("a2", "B"), ("b1", "A")):
        got = rows(out, annotator)
        assert sorted(r["question_id"] for r in got) == QS
        assert {r["choice"] for r in got} == {choice} and {r["annotator"] for r in got} == {
            annotator
        }
    assert len(read_annotations(out / "labels", ITEMS)) == 9


def test_bad_inputs_are_one_line(tmp_path, capsys):
    pairs = tmp_path / "pairs.parquet"
    ITEMS.rename(
        columns={
            "persona_id": "person_id",
            "question_id": "prompt_id",
            "question": "prompt",
            "answer_a": "rejected",
            "answer_b": "chosen",
        }
    ).assign(split="train", ok=True).to_parquet(pairs)
    roster = tmp_path / "roster.csv"
    roster.write_text("annotator,persona_id\na1,p7\n")

    def one_error(args):
        assert main(["testbed", "annotate", *args, "--out", str(tmp_path / "o")]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        return lines[0]

    assert "row 2: persona_id 'p7' has no items" in one_error(
        ["--items", f"pairs:{pairs}", "--roster", str(roster)]
    )
    assert "needs fixed items" in one_error(["--items", "builtin", "--roster", str(roster)])
    roster.write_text("annotator,persona_id\n../x,p1\n")
    assert "annotator id '../x'" in one_error(
        ["--items", f"pairs:{pairs}", "--roster", str(roster)]
    )
    assert "cannot read the roster" in one_error(
        ["--items", f"pairs:{pairs}", "--roster", str(tmp_path / "none.csv")]
    )
    assert not (tmp_path / "o" / "labels").exists()
