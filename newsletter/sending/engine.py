"""The send engine: the claim → compose → send → record loop every campaign runs through.

A one-process `send` is this engine alone (the sender lock held); `send --workers N` and
`newsletter worker` run it in several processes that share the campaign and its rate
(`shared`). Worker threads inside it compose and call the provider.

The coordinator (the calling thread) is the only one that writes to the ledger; worker
threads only compose and call the provider. A delivery is claimed (`sending`) before its
message is handed to a worker and marked `sent` only after the provider returned its
message id, so a process killed at any moment leaves each delivery either pending (never
handed over), sent, or `sending` — which the next run reports as uncertain. A person who
leaves while the campaign runs is skipped, with the reason, and the loop goes on.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from newsletter import domain as d
from newsletter.config import Config
from newsletter.domain import Campaign, Claimed
from newsletter.keys import TokenSigner
from newsletter.letter.render import Build, build_issue
from newsletter.message.composer import ComposeError, Composer, Recipient
from newsletter.sending.campaign import (
    HEARTBEAT,
    LEASE,
    Opened,
    Ready,
    SendOptions,
    SendRequest,
    Summary,
    begin,
    conclude,
    open_campaign,
    prepare,
)
from newsletter.sending.pacing import Backoff, Progress, TokenBucket
from newsletter.sending.providers.base import ProviderFactory, SendError
from newsletter.store import Store, utcnow
from newsletter.store.claims import Results

UNAVAILABLE_ATTEMPTS = 3  # tries, about 2 s in all, before an unreachable provider pauses the campaign
TRANSIENT_RUN = 10  # transient errors in a row, across recipients, that pause the campaign
# A person who leaves is seen by the next turn of the ledger; when messages come back too
# slowly for turns to be that frequent, the deliveries waiting for a thread are looked at
# again at least this often (seconds), so nobody is sent to later than this after leaving.
RECHECK = 0.1
FLUSH = 0.05  # results are recorded at most this long after they came back (seconds)
WAKE = 0.01  # the coordinator's longest sleep between looks at the clock (seconds)


def send_issue(
    request: SendRequest,
    confirm: Callable[[str], bool],
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Summary:
    """`newsletter send` in one process: start, resume or extend the campaign and send it."""
    ready = prepare(build_issue(request.issue_dir, request.config_path), request)
    with ready.store.ledger.sender_lock(ready.lock_key):
        opened = open_campaign(ready, confirm, yes=request.yes)
        label = campaign_label(ready.build.issue.slug, ready.options.lists)
        factory = provider_factory(ready.options.provider, ready.build.config, campaign_label=label)
        return send_campaign(ready.store, ready.build, ready.options, factory, ready.secret, opened, progress, stop)


def provider_factory(name: str, config: Config, *, campaign_label: str = "test") -> ProviderFactory:
    """The provider named `name` (outbox, smtp or ses), imported only when it is the one used."""
    if name == "outbox":
        from newsletter.sending.providers.outbox import OutboxFactory

        return OutboxFactory(config.root / config.send.outbox / campaign_label)
    if name == "smtp":
        from newsletter.sending.providers.smtp import SMTPFactory

        return SMTPFactory(config.smtp)
    if name == "ses":
        from newsletter.sending.providers.ses import SESFactory

        return SESFactory(config.ses)
    raise ValueError(f"unknown provider {name!r}")


def campaign_label(slug: str, lists: tuple[str, ...]) -> str:
    """How the provider names the campaign (the outbox: its folder)."""
    return f"{slug}-{'-'.join(lists)}"


def send_campaign(
    store: Store,
    build: Build,
    options: SendOptions,
    factory: ProviderFactory,
    secret: bytes,
    opened: Opened | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    backoff: Backoff | None = None,
) -> Summary:
    """Send the campaign (`opened`: campaign, whether new, who was added; opened here when not
    given) until nothing is left, it pauses or `stop` is set."""
    progress = progress or Progress()
    started = clock()
    opened = opened or open_campaign(Ready(build, store, options, secret), lambda _: True, yes=True)
    campaign = opened[0]
    store.ledger.register_sender(campaign.id, options.worker_name)
    summary = begin(store, opened, options, written_to=getattr(factory, "folder", None))
    store.campaigns.set_state(campaign.id, d.CAMPAIGN_SENDING)
    summary.rate = min(options.rate, factory.max_rate() or options.rate)
    bucket = _bucket(store, campaign.id, options, summary.rate, clock, sleep)
    composer = Composer(build.variants, build.config, signer=TokenSigner(secret), campaign_id=campaign.id)
    loop = _Loop(
        store,
        campaign,
        options,
        factory,
        composer,
        bucket,
        backoff or Backoff(),
        stop or threading.Event(),
        progress,
        summary.rate,
        clock,
    )
    counts = store.ledger.delivery_counts(campaign.id)
    progress.start(total=sum(counts.values()) - counts[d.SKIPPED], done=sum(counts[s] for s in d.FINISHED_STATES))
    try:
        summary.sent_now = loop.run()
    finally:
        progress.finish()
    store.ledger.stop_sender(options.worker_name)
    summary.stopped = loop.stopped_by
    summary.elapsed = clock() - started
    return conclude(store, summary, may_finish=not loop.others_in_flight)


def _bucket(
    store: Store,
    campaign_id: int,
    options: SendOptions,
    rate: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> TokenBucket:
    """This sender's pace: the campaign's rate, divided among the live senders when shared."""
    live = 1  # alone: a sender that died just before is not sharing the rate any more
    if options.shared:
        # Let the senders already at work see this one and lower their share first, so
        # that the sum of the shares never exceeds the rate.
        store.ledger.heartbeat(options.worker_name, campaign_id, LEASE)
        sleep(HEARTBEAT * 1.5)
        live = store.ledger.heartbeat(options.worker_name, campaign_id, LEASE)
    share = rate / max(live, 1)
    # Alone, a small burst (2 % of a second's share, at most 10) lets the threads catch up
    # after a slow reply; shared, the bursts of several senders would add up, so none.
    burst = 1.0 if options.shared else max(1.0, min(share / 50, 10.0))
    return TokenBucket(share, burst=burst, clock=clock, sleep=sleep)


@dataclass
class _Result:
    delivery_id: int
    outcome: str  # "sent", "failed", "uncertain", "skipped", "released", "pause"
    detail: str


@dataclass
class _Loop:
    store: Store
    campaign: Campaign
    options: SendOptions
    factory: ProviderFactory
    composer: Composer
    bucket: TokenBucket
    backoff: Backoff
    stop: threading.Event
    progress: Progress
    total_rate: float
    clock: Callable[[], float]

    def __post_init__(self) -> None:
        self.jobs: queue.Queue[Claimed | None] = queue.Queue()
        self.results: queue.Queue[_Result] = queue.Queue()
        self.stopped_by: str | None = None
        self.others_in_flight = False
        self._lock = threading.Lock()
        self._transient_run = 0  # transient errors in a row, across every thread
        self.in_flight: set[int] = set()  # claimed, not yet recorded (the coordinator's own)
        self.handed: set[int] = set()  # in flight and handed to the provider (the threads add)
        self.unwanted: dict[int, str] = {}  # in flight, whose person left since (the coordinator adds)

    def run(self) -> int:
        threads = [
            threading.Thread(target=self._worker, name=f"send-{n}", daemon=True) for n in range(self.options.threads)
        ]
        for thread in threads:
            thread.start()
        # Few claimed at a time: a claimed delivery turns uncertain if the process is killed.
        # Claimed again when half of them are back, so that a turn of the ledger (three
        # statements, one commit) serves several messages.
        window = self.options.threads * 2
        refill = max(1, window // 2)
        held: list[_Result] = []  # results not yet recorded
        held_since = last_look = self.clock()
        exhausted = False
        sent_total = 0
        next_beat = self.clock() + HEARTBEAT
        try:
            while True:
                now = self.clock()
                claiming = not (exhausted or self.stop.is_set())
                room = window - len(self.in_flight) + len(held)
                if (
                    (claiming and room >= refill)
                    or (held and self._flush_due(held, held_since, refill, claiming, now))
                    or (now - last_look >= RECHECK and self._not_handed(held))
                ):
                    claimed = self._turn(held, claim=room if claiming else 0)
                    sent_total += sum(1 for r in held if r.outcome == "sent")
                    held, last_look = [], now
                    if claiming and room > 0 and not claimed:
                        exhausted = True
                    for item in claimed:
                        self.in_flight.add(item.id)
                        self.jobs.put(item)
                if not self.in_flight and (exhausted or self.stop.is_set()):
                    break
                got = self._drain(timeout=0.0 if (claiming and room >= refill) else WAKE)
                if got and not held:
                    held_since = self.clock()
                held += got
                if self.clock() >= next_beat:
                    next_beat = self.clock() + HEARTBEAT
                    self._beat()
        except KeyboardInterrupt:
            self._halt("interrupted (Ctrl-C)")
            sent_total += self._finish_in_flight(held)
        finally:
            for _ in threads:
                self.jobs.put(None)
            for thread in threads:
                thread.join(timeout=60)
        if self.stop.is_set() and self.stopped_by is None:
            self.stopped_by = "interrupted (Ctrl-C or SIGTERM)"
        if self.options.shared and not self.stopped_by:
            # others may still hold deliveries: the campaign is done when the last one finishes
            self.others_in_flight = self.store.ledger.delivery_counts(self.campaign.id)[d.SENDING] > 0
        return sent_total

    def _flush_due(self, held: list[_Result], since: float, refill: int, claiming: bool, now: float) -> bool:
        """Whether to record what came back: after FLUSH at the latest (a result not recorded
        turns uncertain if the process is killed) and, with nothing more to claim, as soon
        as half the window or the whole of it is back."""
        if now - since >= FLUSH:
            return True
        return not claiming and (len(held) >= refill or len(held) == len(self.in_flight))

    def _not_handed(self, held: list[_Result]) -> bool:
        back = {r.delivery_id for r in held}
        return any(i not in self.handed and i not in back for i in self.in_flight)

    def _finish_in_flight(self, held: list[_Result]) -> int:
        sent = 0
        while True:
            sent += sum(1 for r in held if r.outcome == "sent")
            self._turn(held, claim=0)
            if not self.in_flight:
                return sent
            held = self._drain(timeout=0.5)

    def _beat(self) -> None:
        live = self.store.ledger.heartbeat(self.options.worker_name, self.campaign.id, LEASE)
        if self.options.shared:
            self.bucket.set_rate(self.total_rate / max(live, 1))
            self.store.ledger.recover_in_flight(self.campaign.id, lease=LEASE)

    def _halt(self, reason: str) -> None:
        with self._lock:
            if self.stopped_by is None:
                self.stopped_by = reason
        self.stop.set()

    def _drain(self, timeout: float) -> list[_Result]:
        batch: list[_Result] = []
        try:
            batch.append(self.results.get(timeout=timeout) if timeout > 0 else self.results.get_nowait())
            while True:
                batch.append(self.results.get_nowait())
        except queue.Empty:
            pass
        return batch

    def _turn(self, batch: list[_Result], *, claim: int) -> list[Claimed]:
        """Record `batch`, claim up to `claim` more and look again at the people of the
        deliveries waiting for a thread: one turn of the ledger."""
        for r in batch:
            if r.outcome == "pause":
                self._halt(r.detail)
        if self.stop.is_set():
            claim = 0

        def outcome(name: str) -> list[tuple[int, str]]:
            return [(r.delivery_id, r.detail) for r in batch if r.outcome == name]

        released = [r.delivery_id for r in batch if r.outcome in ("released", "pause")]
        results = Results(outcome("sent"), outcome("failed"), outcome("uncertain"), released, outcome("skipped"))
        for r in batch:
            self.in_flight.discard(r.delivery_id)
            self.handed.discard(r.delivery_id)
            self.unwanted.pop(r.delivery_id, None)
        recheck = sorted(i for i in self.in_flight if i not in self.handed)
        turn = self.store.ledger.turn(self.campaign.id, self.options.worker_name, claim, results, recheck)
        self.unwanted.update(turn.unwanted)
        if batch:
            self.progress.advance(len(results.sent) + len(results.failed) + len(results.uncertain))
        return turn.claimed

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
                        self.results.put(_Result(job.id, "pause", f"cannot open the provider: {exc}"))
                        continue
                self.results.put(self._send(provider, job))
        finally:
            if provider is not None:
                provider.close()

    def _send(self, provider, job: Claimed) -> _Result:
        try:
            message = self.composer.compose(
                job.variant, Recipient(job.email, job.name, job.token_key, job.id, job.attributes), utcnow()
            )
        except ComposeError as exc:
            return _Result(job.id, "failed", f"cannot compose: {exc}")
        attempt = 0
        while True:
            attempt += 1
            if not self.bucket.acquire(self.stop):
                return _Result(job.id, "released", "stopped before sending")
            # the person may have left since the claim: the ledger's last turn looked again
            if (reason := self.unwanted.get(job.id)) is not None:
                return _Result(job.id, "skipped", reason)
            self.handed.add(job.id)
            try:
                message_id = provider.send(message)
            except SendError as exc:
                verdict = self._judge(exc, attempt)
                if verdict is not None:
                    return _Result(job.id, verdict, str(exc) if verdict != "pause" else self._why(exc, attempt))
                if self.stop.wait(self.backoff.delay(attempt, exc.retry_after)):
                    return _Result(job.id, "released", "stopped before sending")
                continue
            with self._lock:
                self._transient_run = 0
            return _Result(job.id, "sent", message_id)

    def _judge(self, exc: SendError, attempt: int) -> str | None:
        """What a provider error means for this delivery: an outcome, or None to try again.

        Only an answer about this one message fails it; an error of the provider (down,
        refusing everything, or transient for many recipients in a row) pauses the campaign
        with nothing marked failed."""
        if exc.fatal:
            return "pause"
        if exc.uncertain:
            return "uncertain"
        if not (exc.retryable or exc.unavailable):
            return "failed"
        with self._lock:
            self._transient_run += 1
            run = self._transient_run
        limit = UNAVAILABLE_ATTEMPTS if exc.unavailable else self.options.max_attempts
        return "pause" if attempt >= limit or run >= TRANSIENT_RUN else None

    def _why(self, exc: SendError, attempt: int) -> str:
        if exc.fatal:
            return str(exc)
        return f"{exc} (still failing after {attempt} attempts)"
