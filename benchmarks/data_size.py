"""Notebook 10's data-size experiment, at budgets chosen on a validation split: saved for the notebook to read.

    python benchmarks/data_size.py                   # writes benchmarks/results/data-size-digits.json (about an hour)
    python benchmarks/data_size.py --smoke --json /tmp/d.json   # a tiny pass through every step (the tests run it)

Why a script: a fair data-size curve trains every model until more steps no longer help, at every size,
with three seeds. That is hundreds of thousands of images seen, far more than a notebook may spend on two
CPU cores; the notebook reads this file and re-trains one of its points live.

The experiment, in two phases, on the embedded digits; every run is `vit_tutorial.datasize.train_point`
(no augmentation unless a model says so):

1. **Budget, on validation.** The last ``--held`` training digits of every class are held out as a
   validation split; the test digits play no part. For every model and size, seed 0 trains at budgets
   of ``LADDER[0]``, then twice that, and so on (each its own run, warm-up and cosine decay included),
   until doubling the budget raises no validation accuracy by more than ``--gain`` (or the ladder ends).
   A model's *sufficient* budget at a size is the last one before that doubling: every model is
   trained until more steps no longer help, so a size measures how much the data allows, not how fast a
   model learns. (One equal budget for all would have to be the slowest learner's: the ViT's.)
2. **Seeds.** Every model trains with seeds 0, 1, 2 at its own sufficient budget (the phase-1 run
   with seed 0 is reused). Each run is scored on the validation split, on the test digits, on its own training
   digits, and probed with one-pixel shifts of every test digit (per digit: right or wrong, and in how
   many of the four moves the answer changed), so the notebook can compare models on the digits both
   get right.

Two worker processes of one thread each share the two cores (faster here than one process with two
threads, for models this small). Results are written after every run; a rerun with the same file skips
the runs it already holds. Accuracies do not depend on how busy the machine is; the seconds do, and
are recorded as measured.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime
import json
import multiprocessing
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vit_tutorial.datasize import MODELS, TEACHER, sufficient_budget, train_point  # noqa: E402
from vit_tutorial.devices import device_name  # noqa: E402
from vit_tutorial.recipes import TrainConfig  # noqa: E402

CURVE = ("CNN", "ViT", "hybrid ViT")                            # trained at every size
REMEDIES = ("ViT + augmentation", "distilled ViT")               # trained at the smallest size only
SIZES = (25, 50, 100, 300)
LADDER = (300, 600, 1200, 2400, 4800, 9600)
SEEDS = (0, 1, 2)
#: The remedies climb to 4,800 steps at most: a distilled job trains two models, and 9,600 steps of both would
#: take as long as the rest of the grid. A remedy still gaining there is saved with "settled": false.
REMEDY_TOP = 4800
OUT = Path(__file__).resolve().parent / "results" / "data-size-digits.json"


def _run_one(model: str, n: int, budget: int, seed: int, held: int, n_val: int | None) -> list[dict]:
    """One job in a worker process, with one thread: its rows (the models stay behind)."""
    torch.set_num_threads(1)
    return train_point(model, n, budget, seed, held, n_val)[0]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=str(OUT))
    p.add_argument("--held", type=int, default=100, help="validation digits per class, held out of training [100]")
    p.add_argument("--gain", type=float, default=0.01,
                   help="a doubling that raises validation accuracy by more than this continues the ladder [0.01]")
    p.add_argument("--workers", type=int, default=2, help="worker processes of 1 thread [2]; 0: run in this process")
    p.add_argument("--smoke", action="store_true", help="tiny sizes and budgets: checks the machinery, not a result")
    a = p.parse_args(argv)
    sizes, ladder, seeds, n_val = (SIZES, LADDER, SEEDS, None) if not a.smoke else ((3, 6), (2, 4, 8), (0, 1), 40)
    out = Path(a.json)
    old = json.loads(out.read_text()) if out.exists() else {}
    settings = {"held": a.held, "gain": a.gain, "sizes": list(sizes), "ladder": list(ladder), "seeds": list(seeds),
                "n_val": n_val}
    same = {k: v for k, v in old.get("settings", {}).items() if k != "ladder"} == \
        {k: v for k, v in settings.items() if k != "ladder"}  # a run is keyed by its budget: a new ladder keeps it
    done = {(r["model"], r["size"], r["budget"], r["seed"]): r for r in old.get("runs", [])} if same else {}
    result = {"what": __doc__.splitlines()[0], "device": f"{device_name('cpu').split(',')[0]}, "
              f"{a.workers} worker processes of 1 thread", "date": str(datetime.date.today()),
              "torch": str(torch.__version__), "python": platform.python_version(),
              "command": "python benchmarks/data_size.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "settings": settings, "recipe": TrainConfig(augment=False, device="cpu").to_dict(),
              "models": {**MODELS, TEACHER[0]: TEACHER[1]}, "budgets": {}, "ladders": [], "runs": list(done.values())}

    def save():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(out)  # an interrupted write never leaves half a file

    def rows_of(model, n, budget, seed):
        names = [TEACHER[0], model] if model == "distilled ViT" else [model]
        return [done.get((name, n, budget, seed)) for name in names]

    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no thread pools inherited from this one
    # --workers 0: one job at a time in this process (the tests use it)
    with cf.ProcessPoolExecutor(a.workers, mp_context=ctx) if a.workers else cf.ThreadPoolExecutor(1) as pool:
        def submit(job):
            print(f"start {job}", flush=True)
            return pool.submit(_run_one, *job, a.held, n_val)

        def gather(futures):
            """Wait for jobs, keeping each one's rows as it ends."""
            for fut in cf.as_completed(futures):
                for row in fut.result():
                    done[row["model"], row["size"], row["budget"], row["seed"]] = row
                    result["runs"].append(row)
                    print(f"{row['model']:20s} {row['size']:3d}/class {row['steps']:5d} steps seed {row['seed']}: "
                          f"val {row['validation']:.3f} test {row['test']:.3f} train {row['train']:.3f} "
                          f"({row['seconds']:.0f} s)", flush=True)
                save()

        # phase 1: each (model, size) climbs its ladder one rung at a time; the pairs run side by side, and a
        # pair's next rung starts as soon as its last one ends, so no core waits for a slow pair
        pairs = [(m, n) for n in reversed(sizes) for m in CURVE] + [(m, sizes[0]) for m in REMEDIES]
        settled, running = {}, {}

        def next_step(pair):
            """Settle the pair, or return its next job (the lowest rung it has not run)."""
            vals, rungs = {}, [b for b in ladder if pair[0] not in REMEDIES or b <= REMEDY_TOP or a.smoke]
            for b in rungs:
                rows = rows_of(*pair, b, seeds[0])
                if None in rows:
                    break
                vals[b] = [r["validation"] for r in rows]
            if len(vals) > 1:
                budget, ok = sufficient_budget(vals, a.gain)
                if ok or len(vals) == len(rungs):
                    settled[pair] = {"model": pair[0], "size": pair[1], "sufficient": budget, "settled": ok,
                                     "validation": {str(b): v for b, v in vals.items()}}
                    return None
            return (*pair, rungs[len(vals)], seeds[0])

        for pair in pairs:
            job = next_step(pair)
            if job:
                running[submit(job)] = pair
        while running:
            finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                gather([fut])
                job = next_step(running.pop(fut))
                if job:
                    running[submit(job)] = job[:2]
        result["ladders"] = list(settled.values())
        for (m, n), s in settled.items():
            result["budgets"].setdefault(str(n), {})[m] = s["sufficient"]
        save()

        # phase 2: three seeds of every model at its own sufficient budget
        jobs = [(m, n, b, s) for (m, n), st in settled.items() for b in [st["sufficient"]] for s in seeds]
        gather([submit(job) for job in sorted(jobs, key=lambda j: -j[2]) if None in rows_of(*job)])
    result["runs"].sort(key=lambda r: (r["size"], r["model"], r["budget"], r["seed"]))
    save()
    print(f"sufficient budgets (steps) by size and model: {result['budgets']}; wrote {out}")
    return result


if __name__ == "__main__":
    main()
