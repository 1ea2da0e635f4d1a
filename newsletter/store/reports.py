"""Reports: per campaign and language, what was sent and what came back."""

from __future__ import annotations

from sqlalchemy import func, select

import newsletter.store.tables as t
from newsletter import domain as d
from newsletter.store.campaigns import CampaignStore


class ReportStore(CampaignStore):
    def report(self, campaign_id: int | None = None) -> list[dict]:
        """Per campaign and language: recipients, delivery states, bounces, complaints, unsubscribes."""
        d, f = t.deliveries.c, t.feedback_events.c
        with self.engine.connect() as conn:
            query = select(d.campaign_id, d.language, d.state, func.count()).group_by(
                d.campaign_id, d.language, d.state
            )
            if campaign_id is not None:
                query = query.where(d.campaign_id == campaign_id)
            rows: dict[tuple[int, str], dict] = {}
            for cid, language, state, count in conn.execute(query):
                row = rows.setdefault((cid, language), _empty_report(cid, language))
                row["recipients"] += count
                if state in row:
                    row[state] += count
            events = (
                select(
                    f.campaign_id,
                    d.language,
                    f.kind,
                    f.bounce_type,
                    f.complaint_type,
                    func.count(func.distinct(f.delivery_id)),
                )
                .select_from(t.feedback_events.join(t.deliveries, t.deliveries.c.id == f.delivery_id))
                .group_by(f.campaign_id, d.language, f.kind, f.bounce_type, f.complaint_type)
            )
            if campaign_id is not None:
                events = events.where(f.campaign_id == campaign_id)
            for cid, language, kind, bounce_type, complaint_type, count in conn.execute(events):
                row = rows.setdefault((cid, language), _empty_report(cid, language))
                if kind == "bounce":
                    row["hard_bounces" if bounce_type == "Permanent" else "soft_bounces"] += count
                elif kind == "complaint" and complaint_type != "not-spam":
                    row["complaints"] += count
                elif kind == "unsubscribe":
                    row["unsubscribes"] += count
            campaigns = {c.id: c for c in self.campaigns()}
            out = []
            for (cid, _language), row in sorted(rows.items()):
                c = campaigns.get(cid)
                row["campaign"] = c.slug if c else None
                row["lists"] = list(c.lists) if c else []
                row["provider"] = (c.provider + " (rehearsal)" if c.rehearsal else c.provider) if c else None
                row["state"] = c.state if c else None
                row["started"] = c.created_at.isoformat(timespec="minutes") if c and c.created_at else None
                row["finished"] = c.finished_at.isoformat(timespec="minutes") if c and c.finished_at else None
                out.append(row)
            return out


def _empty_report(campaign_id: int, language: str) -> dict:
    return {
        "campaign_id": campaign_id,
        "language": language,
        "recipients": 0,
        d.SENT: 0,
        d.FAILED: 0,
        d.UNCERTAIN: 0,
        d.PENDING: 0,
        d.SENDING: 0,
        d.SKIPPED: 0,
        "hard_bounces": 0,
        "soft_bounces": 0,
        "complaints": 0,
        "unsubscribes": 0,
    }
