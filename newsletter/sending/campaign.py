"""A campaign's life: the only module that writes a campaign's state, and its send loop.

A campaign is one issue sent to one list. It is created with its recipients frozen into the
ledger, then sent by this loop in one or several processes, and stopped or done.

The coordinator (the calling thread) is the only one that writes to the ledger; worker
threads only compose and call the provider. A delivery is claimed (`sending`) before its
message is handed to a worker and marked `sent` only after the provider returned its
message id, so a process killed at any moment leaves each delivery either pending (never
handed over), sent, or `sending` — which the next run reports as uncertain.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from newsletter import domain as d
from newsletter.audience.selection import variant_chooser
from newsletter.domain import Campaign, Claimed
from newsletter.errors import BadInput
from newsletter.keys import secret_key
from newsletter.letter.build import Build, build_issue
from newsletter.message.composer import ComposeError, Composer, Recipient
from newsletter.sending.options import (
    CONFIRM_ABOVE,
    HEARTBEAT,
    LEASE,
    NotConfirmed,
    SendOptions,
    SendRequest,
    Summary,
    check_numbers,
    unknown_list,
)
from newsletter.sending.pacing import Backoff, TokenBucket
from newsletter.sending.progress import Progress
from newsletter.sending.providers import ProviderFactory, SendError, provider_factory
from newsletter.store import Store, utcnow
from newsletter.tokens import TokenSigner


def start(request: SendRequest, confirm: Callable[[str], bool]) -> tuple[Build, Store, SendOptions, bytes]:
    """Everything a send needs, checked before anything is sent: the build (a bad issue stops
    here), the numbers, the key, the store, and the user's yes for a new campaign to many."""
    build = build_issue(request.issue_dir, request.config_path)
    config = build.config
    check_numbers(rate=request.rate, threads=request.threads, workers=request.workers)
    if request.workers > 1 and not config.store_url.startswith("postgresql"):
        message = 'several workers need PostgreSQL (store.url = "postgresql://…"); SQLite allows one'
        raise BadInput.single("--workers", message)
    secret = secret_key()
    store = Store.open(config.store_url)
    options = SendOptions(
        list_name=request.list_name,
        provider=request.provider or config.send.provider,
        rate=request.rate or config.send.rate,
        threads=request.threads or config.send.threads,
        max_attempts=config.send.max_attempts,
        resend_uncertain=request.resend_uncertain,
    )
    list_id = store.list_id(options.list_name)
    if list_id is not None and store.find_campaign(build.issue.slug, list_id) is None:
        recipients = sum(1 for _ in store.subscribers(options.list_name, d.ACTIVE))
        question = (
            f"Send {build.issue.slug!r} to {recipients} people on {options.list_name!r} through {options.provider}?"
        )
        if recipients > CONFIRM_ABOVE and not request.yes and not confirm(question):
            raise NotConfirmed(f"nothing sent: answer yes, or pass --yes to send to more than {CONFIRM_ABOVE} people")
    return build, store, options, secret


