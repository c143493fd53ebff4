"""A local annotation page for the humans of the role-play study (Castricato et al. 2024, §4.2).

``personasim testbed annotate`` serves, on 127.0.0.1 only, a page with no external assets (it
works offline): instructions for imitating a persona (our own words), then for each item the
persona, the question and the two answers in a random order (seeded by annotator and item, so a
reload shows the same order). Each choice is stored with the annotator id, the seconds spent on
the item and the time of the submission.

Storage: one CSV per annotator, ``OUT/labels/<annotator>.csv``, in the format ``testbed
agreement --humans OUT/labels`` reads (``annotator, persona_id, question_id, choice`` plus
``shown_first, seconds, submitted_at``). A row is appended under a lock (a thread lock and an
``flock`` on the file) and flushed to disk before the page moves on, so several annotators at
once never share a file and a stopped server loses nothing. On start the files are read back:
each annotator resumes at their first unlabelled item. A second submission of an item (double
click, back button, a form rendered before a restart) is not stored again.

Who labels what comes from a roster CSV ``annotator, persona_id`` (the paper: each annotator
sees exactly one persona). An id not on the roster gets a page saying so and stores nothing.
"""

from __future__ import annotations

import csv
import fcntl
import html
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import numpy as np
import pandas as pd

from personasim.core.errors import DataError
from personasim.personas.generate import stable_seed

FIELDS = [
    "annotator",
    "persona_id",
    "question_id",
    "choice",
    "shown_first",
    "seconds",
    "submitted_at",
]
ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
INSTRUCTIONS = """
<p>Thank you for helping. In this task you play a role.</p>
<ol>
<li><b>Become the person.</b> Each page shows a short description of someone. They may not
exist. Read it and imagine their life, what they care about and how they like to be spoken to.
</li>
<li><b>Read the question and both answers.</b> The question is one this person might ask a
chatbot. Two answers follow, in no particular order.</li>
<li><b>Pick the answer this person would prefer</b>, not the one you prefer yourself. If neither
fits them clearly, pick the one they would more likely choose.</li>
<li><b>Work on your own.</b> Please do not ask a chatbot or anyone else.</li>
</ol>
<p>You can stop at any time; opening your page again continues where you stopped.</p>
"""
STYLE = """
body{font-family:system-ui,sans-serif;max-width:50rem;margin:1.5rem auto;padding:0 1rem;
line-height:1.45;color:#222}
.persona{background:#f4f1ea;border-left:4px solid #b58b3b;padding:.6rem 1rem;white-space:pre-wrap}
.answers{display:flex;gap:1rem;flex-wrap:wrap}
.answer{flex:1 1 20rem;border:1px solid #bbb;border-radius:6px;padding:.8rem;white-space:pre-wrap}
button{font-size:1rem;padding:.5rem 1.2rem;margin-top:.6rem;cursor:pointer}
.note{color:#8a5300}.progress{color:#666}
"""


# --------------------------------------------------------------------------- inputs


