"""Everything checked before a send writes or sends anything: the numbers, the provider, every
header of every variant, placeholder addresses for a real send, the pre-send checks, the key,
the lists."""

from __future__ import annotations

from newsletter.config.delivery import PROVIDERS
from newsletter.editor.checks import blocking_problems, real_send_problems
from newsletter.errors import BadInput, Problem
from newsletter.letter.build import Build
from newsletter.message.composer import composable
from newsletter.sending.campaign import Ready, SendOptions, SendRequest
from newsletter.store import Store

CHOOSE_PROVIDER = (
    "no provider chosen: --provider outbox rehearses (each message written as a file, nothing sent), "
    "--provider smtp or ses sends for real; or set send.provider in newsletter.toml"
)
SKIP_CHECKS = "these checks failed (newsletter check shows them all); fix them, or send anyway with --skip-checks"


def prepare(build: Build, request: SendRequest) -> Ready:
    """Check the send `request` asks for, before anything is written; BadInput lists every problem."""
    config = build.config
    check_numbers(rate=request.rate, threads=request.threads, workers=request.workers)
    provider = request.provider or config.send.provider
    if provider is None or provider not in PROVIDERS:
        raise BadInput.single("--provider", CHOOSE_PROVIDER)
    if request.workers > 1 and not config.store_url.startswith("postgresql"):
        message = 'several workers need PostgreSQL (store.url = "postgresql://…"); SQLite allows one'
        raise BadInput.single("--workers", message)
    problems: list[Problem] = composable(build)
    if provider != "outbox":
        problems += real_send_problems(config)
    if not request.skip_checks and not problems:
        # SpamAssassin takes seconds a variant: its score is `newsletter check`'s to give
        failed = blocking_problems(build, spamassassin=False)
        problems += [*failed, Problem("--skip-checks", None, SKIP_CHECKS)] if failed else []
    if problems:
        raise BadInput(problems)
    store = Store.open(config.store_url)
    secret = store.keys.data_key()
    lists = tuple(dict.fromkeys(request.lists))
    if missing := unknown_lists(lists, [name for name, _ in store.campaigns.lists()]):
        raise missing
    options = SendOptions(
        lists=lists,
        provider=provider,
        rate=request.rate or config.send.rate,
        threads=request.threads or config.send.threads,
        max_attempts=config.send.max_attempts,
        resend_uncertain=request.resend_uncertain,
        retry_failed=request.retry_failed,
        again=request.again,
        shared=request.workers > 1,
    )
    return Ready(build, store, options, secret)


def check_numbers(*, rate: float | None, threads: int | None, workers: int = 1) -> None:
    problems = []
    if rate is not None and rate <= 0:
        problems.append(Problem("--rate", None, f"must be positive, got {rate}"))
    if threads is not None and threads < 1:
        problems.append(Problem("--threads", None, f"must be at least 1, got {threads}"))
    if workers < 1:
        problems.append(Problem("--workers", None, f"must be at least 1, got {workers}"))
    if problems:
        raise BadInput(problems)


def unknown_lists(wanted: tuple[str, ...], known: list[str]) -> BadInput | None:
    missing = [name for name in wanted if name not in known]
    if not missing:
        return None
    lists = ", ".join(known) or "none yet"
    return BadInput([Problem("--list", None, f"no list named {name!r} (lists: {lists})") for name in missing])
