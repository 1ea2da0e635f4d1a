from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
YEAR_END = ROOT / "issues" / "2022-12-year-end"


# What `scripts/test --fast` leaves out: tests that need a PostgreSQL server, Chromium,
# SpamAssassin or Dovecot, and the kill trials. CI runs everything.
SLOW_MARKERS = ("postgres", "browser", "spamassassin", "dovecot", "trials")


# Whole-process runs of several seconds each (send faults and races, end-to-end CLI runs): the
# full suite runs them, the fast tier leaves them out with the trials. Of a parametrised test, one
# case stays in the fast tier (the bilingual layout, the refused sender, the closed port).
FULL_SUITE_ONLY = {
    "test_campaign_faults.py::test_two_sends_started_together_one_refusal_no_traceback",
    "test_campaign_faults.py::test_people_who_leave_during_a_send_are_skipped_and_the_rest_get_it",
    "test_campaign_faults.py::test_refused_addresses_fail_alone_and_retry_failed_sends_them",
    "test_campaign_faults.py::test_a_connection_dropped_before_354_is_retried_not_uncertain",
    "test_campaign_faults.py::test_ses_unreachable_pauses_then_send_again_finishes",
    "test_smtp.py::test_smtp_one_message_per_active_subscriber[per-recipient]",
    "test_smtp.py::test_smtp_refused_sender_stops_the_campaign[login_refused]",
    "test_smtp.py::test_smtp_throttling_through_the_cli",
    "test_projects_and_schema.py::test_init_then_new_builds_and_check_lists_the_placeholders",
    "test_web.py::test_200_concurrent_unsubscribes_and_200_concurrent_page_views",
    "test_deploy.py::test_poll_errors_are_one_line[no credentials]",
    "test_deploy.py::test_poll_errors_are_one_line[not a queue URL]",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if f"{item.path.name}::{item.name}" in FULL_SUITE_ONLY:
            item.add_marker(pytest.mark.trials)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgres" in getattr(item, "fixturenames", ()) or params.get("store_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)
        if "served" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
        if "imap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.dovecot)


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the project root, as the team does; messages name paths relative to it."""
    monkeypatch.chdir(ROOT)
    return ROOT


@pytest.fixture(scope="session")
def year_end_build():
    from newsletter.letter.render import build_issue

    return build_issue(YEAR_END)


SECRET = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
# A throwaway project sends "for real" (SMTP, SES) only to loopback servers, but `send` refuses
# the repository's placeholder domain for a real send: projects use the organisation's own.
DOMAIN = "news.cssrweb.org"


class Project:
    """A throwaway project: newsletter.toml, the year-end issue, its own database and outbox."""

    def __init__(self, root: Path, extra_config: str = ""):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        base = (ROOT / "newsletter.toml").read_text(encoding="utf-8").replace("news.example.org", DOMAIN)
        base = base.replace('layout = "bilingual"', f'layout = "bilingual"\ntemplates = "{ROOT / "templates"}"', 1)
        self.config_path = root / "newsletter.toml"
        self.config_path.write_text(base + "\n" + extra_config, encoding="utf-8")
        (root / "issues").mkdir(exist_ok=True)
        self.issue = root / "issues" / "2022-12-year-end"
        if not self.issue.exists():
            self.issue.symlink_to(YEAR_END, target_is_directory=True)

    @property
    def env(self) -> dict[str, str]:
        import os

        return {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}

    def config(self):
        from newsletter.config import load_config

        return load_config(self.config_path)

    def store(self):
        from newsletter.store import Store

        return Store.open(self.config().store_url)

    def write_subscribers(self, count: int, *, name: str = "subscribers.csv", arabic_every: int = 2) -> Path:
        """`count` fictional people at example.org / example.net, every other one Arabic."""
        lines = ["email,name,language"]
        for n in range(count):
            language = "ar" if n % arabic_every == 0 else "en"
            domain = "example.org" if n % 3 else "example.net"
            person = f"مشارك {n}" if language == "ar" else f"Participant {n}"
            lines.append(f"person{n:06d}@{domain},{person},{language}")
        path = self.root / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    return SECRET


@pytest.fixture
def project(tmp_path: Path, secret_env) -> Project:
    return Project(tmp_path / "project")


@pytest.fixture
def project_any_store(tmp_path: Path, secret_env, store_url: str) -> Project:
    """A project whose store is SQLite in one run of the test and PostgreSQL in the other."""
    extra = "" if store_url.startswith("sqlite") else f'[store]\nurl = "{store_url}"\n'
    return Project(tmp_path / "project", extra_config=extra)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL 15 for the whole run (never skipped: a missing server fails)."""
    from postgres import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


_databases = iter(range(1, 10_000))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path) -> str:
    """Each store test runs against both SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    server = request.getfixturevalue("postgres")
    return server.create_database(f"test_{next(_databases)}")


# --- AWS on loopback: moto in server mode -------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url():
    """A real moto server (SES, SNS, SQS over HTTP) on a free loopback port, per test module."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials only: nothing from the environment, a profile or a real config file."""
    for name in (
        "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SESV2", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SNS",
        "AWS_DEFAULT_REGION", "AWS_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def reset_moto(url: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).read()