def read_roster(path: str | Path, items: pd.DataFrame) -> dict[str, list[str]]:
    """annotator -> the personas they label, from a CSV ``annotator, persona_id``."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(
            f"{path}: cannot read the roster ({str(error).splitlines()[0]})",
            hint="a CSV with the columns annotator, persona_id",
        ) from None
    if not {"annotator", "persona_id"} <= set(frame.columns):
        raise DataError(f"{path}: the roster needs the columns annotator, persona_id")
    known = set(items["persona_id"])
    roster: dict[str, list[str]] = {}
    for line, r in enumerate(frame.itertuples(index=False), start=2):
        annotator, pid = r.annotator.strip(), r.persona_id.strip()
        if not ID_PATTERN.match(annotator):
            raise DataError(
                f"{path}: row {line}: annotator id {annotator!r} is not 1-64 of "
                "letters, digits, '.', '_' or '-'"
            )
        if pid not in known:
            raise DataError(
                f"{path}: row {line}: persona_id {pid!r} has no items",
                hint="the roster names personas of the items table",
            )
        roster.setdefault(annotator, []).append(pid)
    if not roster:
        raise DataError(f"{path}: the roster is empty")
    return roster


# --------------------------------------------------------------------------- storage


@dataclass
class LabelStore:
    """One CSV per annotator under ``folder``; appends are locked and flushed."""

    folder: Path
    """The labels folder (``OUT/labels``)."""
    done: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    """annotator -> the (persona_id, question_id) items already stored."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Serialises appends and the ``done`` sets between request threads."""

    def load(self) -> LabelStore:
        """Read the files back (resume after a restart)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.folder.glob("*.csv")):
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            self.done[path.stem] = {(r["persona_id"], r["question_id"]) for r in rows}
        return self

    def add(self, row: dict[str, str]) -> bool:
        """Append ``row`` unless its item is stored already; True when it was written."""
        key = (row["persona_id"], row["question_id"])
        with self.lock:
            seen = self.done.setdefault(row["annotator"], set())
            if key in seen:
                return False
            self._append(row)
            seen.add(key)
            return True

    def _append(self, row: dict[str, str]) -> None:
        """Write one row (with the header for a new file) under an ``flock``, then fsync."""
        path = self.folder / f"{row['annotator']}.csv"
        with path.open("a", newline="", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                writer = csv.DictWriter(handle, fieldnames=FIELDS)
                if handle.tell() == 0:
                    writer.writeheader()
                writer.writerow(row)
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- pages


def _page(title: str, body: str) -> bytes:
    """A whole HTML page (inline style, no external asset)."""
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>"
        f"{html.escape(title)}</title><meta name='viewport' content='width=device-width'>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    ).encode()


def _start_page(error: str = "") -> bytes:
    """Instructions and the annotator id form."""
    note = f"<p class='note'>{html.escape(error)}</p>" if error else ""
    return _page(
        "Persona annotation",
        f"<h1>Persona annotation</h1>{INSTRUCTIONS}{note}"
        "<form method='get' action='/start'><label>Your annotator id: <input "
        "name='annotator' required></label> <button>Start</button></form>",
    )


def shown_first(annotator: str, persona_id: str, question_id: str) -> str:
    """The letter shown first to this annotator for this item (seeded, stable)."""
    seed = stable_seed(0, "annotate", annotator, persona_id, question_id)
    return "B" if np.random.default_rng(seed).random() < 0.5 else "A"


def _item_page(
    annotator: str, item: dict[str, str], position: tuple[int, int], note: str = ""
) -> bytes:
    """One item: persona, question, the answers in the annotator's order, two buttons."""
    first = shown_first(annotator, item["persona_id"], item["question_id"])
    order = [first, "B" if first == "A" else "A"]
    text = {"A": item["answer_a"], "B": item["answer_b"]}
    boxes = "".join(
        f"<div class='answer' id='answer-{i + 1}'><b>Answer {i + 1}</b><p>"
        f"{html.escape(text[letter])}</p><button name='choice' value='{letter}'>"
        f"I prefer answer {i + 1}</button></div>"
        for i, letter in enumerate(order)
    )
    hidden = "".join(
        f"<input type='hidden' name='{k}' value='{html.escape(v)}'>"
        for k, v in (
            ("persona_id", item["persona_id"]),
            ("question_id", item["question_id"]),
            ("shown_first", first),
            ("shown_at", f"{time.time():.3f}"),
        )
    )
    done, total = position
    body = (
        f"<p class='progress'>Annotator {html.escape(annotator)} - item {done + 1} of "
        f"{total}</p>"
        + (f"<p class='note'>{html.escape(note)}</p>" if note else "")
        + "<details><summary>Instructions</summary>"
        + INSTRUCTIONS
        + "</details>"
        + f"<h2>You are this person</h2><div class='persona'>{html.escape(item['persona'])}"
        + f"</div><h2>Their question</h2><p class='question'>{html.escape(item['question'])}"
        + f"</p><form method='post' action='/a/{quote(annotator)}'>{hidden}"
        + f"<div class='answers'>{boxes}</div></form>"
    )
    return _page("Persona annotation", body)


# --------------------------------------------------------------------------- server


@dataclass
class Annotation:
    """Everything the request handler needs."""

    items: pd.DataFrame
    """The items (persona_id, question_id, persona, question, answer_a, answer_b)."""
    roster: dict[str, list[str]]
    """annotator -> personas."""
    store: LabelStore
    """The per-annotator label files."""

    def todo(self, annotator: str) -> list[dict[str, str]]:
        """The annotator's items in a fixed order."""
        rows = self.items[self.items["persona_id"].isin(self.roster[annotator])]
        return rows.sort_values(["persona_id", "question_id"]).to_dict("records")

    def next_item(self, annotator: str) -> tuple[dict[str, str] | None, tuple[int, int]]:
        """The first item not stored yet (None when all are) and (stored, total)."""
        items = self.todo(annotator)
        with self.store.lock:
            done = set(self.store.done.get(annotator, set()))
        rest = [i for i in items if (i["persona_id"], i["question_id"]) not in done]
        return (rest[0] if rest else None), (len(items) - len(rest), len(items))