def send_issue(
    request: SendRequest,
    confirm: Callable[[str], bool],
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Summary:
    """`newsletter send` in one process: start or resume the campaign and send it to the end."""
    build, store, options, secret = start(request, confirm)
    label = f"{build.issue.slug}-{options.list_name}"
    factory = provider_factory(options.provider, build.config, campaign_label=label)
    return send_campaign(store, build, options, factory, secret, progress=progress, stop=stop)


def prepare_campaign(
    store: Store, build: Build, options: SendOptions, secret: bytes
) -> tuple[Campaign, bool, dict[str, int]]:
    """The campaign for this issue and list: found (to resume) or created with its recipients frozen."""
    list_id = store.list_id(options.list_name)
    if list_id is None:
        raise unknown_list(options.list_name, [name for name, _ in store.list_names()])
    digest = build.content_hash()
    campaign = store.find_campaign(build.issue.slug, list_id)
    if campaign is not None:
        if campaign.content_hash != digest:
            raise BadInput.single(
                build.issue.path.name,
                f"the issue changed since campaign {campaign.id} started sending it to {options.list_name!r}; "
                "the rest of the list would get a different letter. Undo the change to resume.",
            )
        return campaign, False, {}
    campaign, skipped = store.create_campaign(
        slug=build.issue.slug,
        list_id=list_id,
        content_hash=digest,
        layout=build.config.layout,
        provider=options.provider,
        variant_for=variant_chooser(build.config),
        secret=secret,
    )
    return campaign, True, skipped


def finish_if_complete(store: Store, campaign_id: int) -> bool:
    """Mark the campaign done when nothing is left to send or in flight."""
    counts = store.delivery_counts(campaign_id)
    if counts[d.PENDING] or counts[d.SENDING]:
        return False
    store.set_campaign_state(campaign_id, d.CAMPAIGN_DONE)
    return True


def send_campaign(
    store: Store,
    build: Build,
    options: SendOptions,
    factory: ProviderFactory,
    secret: bytes,
    *,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    backoff: Backoff | None = None,
    campaign: Campaign | None = None,
) -> Summary:
    progress = progress or Progress()
    stop = stop or threading.Event()
    started = clock()
    created = False
    skipped: dict[str, int] = {}
    if campaign is None:
        campaign, created, skipped = prepare_campaign(store, build, options, secret)
    summary = Summary(
        campaign=campaign,
        created=created,
        counts={},
        list_name=options.list_name,
        provider=options.provider,
        written_to=getattr(factory, "folder", None),
        skipped_at_freeze=skipped,
    )
    store.register_sender(campaign.id, options.worker_name)
    # Alone, every `sending` delivery belongs to a dead run; shared, only those of senders
    # whose lease ran out.
    summary.recovered_uncertain = store.recover_in_flight(campaign.id, lease=LEASE if options.shared else None)
    if options.resend_uncertain:
        summary.requeued_uncertain = store.requeue(campaign.id, (d.UNCERTAIN,))
    store.set_campaign_state(campaign.id, d.CAMPAIGN_SENDING)

    rate = options.rate
    provider_rate = factory.max_rate()
    if provider_rate:
        rate = min(rate, provider_rate)
    summary.rate = rate
    live = store.heartbeat(options.worker_name, campaign.id, LEASE)
    if not options.shared:
        live = 1  # alone: a sender that died just before is not sharing the rate any more
    else:
        # Let the senders already at work see this one and lower their share first, so
        # that the sum of the shares never exceeds the rate.
        sleep(HEARTBEAT * 1.5)
        live = store.heartbeat(options.worker_name, campaign.id, LEASE)
    share = rate / max(live, 1)
    # Alone, a small burst (2 % of a second's share, at most 10) lets the threads catch up
    # after a slow reply; shared, the bursts of several senders would add up, so none.
    burst = 1.0 if options.shared else max(1.0, min(share / 50, 10.0))
    bucket = TokenBucket(share, burst=burst, clock=clock, sleep=sleep)
    composer = Composer(build.variants, build.config, signer=TokenSigner(secret), campaign_id=campaign.id)
    loop = _Loop(
        store, campaign, composer, factory, options, bucket, backoff or Backoff(), stop, sleep, progress, rate, clock
    )

    counts = store.delivery_counts(campaign.id)
    progress.start(
        total=sum(counts.values()) - counts[d.SKIPPED], done=counts[d.SENT] + counts[d.FAILED] + counts[d.UNCERTAIN]
    )
    try:
        summary.sent_now = loop.run()
    finally:
        progress.finish()
    store.stop_sender(options.worker_name)
    summary.counts = store.delivery_counts(campaign.id)
    summary.failed = store.deliveries_in(campaign.id, d.FAILED)
    summary.uncertain = store.deliveries_in(campaign.id, d.UNCERTAIN)
    summary.elapsed = clock() - started
    if loop.stopped_by:
        summary.stopped = loop.stopped_by
        store.set_campaign_state(campaign.id, d.CAMPAIGN_STOPPED, loop.stopped_by)
    elif not loop.others_in_flight:
        finish_if_complete(store, campaign.id)
    summary.campaign = store.campaign(campaign.id) or campaign
    return summary


@dataclass
class _Result:
    delivery_id: int
    outcome: str  # "sent", "failed", "uncertain", "released", "fatal"
    detail: str


class _Loop:
    def __init__(
        self, store, campaign, composer, factory, options, bucket, backoff, stop, sleep, progress, rate, clock
    ):
        self.store: Store = store
        self.campaign: Campaign = campaign
        self.composer: Composer = composer
        self.factory: ProviderFactory = factory
        self.options: SendOptions = options
        self.bucket: TokenBucket = bucket
        self.backoff: Backoff = backoff
        self.stop: threading.Event = stop
        self.sleep = sleep
        self.progress: Progress = progress
        self.jobs: queue.Queue[Claimed | None] = queue.Queue()
        self.results: queue.Queue[_Result] = queue.Queue()
        self.stopped_by: str | None = None
        self._fatal_lock = threading.Lock()
        self.total_rate = rate
        self.clock = clock
        self.others_in_flight = False

    def run(self) -> int:
        threads = [
            threading.Thread(target=self._worker, name=f"send-{n}", daemon=True) for n in range(self.options.threads)
        ]
        for thread in threads:
            thread.start()
        in_flight = 0
        sent_total = 0
        # Few claimed at a time: a claimed delivery turns uncertain if the process is killed.
        window = self.options.threads * 2
        exhausted = False
        next_beat = self.clock() + HEARTBEAT
        try:
            while True:
                batch = self._drain(timeout=0.0 if in_flight < window and not exhausted else 0.05)
                in_flight -= len(batch)
                want = 0 if (self.stop.is_set() or exhausted) else window - in_flight
                if batch or want > 0:
                    claimed = self._record(batch, claim=want)
                    sent_total += sum(1 for r in batch if r.outcome == "sent")
                    if want > 0 and not claimed:
                        exhausted = True
                    for item in claimed:
                        self.jobs.put(item)
                    in_flight += len(claimed)
                if in_flight == 0 and (exhausted or self.stop.is_set()):
                    break
                if self.clock() >= next_beat:
                    next_beat = self.clock() + HEARTBEAT
                    self._beat()
        except KeyboardInterrupt:
            self._halt("interrupted (Ctrl-C)")
            while in_flight > 0:
                batch = self._drain(timeout=0.5)
                in_flight -= len(batch)
                self._record(batch, claim=0)
                sent_total += sum(1 for r in batch if r.outcome == "sent")
        finally:
            for _ in threads:
                self.jobs.put(None)
            for thread in threads:
                thread.join(timeout=60)
        if self.stop.is_set() and self.stopped_by is None:
            self.stopped_by = "interrupted"
        if self.options.shared and not self.stopped_by:
            # others may still hold deliveries: the campaign is done when the last one finishes
            self.others_in_flight = self.store.delivery_counts(self.campaign.id)[d.SENDING] > 0
        return sent_total

    def _beat(self) -> None:
        live = self.store.heartbeat(self.options.worker_name, self.campaign.id, LEASE)
        if self.options.shared:
            self.bucket.set_rate(self.total_rate / max(live, 1))
            self.store.recover_in_flight(self.campaign.id, lease=LEASE)

    def _halt(self, reason: str) -> None:
        with self._fatal_lock:
            if self.stopped_by is None:
                self.stopped_by = reason
        self.stop.set()

    def _drain(self, timeout: float) -> list[_Result]:
        batch: list[_Result] = []
        try:
            batch.append(self.results.get(timeout=timeout))
            while True:
                batch.append(self.results.get_nowait())
        except queue.Empty:
            pass
        return batch

    def _record(self, batch: list[_Result], *, claim: int) -> list[Claimed]:
        for r in batch:
            if r.outcome == "fatal":
                self._halt(r.detail)
        if self.stop.is_set():
            claim = 0
        sent = [(r.delivery_id, r.detail) for r in batch if r.outcome == "sent"]
        failed = [(r.delivery_id, r.detail) for r in batch if r.outcome == "failed"]
        uncertain = [(r.delivery_id, r.detail) for r in batch if r.outcome == "uncertain"]
        released = [r.delivery_id for r in batch if r.outcome in ("released", "fatal")]
        claimed = self.store.record_and_claim(
            self.campaign.id,
            self.options.worker_name,
            claim,
            sent=sent,
            failed=failed,
            uncertain=uncertain,
            released=released,
        )
        if batch:
            self.progress.advance(len(sent) + len(failed) + len(uncertain))
        return claimed

    def _worker(self) -> None:
        provider = None
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    return
                if self.stop.is_set():
                    self.results.put(_Result(job.id, "released", "stopped before sending"))
                    continue
                if provider is None:
                    try:
                        provider = self.factory.open()
                    except SendError as exc:
                        self.results.put(_Result(job.id, "fatal" if exc.fatal else "released", str(exc)))
                        if not exc.fatal:
                            self._halt(f"cannot open the provider: {exc}")
                        continue
                self.results.put(self._send(provider, job))
        finally:
            if provider is not None:
                provider.close()

    def _send(self, provider, job: Claimed) -> _Result:
        try:
            message = self.composer.compose(
                job.variant, Recipient(job.email, job.name, job.token_key, job.id), utcnow()
            )
        except ComposeError as exc:
            return _Result(job.id, "failed", f"cannot compose: {exc}")
        attempt = 0
        while True:
            attempt += 1
            if not self.bucket.acquire(self.stop):
                return _Result(job.id, "released", "stopped before sending")
            try:
                return _Result(job.id, "sent", provider.send(message))
            except SendError as exc:
                if exc.fatal:
                    return _Result(job.id, "fatal", str(exc))
                if exc.uncertain:
                    return _Result(job.id, "uncertain", str(exc))
                if not exc.retryable:
                    return _Result(job.id, "failed", str(exc))
                if attempt >= self.options.max_attempts:
                    return _Result(job.id, "failed", f"gave up after {attempt} attempts: {exc}")
                if self.stop.wait(self.backoff.delay(attempt, exc.retry_after)):
                    return _Result(job.id, "released", "stopped before sending")
