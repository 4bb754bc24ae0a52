"""Does feedback improve the ranking? Simulated readers on the recorded data (NOT real readers).

Data: the recorded 28 Nov 2024 announcement day (1,504 papers, all archives) plus the papers of
the recorded query API answers (tests/data/arxiv/api), about 1,600 papers. It is one day, so
the split is by arXiv id order (never random): the earlier half of the ids is what the readers
have seen and rated, the later half is what gets ranked and measured.

Readers: each has a HIDDEN interest, a set of categories plus a topic (words of the title or
abstract): a paper is relevant to the reader when it lists one of those categories and contains
one of those words. The reader's profile does not know it: it follows broader categories and a
few keywords the reader typed once, which catch part of the interest and plenty besides (the
drift the issue describes). Ratings: N earlier papers, half that the reader likes (as from "more
like this" and a Zotero import) and half that the profile's keywords brought in and the reader
does not like ("less like this"), drawn with a fixed seed; then 10 % of the labels are flipped
(noise). Rankings are made by the scorer's own code: services/scorer/profile_scorer.py (keywords),
profile_feedback.py (the model's points) and selection.py (the digest).

Printed, averaged over the readers and 5 rating seeds, for keyword-only and for 10, 20 and 50
ratings:
- precision@10: relevant papers among the digest's first 10 (a digest shorter than 10 counts
  the missing places as misses);
- NDCG@10 (binary relevance);
- balanced accuracy of the digest decision: over every later paper in the reader's categories,
  "in the digest" (a candidate: a match and score >= min_score) against "relevant",
  (true-positive rate + true-negative rate) / 2.

    .venv/bin/python bench/bench_ranking.py [--seeds 5] [--verbose]

Targets: at 20 ratings, precision@10 at least 0.3 above keyword-only and balanced accuracy
at least 0.75.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAY = ROOT / "tests/data/arxiv/rss/rss2_2024-11-28_all20archives_1504items.xml"
API = ROOT / "tests/data/arxiv/api"
TYPES = ["new", "cross", "replace", "replace-cross"]
NOISE = 0.10
COUNTS = (10, 20, 50)

# name: (hidden interest: categories, topic words), (the profile: categories, keywords)
READERS = {
    "diffusion models in vision": (({"cs.CV"}, {"diffusion", "denoising"}),
                                   (["cs.CV", "cs.LG", "cs.AI"], ["generative", "generation", "synthesis", "image"])),
    "LLMs in NLP": (({"cs.CL"}, {"llm", "llms", "gpt", "chatgpt", "instruction", "prompting"}),
                    (["cs.CL", "cs.AI", "cs.LG"], ["language", "reasoning", "transformer", "text"])),
    "medical imaging": (({"cs.CV", "eess.IV"}, set("medical clinical patient patients mri ct tumor tumors cancer lesion "
                                                   "lesions radiology pathology histopathology surgical disease "
                                                   "diagnosis ultrasound coronary anatomical organ organs".split())),
                        (["cs.CV", "eess.IV", "q-bio.QM"], ["segmentation", "imaging", "detection"])),
    "black holes": (({"gr-qc", "astro-ph.HE"}, {"black"}),
                    (["gr-qc", "astro-ph.HE", "hep-th"], ["gravitational", "waves", "spacetime", "horizon"])),
    "video understanding": (({"cs.CV"}, {"video", "videos"}),
                            (["cs.CV", "cs.MM", "eess.IV"], ["temporal", "motion", "tracking", "action"])),
    "quantum computing": (({"quant-ph"}, set("qubit qubits circuit circuits gate gates computing computer "
                                             "computers".split())),
                          (["quant-ph", "cond-mat.mes-hall"], ["quantum", "algorithm", "noise"])),
    "robots": (({"cs.RO"}, set("robot robots robotic manipulation grasping locomotion humanoid".split())),
               (["cs.RO", "cs.AI", "cs.LG"], ["control", "planning", "learning"])),
    "3D vision": (({"cs.CV"}, set("3d nerf splatting point cloud clouds".split())),
                  (["cs.CV", "cs.GR", "cs.RO"], ["depth", "scene", "reconstruction", "camera"])),
}


def load_papers():
    """The day's papers and the API answers' papers, each id once, in id order."""
    from services.fetcher.api import parse_api
    from services.fetcher.rss import parse_rss

    items = parse_rss(DAY.read_bytes()).items
    seen = {it.id for it in items}
    for path in sorted(API.rglob("*.xml")):
        try:
            page = parse_api(path.read_bytes())
        except Exception:  # the recorded error answers
            continue
        for it in page.items:
            if it.id not in seen:
                seen.add(it.id)
                items.append(it)
    return sorted(items, key=lambda it: it.id)


def relevant(item, interest) -> bool:
    cats, words = interest
    text = set(re.findall(r"[a-z0-9]+", f"{item.title} {item.abstract}".lower()))
    return bool(cats & set(item.categories)) and bool(words & text)


def day_of(items, union):
    from services.scorer.dayindex import DayIndex, DayPaper
    from shared.arxiv import effective_type

    return DayIndex.build([DayPaper(i.id, i.title, i.abstract, list(i.authors), list(i.categories),
                                    effective_type(i, union), i.version) for i in items])


def profile_of(name: str, spec):
    from shared.config import parse_config
    from shared.profiles import load

    cats, keywords = spec
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40]
    cfg = parse_config({"profiles": {slug: {"categories": cats, "keywords": keywords, "min_score": 1.0,
                                            "max_papers": 30, "announce_types": TYPES}}})
    return load(cfg).profiles[0]


def ratings_for(earlier_day, profile, interest, n: int, seed: int) -> dict[str, str]:
    """{id: "up"|"down"}: n/2 earlier papers the reader likes (as many as there are), the rest
    earlier papers the profile's keywords brought in that the reader does not like; then 10 % of
    the labels flipped. Drawn with `seed`."""
    from services.scorer.profile_scorer import score_profile

    rng = random.Random(seed)
    eligible = earlier_day.eligible(profile.categories, profile.announce_types)[0]
    brought = {earlier_day.papers[i].id for i, s in score_profile(earlier_day, profile, eligible).items() if s.terms}
    papers = [earlier_day.papers[i] for i in sorted(eligible)]
    liked = [p.id for p in papers if relevant(p, interest)]
    disliked = [p.id for p in papers if p.id in brought and not relevant(p, interest)]
    ups = rng.sample(liked, min(len(liked), n // 2))
    downs = rng.sample(disliked, min(len(disliked), n - len(ups)))
    out = {pid: "up" for pid in ups} | {pid: "down" for pid in downs}
    for pid in sorted(out):
        if rng.random() < NOISE:
            out[pid] = "down" if out[pid] == "up" else "up"
    return out


def metrics(day, profile, interest, picks, candidates: set[str]) -> tuple[float, float, float]:
    eligible = [day.papers[i] for i in sorted(day.eligible(profile.categories, profile.announce_types)[0])]
    truth = {p.id: relevant(p, interest) for p in eligible}
    top = [truth.get(p.paper_id, False) for p in picks[:10]]
    precision = sum(top) / 10
    dcg = sum(1 / math.log2(r + 2) for r, hit in enumerate(top) if hit)
    ideal = sum(1 / math.log2(r + 2) for r in range(min(10, sum(truth.values()))))
    ndcg = dcg / ideal if ideal else 0.0
    pos = [pid for pid, t in truth.items() if t]
    neg = [pid for pid, t in truth.items() if not t]
    tpr = sum(pid in candidates for pid in pos) / len(pos) if pos else 0.0
    tnr = sum(pid not in candidates for pid in neg) / len(neg) if neg else 0.0
    return precision, ndcg, (tpr + tnr) / 2


def rank(day, profile, earlier_by_id, rated: dict[str, str] | None, weight: float, clock: dict | None = None):
    """(picks, candidate ids) of the profile's digest of `day`, with the model of `rated`;
    `clock` collects the seconds spent training and computing points."""
    from services.scorer.feedback_model import fingerprint
    from services.scorer.profile_feedback import feedback_terms, hidden, model_from_papers
    from services.scorer.profile_scorer import score_profile
    from services.scorer.selection import select_profile

    eligible = day.eligible(profile.categories, profile.announce_types)[0]
    scored = score_profile(day, profile, eligible)
    bonus, hide = {}, frozenset()
    if rated:
        papers = [(pid, earlier_by_id[pid].title, earlier_by_id[pid].abstract, list(earlier_by_id[pid].categories))
                  for pid in sorted(rated)]
        t0 = time.process_time()
        model = model_from_papers(papers, rated, fingerprint(list(rated.items())))
        t1 = time.process_time()
        bonus, hide = feedback_terms(day, profile, model, weight), hidden(list(rated.items()))
        if clock is not None:
            clock.setdefault("train", []).append(t1 - t0)
            clock.setdefault("points", []).append((time.process_time() - t1, len(eligible)))
    # Every candidate ranked (not only max_papers): the balanced accuracy looks at all of them.
    sel = select_profile(day, dataclasses.replace(profile, max_papers=len(day)), scored, bonus, {}, hide)
    return sel.picks[:profile.max_papers], {p.paper_id for p in sel.picks}


def main() -> int:
    from shared.config import FeedbackConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", type=int, default=5, help="rating draws per reader")
    parser.add_argument("--verbose", action="store_true", help="one line per reader")
    args = parser.parse_args()
    weight = FeedbackConfig().weight
    items = load_papers()
    half = len(items) // 2
    earlier, later = items[:half], items[half:]
    by_id = {it.id: it for it in earlier}
    print("SIMULATED readers, not real ones: each has a hidden interest (categories + topic words) and a "
          "profile with broader categories and a few keywords;")
    print(f"{len(items)} recorded papers split by arXiv id order: {len(earlier)} earlier (rated), {len(later)} "
          f"later (ranked); ratings half liked / half disliked, {NOISE:.0%} of labels flipped; "
          f"feedback.weight {weight:g}; {len(READERS)} readers x {args.seeds} rating seeds", flush=True)
    rows = {"keywords only": []} | {f"{n} ratings": [] for n in COUNTS}
    clock: dict = {}
    for name, (interest, spec) in READERS.items():
        profile = profile_of(name, spec)
        day, seen = day_of(later, list(profile.categories)), day_of(earlier, list(profile.categories))
        picks, cands = rank(day, profile, by_id, None, weight)
        base = metrics(day, profile, interest, picks, cands)
        rows["keywords only"] += [base] * args.seeds
        relevant_later = sum(relevant(day.papers[i], interest) for i in day.eligible(profile.categories, TYPES)[0])
        line = [f"{name}: {relevant_later} relevant later papers", "keywords p@10 %.2f" % base[0]]
        for n in COUNTS:
            got = []
            for seed in range(args.seeds):
                rated = ratings_for(seen, profile, interest, n, seed)
                picks, cands = rank(day, profile, by_id, rated, weight, clock if n == 20 else None)
                got.append(metrics(day, profile, interest, picks, cands))
            rows[f"{n} ratings"] += got
            line.append(f"{n}: p@10 %.2f ba %.2f" % (sum(g[0] for g in got) / len(got), sum(g[2] for g in got) / len(got)))
        if args.verbose:
            print("  " + "; ".join(line))
    print(f"{'':16}{'precision@10':>14}{'NDCG@10':>10}{'balanced acc':>14}")
    means = {}
    for label, vals in rows.items():
        means[label] = [sum(v[k] for v in vals) / len(vals) for k in range(3)]
        print(f"{label:16}{means[label][0]:>14.3f}{means[label][1]:>10.3f}{means[label][2]:>14.3f}")
    lift = means["20 ratings"][0] - means["keywords only"][0]
    ok = lift >= 0.3 and means["20 ratings"][2] >= 0.75
    print(f"at 20 ratings: precision@10 {lift:+.3f} over keyword-only (target >= +0.300), balanced accuracy "
          f"{means['20 ratings'][2]:.3f} (target >= 0.750): {'met' if ok else 'NOT met'}")
    train = sorted(clock["train"])[len(clock["train"]) // 2] * 1000
    spent, papers = zip(*clock["points"])
    print(f"cost per profile with 20 ratings (median CPU time): training {train:.1f} ms (once per rating set), "
          f"points and reasons {sorted(spent)[len(spent) // 2] * 1000:.1f} ms for about "
          f"{sorted(papers)[len(papers) // 2]} eligible papers (every pass)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