class Handler(BaseHTTPRequestHandler):
    """GET / (start), GET /start?annotator=ID, GET /a/ID (next item), POST /a/ID (a choice)."""

    server: AnnotationServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        """Quiet: no line per request."""

    def _send(self, status: HTTPStatus, body: bytes = b"", location: str | None = None) -> None:
        """One response."""
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _annotator(self, path: str) -> str | None:
        """The annotator id of ``/a/ID``, or None after sending the unknown-id page."""
        annotator = path.removeprefix("/a/").strip("/")
        if annotator in self.server.state.roster:
            return annotator
        self._send(
            HTTPStatus.NOT_FOUND,
            _start_page(f"Unknown annotator id {annotator!r}: please check the id you were given."),
        )
        return None

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        """Pages."""
        url = urlparse(self.path)
        if url.path == "/":
            self._send(HTTPStatus.OK, _start_page())
        elif url.path == "/start":
            annotator = parse_qs(url.query).get("annotator", [""])[0].strip()
            self._send(HTTPStatus.SEE_OTHER, location=f"/a/{quote(annotator)}")
        elif url.path.startswith("/a/"):
            self._show(url.path, parse_qs(url.query).get("note", [""])[0])
        else:
            self._send(HTTPStatus.NOT_FOUND, _page("Not found", "<p>No such page.</p>"))

    def _show(self, path: str, note: str) -> None:
        """The annotator's next item, or the thank-you page."""
        annotator = self._annotator(path)
        if annotator is None:
            return
        item, position = self.server.state.next_item(annotator)
        if item is None:
            self._send(
                HTTPStatus.OK,
                _page(
                    "Done",
                    f"<h1>All done</h1><p>You labelled all {position[1]} items. Thank you!</p>",
                ),
            )
            return
        self._send(HTTPStatus.OK, _item_page(annotator, item, position, note))

    def do_POST(self) -> None:  # noqa: N802 (stdlib name)
        """Store a choice, then send the annotator to their next item."""
        annotator = self._annotator(urlparse(self.path).path)
        if annotator is None:
            return
        length = min(int(self.headers.get("Content-Length") or 0), 65536)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        row = self._row(annotator, form)
        if row is None:
            self._send(
                HTTPStatus.BAD_REQUEST,
                _page("Bad request", "<p>That choice is not one of this annotator's items.</p>"),
            )
            return
        stored = self.server.state.store.add(row)
        note = (
            ""
            if stored
            else "?note=" + quote("That item was already recorded; here is your next one.")
        )
        self._send(HTTPStatus.SEE_OTHER, location=f"/a/{quote(annotator)}{note}")

    def _row(self, annotator: str, form: dict[str, str]) -> dict[str, str] | None:
        """The label row of a submitted form, or None when it does not fit an item."""
        pid, qid = form.get("persona_id", ""), form.get("question_id", "")
        keys = {(i["persona_id"], i["question_id"]) for i in self.server.state.todo(annotator)}
        if (pid, qid) not in keys or form.get("choice") not in ("A", "B"):
            return None
        try:
            seconds = max(0.0, time.time() - float(form.get("shown_at", "")))
        except ValueError:
            seconds = float("nan")
        return {
            "annotator": annotator,
            "persona_id": pid,
            "question_id": qid,
            "choice": form["choice"],
            "shown_first": form.get("shown_first", ""),
            "seconds": f"{seconds:.1f}",
            "submitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


class AnnotationServer(ThreadingHTTPServer):
    """The annotation page's HTTP server (127.0.0.1 only)."""

    daemon_threads = True

    def __init__(self, state: Annotation, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.state = state

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/``."""
        return f"http://127.0.0.1:{self.server_address[1]}/"


def make_server(
    items: pd.DataFrame, roster: dict[str, list[str]], out_dir: str | Path, port: int = 0
) -> AnnotationServer:
    """A server over ``items`` whose labels go to ``out_dir/labels`` (read back first)."""
    store = LabelStore(Path(out_dir) / "labels").load()
    unknown = sorted(set(store.done) - set(roster))
    if unknown:
        raise DataError(
            f"{store.folder}: labels of {unknown[0]!r}, who is not on the roster",
            hint="use the roster the labels were made with, or another --out",
        )
    return AnnotationServer(Annotation(items, roster, store), port)
