"""The rehearsal provider: each message written as an .eml file, nothing sent anywhere.

A message holds its recipient's address and name: the outbox folder and each campaign's
folder in it are 0700, and every file 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from newsletter.message.composer import Outgoing


def message_file(delivery_id: int) -> str:
    """The file a delivery's message is written to, in its campaign's outbox folder."""
    return f"{delivery_id:08d}.eml"


def erase(outbox: Path, delivery_ids: list[int]) -> int:
    """Delete the messages of these deliveries from every campaign folder of the outbox."""
    names = {message_file(i) for i in delivery_ids}
    erased = 0
    if names and outbox.is_dir():
        for path in outbox.glob("*/*.eml"):
            if path.name in names:
                path.unlink()
                erased += 1
    return erased


class Outbox:
    def __init__(self, folder: Path):
        self.folder = folder

    def send(self, message: Outgoing) -> str:
        name = message_file(message.delivery_id) if message.delivery_id else f"{message.message_id.strip('<>')}.eml"
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=self.folder)  # 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(message.data)
            os.replace(tmp, self.folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return message.message_id

    def close(self) -> None:
        pass


class OutboxFactory:
    name = "outbox"

    def __init__(self, folder: Path):
        self.folder = folder

    def max_rate(self) -> float | None:
        return None

    def open(self) -> Outbox:
        private_folder(self.folder)
        return Outbox(self.folder)


def private_folder(campaign_folder: Path) -> None:
    """The campaign's folder and the outbox folder holding it, made (or narrowed to) 0700."""
    campaign_folder.parent.parent.mkdir(parents=True, exist_ok=True)
    for folder in (campaign_folder.parent, campaign_folder):
        folder.mkdir(mode=0o700, exist_ok=True)
        mode = stat.S_IMODE(folder.stat().st_mode)
        if mode & 0o077:
            folder.chmod(mode & 0o700)
