"""The simulation prompt: instructions and the persona's profile as the system message, the
question with its lettered options as the user message (Li et al. 2025, Appendix B.5, in our own
words), and the strict parser of a sampled ``Answer: X`` reply."""

from __future__ import annotations

import re
from collections.abc import Sequence

from personasim.llm.base import (
    GenerateResult,
    Message,
)
from personasim.survey.questions import Question, letter

INSTRUCTIONS = """\
You take part in a survey study as a stand-in for one specific person, described in the profile \
below. Answer the multiple-choice question you are given as this person would answer it.

How to answer:
- Let the profile decide: the choice should follow from who this person is and how they live.
- Consider only the parts of the profile that bear on the topic of the question.
- Leave your own opinions out, and do not tone down views this person would plausibly hold.
- Give exactly one of the lettered options, also when the profile does not settle the matter; \
when several options could fit, take the one this person would most likely give.
- Reply with "Answer: " followed by the letter of the option, and write nothing else."""


PROFILE_HEADER = "Profile of the person:"


def format_question(question: Question, order: Sequence[int] | None = None) -> str:
    """The user message: the question, its options under presented letters, the letters allowed."""
    lines = [f"Question: {question.text.strip()}", ""]
    idx = list(order) if order is not None else list(range(len(question.options)))
    for (mark, text), i in zip(question.presented(order), idx, strict=True):
        detail = question.options[i].detail.strip()
        lines.append(f"{mark}. {text}" + (f" ({detail})" if detail else ""))
    letters = [letter(i) for i in range(len(idx))]
    lines += ["", f"Possible answers: {', '.join(letters)}."]
    return "\n".join(lines)


def build_messages(
    persona_text: str,
    question: Question,
    order: Sequence[int] | None = None,
    instructions: str = INSTRUCTIONS,
) -> tuple[Message, ...]:
    """System message = instructions + profile (shared by all of a persona's questions);
    user message = the question."""
    system = f"{instructions.strip()}\n\n{PROFILE_HEADER}\n{persona_text.strip()}"
    return (
        Message(role="system", content=system),
        Message(role="user", content=format_question(question, order)),
    )


_ANSWER = re.compile(
    r"^\s*answer\s*:\s*[\[(]?(?P<letter>[A-Za-z]{1,2})[\])]?(?:\s*$|[.):,;]|\s*\n)",
    re.IGNORECASE,
)


def parse_answer(reply: str, letters: Sequence[str]) -> str | None:
    """The letter of a strict ``Answer: X`` reply, or None when the reply does not have that form.

    The reply must start with ``Answer:`` and the letter must stand alone (end of reply, or
    followed by punctuation or a line break): ``"Answer: B"`` and ``"Answer: B. Trump"`` give
    ``B``; ``"A person like me..."``, ``"Answer: A person..."`` and letters outside ``letters``
    give None.
    """
    match = _ANSWER.match(reply or "")
    if not match:
        return None
    found = match.group("letter").upper()
    return found if found in letters else None


def reply_text(result: GenerateResult, constrained: bool) -> str:
    """The text to parse: the chosen string of a valid constrained reply, else the raw text."""
    if constrained and result.ok and isinstance(result.value, str):
        return result.value
    return result.text
