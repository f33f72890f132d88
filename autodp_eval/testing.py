"""Test helpers: the fake OpenAI-compatible server, and small synthetic instruction data.

:class:`FakeOpenAIServer` is ``autodp_backends.testing``'s, the project's one fake server (see
there): a handler gets each request (a :class:`FakeRequest`) and returns the assistant's text or a
:class:`Reply` (``Reply.error(429, "slow down")``, ``Reply.text(text, delay=2)``, ``Reply.hang(s)``)::

    with FakeOpenAIServer(lambda req: '{"winner": "tie"}') as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x")
        ...
        server.chat_requests     # every chat request received, in arrival order (.body: its JSON)

:func:`user_text` and :func:`judge_prompt_parts` read a request; :func:`make_qa_rows` and
:func:`corrupt_rows` build a small learnable data set and a deliberately degraded copy
(heading-only answers, answers duplicated from other questions).
"""

from __future__ import annotations

import random
from typing import Any

from autodp_backends.testing import FakeOpenAIServer, FakeRequest, Reply

__all__ = [
    "FakeOpenAIServer",
    "FakeRequest",
    "Reply",
    "corrupt_rows",
    "judge_prompt_parts",
    "make_qa_rows",
    "user_text",
]


def user_text(request: FakeRequest | dict[str, Any]) -> str:
    """The text of the last user message of a chat-completions request (or of its JSON body)."""
    if isinstance(request, FakeRequest):
        return request.last_user
    return FakeRequest("POST", "", {}, request, 0).last_user


def judge_prompt_parts(request: FakeRequest | dict[str, Any]) -> dict[str, str | None]:
    """Question, reference and the two answers of a request sent by ``PairwiseLLMJudge``."""
    text = user_text(request)

    def between(start: str, ends: tuple[str, ...]) -> str | None:
        i = text.find(start)
        if i < 0:
            return None
        i += len(start)
        j = min((k for k in (text.find(e, i) for e in ends) if k >= 0), default=len(text))
        return text[i:j].strip()

    return {
        "question": between("[Question]\n", ("\n[Reference answer", "\n[Answer 1]")),
        "reference": between("[Reference answer (a correct answer, for guidance)]\n", ("\n[Answer 1]",)),
        "answer_1": between("[Answer 1]\n", ("\n[Answer 2]",)),
        "answer_2": between("[Answer 2]\n", ("\nWhich answer is better?",)),
    }


# --------------------------------------------------------------------------- synthetic data

_SYLLABLES = "ka lo mi ner tus vae dor hel qui ban sor len tra pex lim gor".split()
_CAUSES = [
    "a faulty gene",
    "a viral infection",
    "a bacterial infection",
    "high blood pressure",
    "an autoimmune reaction",
    "long exposure to dust",
    "a lack of vitamin D",
    "a blocked blood vessel",
]
_SYMPTOMS = [
    "fever and tiredness",
    "joint pain",
    "shortness of breath",
    "skin rashes",
    "headaches and dizziness",
    "blurred vision",
    "muscle weakness",
    "stomach pain",
]
_TREATMENTS = [
    "rest and fluids",
    "antibiotics",
    "physical therapy",
    "surgery",
    "a low-salt diet",
    "antiviral drugs",
    "regular exercise",
    "steroid creams",
]
_ORGANS = [
    "the heart",
    "the lungs",
    "the liver",
    "the skin",
    "the brain",
    "the kidneys",
    "the eyes",
    "the bones",
]


def make_qa_rows(n: int = 300, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` learnable question/answer rows about made-up conditions, with a ``category`` column.

    Each condition has a cause, symptoms, a treatment and an organ; five question types ask about
    them and every answer restates the facts in a fixed style, so a tiny model learns the pattern.
    """
    rng = random.Random(seed)
    kinds = ["information", "causes", "symptoms", "treatment", "organ"]
    n_topics = max(1, -(-n // len(kinds)))
    names: list[str] = []
    while len(names) < n_topics:
        name = "".join(rng.sample(_SYLLABLES, 3)).capitalize() + " syndrome"
        if name not in names:
            names.append(name)
    rows = []
    for t, name in enumerate(names):
        cause, symptom, treat, organ = (rng.choice(x) for x in (_CAUSES, _SYMPTOMS, _TREATMENTS, _ORGANS))
        qa = {
            "information": (
                f"What is {name} ?",
                f"{name} is a rare condition that affects {organ}. It is caused by {cause} "
                f"and usually leads to {symptom}.",
            ),
            "causes": (
                f"What causes {name} ?",
                f"{name} is caused by {cause}. Doctors believe that {cause} damages {organ} over time.",
            ),
            "symptoms": (
                f"What are the symptoms of {name} ?",
                f"The main symptoms of {name} are {symptom}. They appear when {organ} is affected.",
            ),
            "treatment": (
                f"How is {name} treated ?",
                f"{name} is treated with {treat}. Most people with {symptom} feel better after treatment.",
            ),
            "organ": (
                f"Which organ does {name} affect ?",
                f"{name} mainly affects {organ}. The damage to {organ} is caused by {cause}.",
            ),
        }
        for k in kinds:
            q, a = qa[k]
            rows.append({"id": f"qa-{t}-{k}", "instruction": q, "input": "", "output": a, "category": k})
    rng.shuffle(rows)
    return rows[:n]


def corrupt_rows(
    rows: list[dict[str, Any]],
    fraction: float = 0.3,
    seed: int = 1,
    kinds: tuple[str, ...] = ("heading", "duplicate"),
) -> tuple[list[dict[str, Any]], list[int]]:
    """A copy of ``rows`` where ``fraction`` of the outputs are junk, and the indices changed.

    ``"heading"``: the output becomes the question restated as a heading (a broken scrape);
    ``"duplicate"``: the output is copied from another row (a wrong, duplicated answer). Kinds
    alternate over the chosen rows.
    """
    rng = random.Random(seed)
    out = [dict(r) for r in rows]
    chosen = sorted(rng.sample(range(len(rows)), round(fraction * len(rows))))
    for k, i in enumerate(chosen):
        kind = kinds[k % len(kinds)]
        if kind == "heading":
            out[i]["output"] = rows[i]["instruction"].replace(" ?", "?").strip()
        elif kind == "duplicate":
            j = rng.randrange(len(rows) - 1)
            j = j + 1 if j >= i else j
            out[i]["output"] = rows[j]["output"]
        else:
            raise ValueError(f"unknown corruption kind {kind!r}; use 'heading' or 'duplicate'")
    return out, chosen
