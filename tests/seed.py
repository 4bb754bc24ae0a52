"""Writing digest rows the way the pipeline does, for tests that seed a database directly:
the pass's paper (pass_items), the profile's digest entry (profile_items) and, for a summary,
its job (summary_jobs), so every reader of the schema sees what a real pass leaves behind."""
from __future__ import annotations

from shared.models import ITEM_WANTS_SUMMARY, SUM_SKIPPED, PassItem, PassProfile, ProfileItem, SummaryJob


def digest_item(s, pass_id: int, paper_id: str, *, rank: int, score: float, day=None, version: int = 1,
                announce_type: str = "new", matched=None, match_details=None, summary_state: str | None = None,
                summary_id: int | None = None, note: str | None = None, language: str = "en",
                profile: str = "default") -> None:
    """One paper in a profile's digest of a pass. summary_state: None (no summary wanted),
    "skipped" (with note), or a job state ("pending", "done", "failed", "budget")."""
    if s.get(PassItem, (pass_id, paper_id)) is None:
        s.add(PassItem(pass_id=pass_id, paper_id=paper_id, version=version, announce_type=announce_type,
                       announced=day))
    if s.get(PassProfile, (pass_id, profile)) is None:
        s.add(PassProfile(pass_id=pass_id, profile=profile, scored=True, candidates=0, selected=0, published=True))
    wants = summary_state not in (None, SUM_SKIPPED)
    s.add(ProfileItem(pass_id=pass_id, profile=profile, paper_id=paper_id, rank=rank, score=score,
                      announce_type=announce_type, matched=matched or [], match_details=match_details or [],
                      updated=False, summary_state=ITEM_WANTS_SUMMARY if wants else summary_state,
                      language=language if wants else None, note=None if wants else note))
    if wants and s.get(SummaryJob, (pass_id, paper_id, language)) is None:
        s.add(SummaryJob(pass_id=pass_id, paper_id=paper_id, language=language, version=version, priority=rank,
                         state=summary_state, summary_id=summary_id, note=note))
    s.flush()
