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


INSTALL = (
    "Install the package with `apt install lumen-server`, then run `lumenctl init` to create "
    "the configuration in `/etc/lumen/lumen.toml`."
)


def test_a_how_to_answer_gives_the_command_the_passages_give_for_the_action_asked() -> None:
    sources = [hit(HANDBOOK), hit(INSTALL)]
    backup = "`lumenctl backup --target /srv/backup` [1]"
    assert verbatim(backup, sources, "How do I restore a backup of Lumen?") == (
        "`lumenctl restore` [1]"  # "Restoring is done with `lumenctl restore`"
    )
    # Of two commands in the sentence naming the action, the one standing nearest it.
    install = "Run `apt install lumen-server` [2]"
    asked = "How do I create the Lumen configuration?"
    assert verbatim(install, sources, asked) == "Run `lumenctl init` [2]"
    assert verbatim("`lumenctl init` [2]", sources, "how to create the configuration") == (
        "`lumenctl init` [2]"
    )
    assert verbatim(install, sources, "How do I install Lumen?") == install


def test_a_how_to_answer_is_left_where_no_sentence_names_the_action_beside_code() -> None:
    sources = [hit(HANDBOOK), hit(INSTALL)]
    backup = "`lumenctl backup --target /srv/backup` [1]"
    # "make" stands in no sentence; a question that is no how-to names no action.
    assert verbatim(backup, sources, "How do I make a backup of Lumen?") == backup
    assert verbatim(backup, sources, "Which command restores a backup?") == backup
    assert verbatim("every night [1]", sources, "How do I restore a backup?") == "every night [1]"


def test_a_how_to_answer_matching_none_of_several_commands_for_the_action_has_none() -> None:
    twice = hit("To restore the dashboards run `lumenctl restore --dashboards`.")
    sources = [hit(HANDBOOK), twice]
    backup = "`lumenctl backup --target /srv/backup` [1]"
    assert verbatim(backup, sources, "How do I restore a backup?") is None
    assert verbatim("`lumenctl restore` [1]", sources, "How do I restore a backup?") == (
        "`lumenctl restore` [1]"
    )
    # A German how-to question's infinitive is its action.
    german = hit("Zum Wiederherstellen dient `lumenctl restore`; `lumenctl backup` sichert.")
    answer = "`lumenctl backup` [1]"
    assert verbatim(answer, [german], "Wie kann ich ein Backup wiederherstellen?") == (
        "`lumenctl restore` [1]"
    )
