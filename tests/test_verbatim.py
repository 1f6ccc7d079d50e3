"""Code an answer quotes must stand verbatim in the passages (pipeline/verbatim.py)."""

from __future__ import annotations

from enclave.pipeline.entities import Hit
from enclave.pipeline.verbatim import verbatim

HANDBOOK = (
    "Run `lumenctl backup --target /srv/backup` every night. Restoring is done with "
    "`lumenctl restore` while the service is stopped. The configuration is in "
    "/etc/lumen/lumen.toml."
)


def hit(text: str) -> Hit:
    return Hit(1, 1, "Handbook", "/handbook.md", 0, text, None, (), 0, len(text))


def test_a_command_joined_to_another_commands_options_becomes_the_passages_own() -> None:
    mended = verbatim("`lumenctl restore --target /srv/backup` [1]", [hit(HANDBOOK)])
    assert mended == "`lumenctl restore` [1]"


def test_code_that_stands_in_a_passage_is_kept_as_written() -> None:
    for answer in (
        "Run `lumenctl backup --target /srv/backup` nightly [1]",
        "in `/etc/lumen/lumen.toml` [1]",  # in the passage without backticks
        "every night [1]",  # no code at all
    ):
        assert verbatim(answer, [hit(HANDBOOK)]) == answer
    # Spacing inside the quote does not matter.
    assert verbatim("`lumenctl  restore`", [hit(HANDBOOK)]) == "`lumenctl restore`"


def test_code_that_stands_nowhere_has_no_answer() -> None:
    assert verbatim("`lumenctl purge --all` [1]", [hit(HANDBOOK)]) is None  # one word shared
    assert verbatim("`/etc/lumen/server.toml` [1]", [hit(HANDBOOK)]) is None
    assert verbatim("`lumenctl restore`", [hit("Restore from the last backup.")]) is None
    assert verbatim("`lumenctl restore`", []) is None
