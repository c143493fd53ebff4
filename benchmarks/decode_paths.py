"""Why the embedded backend never finishes a prompt with a one-token decode.

Evaluates survey prompts (the built-in elections and topics questions for a few personas) cold,
the whole prompt in one batch, then re-evaluates only the last ``k`` tokens on top of the cached
rest, and prints, per ``k``, how many prompts' next-token logits differ from the cold ones and by
how much at most. With llama.cpp's CPU kernels here, ``k = 1`` takes another path and differs for
some prompts (which ones depends on the prompt's length); ``k >= 2`` matched in every prompt
measured. personasim therefore decodes at least
``MIN_EVAL_TOKENS`` (2) tokens at the end of every prompt (``personasim.llm.llamacpp``).

Run: ``.venv/bin/python benchmarks/decode_paths.py``
"""

from __future__ import annotations

import numpy as np

from personasim.llm import get_backend
from personasim.simulate.prompt import build_messages
from personasim.survey.loaders import builtin_survey

PERSONAS = [
    "- Age: 47 years\n- Sex: Female\n- State of residence: Ohio",
    "- Age: 23 years\n- Sex: Male\n- Race: Asian\n- State of residence: California",
    "- Age: 71 years\n- Sex: Female\n- Race: Black or African American\n- State of residence: "
    "Georgia",
]


def last_logits(llm: object) -> np.ndarray:
    """The next-token logits of the last decoded position."""
    row = llm._ctx.get_logits_ith(-1)  # type: ignore[attr-defined]
    return np.ctypeslib.as_array(row, shape=(llm.n_vocab(),)).astype(np.float64)  # type: ignore[attr-defined]


def main() -> None:
    """Print, per number of re-evaluated tokens, how often and how much the logits differ."""
    backend = get_backend("llamacpp", cache=None)
    questions = [*builtin_survey("elections").questions, *builtin_survey("topics").questions]
    llm = backend._llm
    ks = (1, 2, 3, 8)
    worst = {k: [] for k in ks}
    for persona in PERSONAS:
        for question in questions:
            prompt = backend.render(build_messages(persona, question), "Answer:")
            tokens = backend.tokenize(prompt)
            llm.reset()
            llm.eval(tokens)
            cold = last_logits(llm)
            for k in ks:
                llm.n_tokens = len(tokens) - k
                llm.eval(tokens[-k:])
                worst[k].append(float(np.abs(last_logits(llm) - cold).max()))
    count = len(worst[1])
    print(f"{count} prompts; the next-token logits when only the last k tokens are decoded anew:")
    for k in ks:
        differ = sum(d > 0 for d in worst[k])
        print(
            f"  k = {k}: differ from the cold logits in {differ}/{count} prompts, "
            f"max |difference| {max(worst[k]):.4f}"
        )
    backend.close()


if __name__ == "__main__":
    main()
