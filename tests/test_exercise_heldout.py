"""The exercise checkers on wrong answers nobody wrote them for (issue 25).

``exercise_mistakes_heldout.MISTAKES`` was written from the notebooks' exercise text alone, before the
checkers' diagnosis by property existed, each answer with the words a message that names its mistake would
contain. Every answer must be rejected without the checker raising, and at least 85 % of the messages must
name the mistake or the property it breaks. Entries whose ``status`` marks them correct under the exercise's
own rules (see the file) are run too, but only to check that the checker does not raise.
"""
import contextlib
import io
from collections import defaultdict
from functools import cache

import pytest
import torch

from exercise_mistakes_heldout import MISTAKES, PRELUDE
from vit_tutorial import exercises

CHECKERS = sorted({m["checker"] for m in MISTAKES})


def counted(entry) -> bool:
    """Entries marked correct or ambiguous after the measurement are not part of the share."""
    return entry["status"] is None


def run(entry) -> tuple[object, str]:
    namespace: dict = {}
    exec(PRELUDE + entry["source"], namespace)
    buffer, threads = io.StringIO(), torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster, and the machine is shared
    try:
        with contextlib.redirect_stdout(buffer):
            result = getattr(exercises, entry["checker"])(namespace["answer"])
    finally:
        torch.set_num_threads(threads)
    return result, buffer.getvalue()


def message(out: str) -> str:
    """The verdict without the learner's quoted line (an answer's own code must not name its mistake)."""
    return "\n".join(line for line in out.splitlines() if "in your line:" not in line).lower()


@cache
def outcomes(checker: str) -> tuple[tuple[dict, object, str], ...]:
    return tuple((entry, *run(entry)) for entry in MISTAKES if entry["checker"] == checker)


def names_it(entry, out: str) -> bool:
    return any(word.lower() in message(out) for word in entry["keywords"])


def test_the_list_covers_every_checker():
    assert set(CHECKERS) == {name for names in exercises.EXERCISES.values() for name in names}
    per = defaultdict(int)
    for entry in MISTAKES:
        per[entry["checker"]] += 1
        assert entry["keywords"] and entry["label"] and "def answer" in entry["source"]
    assert min(per.values()) >= 5


@pytest.mark.parametrize("checker", CHECKERS)
def test_no_held_out_wrong_answer_is_accepted_and_no_checker_raises(checker):
    for entry, result, out in outcomes(checker):  # a checker that raised would have failed outcomes() itself
        if counted(entry):
            assert result is False, f"{entry['label']} was not rejected:\n{out}"
            assert out.startswith("❌") and "\nHint: " in out, out


def test_most_messages_name_the_mistake_or_the_property_it_breaks():
    named, total, rows = 0, 0, []
    for checker in CHECKERS:
        runs = [(entry, out) for entry, _, out in outcomes(checker) if counted(entry)]
        hits = sum(names_it(entry, out) for entry, out in runs)
        named, total = named + hits, total + len(runs)
        rows.append(f"{checker}: {hits}/{len(runs)}")
        rows += [f"   not named: {entry['label']}: {message(out).splitlines()[0]}" for entry, out in runs
                 if not names_it(entry, out)]
    assert named / total >= 0.85, f"{named}/{total} named\n" + "\n".join(rows)
