"""The maildirs the back office reads (customer replies, bounced notices): one way to open them.

A command takes `--maildir DIR` and reads the messages in new/, filing each in cur/ (flagged seen) once
handled, so the next run reads only what arrived since.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import CommandError, CommandParser


def add_maildir_argument(parser: CommandParser) -> None:
    parser.add_argument("--maildir", required=True, help="path of the maildir (with cur/ new/ tmp/)")


def open_maildir(path: str | Path) -> mailbox.Maildir:
    """The maildir at `path`; a clear error when it is not one (nothing is created)."""
    path = Path(path)
    if not (path / "cur").is_dir() or not (path / "new").is_dir():
        raise CommandError(f"{path} is not a maildir (needs cur/ and new/)")
    return mailbox.Maildir(path, factory=None, create=False)


def new_messages(box: mailbox.Maildir) -> Iterator[tuple[str, bytes]]:
    """(key, raw bytes) of each message in new/, in key order; each is filed in cur/ (seen) when the
    caller asks for the next one, i.e. once it was handled (one whose handling raised stays in new/)."""
    keys = sorted(key for key in box.iterkeys() if box.get_message(key).get_subdir() == "new")
    for key in keys:
        yield key, box.get_bytes(key)
        message = box.get_message(key)
        message.set_subdir("cur")
        message.add_flag("S")
        box[key] = message
