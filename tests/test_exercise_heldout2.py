"""The exercise checkers on a second list of wrong answers nobody wrote them for (issue 25, item 3).

``exercise_mistakes_heldout2.MISTAKES`` was written from the notebooks' exercise text alone, without sight of the
checkers or the first held-out list, and committed with each entry's keywords before anything was run. Every
answer must be rejected, no checker may raise, and the share of messages that name the mistake (contain one of
its keywords) is measured and printed per checker (``pytest -s``). Entries whose ``status`` marks them correct
under the exercise's own rules are run too, but only to check that the checker does not raise.
"""
import contextlib
import io
from collections import defaultdict
from functools import cache

import pytest
import torch

from exercise_mistakes_heldout2 import MISTAKES, PRELUDE
from vit_tutorial import exercises

CHECKERS = sorted({m["checker"] for m in MISTAKES})
# Measured on branch h25 (commit 691906d's checkers): 120/131 = 0.916 named, none accepted, no checker raised,
# the same at ten seeds. Three of the 120 are credited only through a generic hint (the message itself is a
# value dump or a wrong diagnosis: "returns a tensor", "true-class probability above 0.5", "class head used
# twice"); without them the share is 117/131 = 0.893, still above the issue's 0.85.
SHARE_FLOOR = 0.85


def counted(entry) -> bool:
    return entry["status"] is None


def run(entry) -> tuple[object, str, BaseException | None]:
    """The checker's verdict on one answer, what it printed, and what it raised (None if nothing)."""
    namespace: dict = {}
    exec(PRELUDE + entry["source"], namespace)
    buffer, threads = io.StringIO(), torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster, and the machine is shared
    try:
        with contextlib.redirect_stdout(buffer):
            result = getattr(exercises, entry["checker"])(namespace["answer"])
    except Exception as error:  # noqa: BLE001 - a checker that raises is what this test looks for
        return None, buffer.getvalue(), error
    finally:
        torch.set_num_threads(threads)
    return result, buffer.getvalue(), None


def message(out: str) -> str:
    """The verdict without the learner's quoted line (an answer's own code must not name its mistake)."""
    return "\n".join(line for line in out.splitlines() if "in your line:" not in line).lower()


def names_it(entry, out: str) -> bool:
    return any(word.lower() in message(out) for word in entry["keywords"])


@cache
def outcomes(checker: str) -> tuple[tuple[dict, object, str, BaseException | None], ...]:
    return tuple((entry, *run(entry)) for entry in MISTAKES if entry["checker"] == checker)


def test_the_list_covers_every_checker_with_four_to_six_answers():
    assert set(CHECKERS) == {name for names in exercises.EXERCISES.values() for name in names}
    per = defaultdict(int)
    for entry in MISTAKES:
        per[entry["checker"]] += 1
        assert 2 <= len(entry["keywords"]) <= 4 and entry["label"] and "def answer" in entry["source"]
    assert 4 <= min(per.values()) and max(per.values()) <= 6


@pytest.mark.parametrize("checker", CHECKERS)
def test_no_checker_raises_and_no_wrong_answer_is_accepted(checker):
    for entry, result, out, error in outcomes(checker):
        assert error is None, f"{checker} raised on {entry['label']!r}: {error!r}"
        if counted(entry):
            assert result is False, f"{entry['label']} was not rejected:\n{out}"
            assert out.startswith("❌") and "\nHint: " in out, out


def test_share_of_messages_that_name_the_mistake():
    named, total, rows = 0, 0, []
    for checker in CHECKERS:
        runs = [(entry, out) for entry, _, out, error in outcomes(checker) if counted(entry) and error is None]
        hits = sum(names_it(entry, out) for entry, out in runs)
        named, total = named + hits, total + len(runs)
        rows.append(f"{checker}: {hits}/{len(runs)}")
        rows += [f"   not named: {entry['label']}: {(message(out).splitlines() or [''])[0][:160]}"
                 for entry, out in runs if not names_it(entry, out)]
    report = f"{named}/{total} = {named / total:.3f} named\n" + "\n".join(rows)
    print(report)
    assert named / total >= SHARE_FLOOR, report
