"""Access control as an invariant: random users, groups, memberships and documents.

For every user and query: no search hit, prompt chunk or citation comes from a document the
user may not read, by each method of dense search; every permitted exact-match document is
findable; and row-level security alone (without the query filter) hides the same documents.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enclave.pipeline.access import Principal
from enclave.pipeline.answering import Assistant
from enclave.pipeline.entities import Usage
from enclave.pipeline.prompting import Prompt
from enclave.pipeline.store import Viewer
from enclave.pipeline.wiring import Enclave
from tests.conftest import sql

USERS = [f"user{i}" for i in range(5)]
GROUPS = [f"group{i}" for i in range(3)]
PRINCIPALS = [Principal("user", u) for u in USERS] + [Principal("group", g) for g in GROUPS]


class RecordingLLM:
    """Plumbing fake: remembers the prompt, cites every source it was shown."""

    name = "recording"

    def __init__(self) -> None:
        self.prompts: list[Prompt] = []

    def stream(self, prompt: Prompt, max_tokens: int, usage: Usage | None = None) -> Iterator[str]:
        self.prompts.append(prompt)
        yield " ".join(f"This note mentions [{n}]." for n in range(1, prompt.source_count + 1))


@st.composite
def worlds(draw: st.DrawFn) -> tuple[dict[str, set[str]], list[set[Principal]]]:
    memberships = {u: draw(st.sets(st.sampled_from(GROUPS))) for u in USERS}
    acls = draw(st.lists(st.sets(st.sampled_from(PRINCIPALS), max_size=3), min_size=1, max_size=7))
    return memberships, acls


# (exact_search_limit, signs_search_limit): an exact scan, the vectors' signs re-scored, HNSW.
DENSE_METHODS = [(10**9, 10**9), (0, 10**9), (0, 0)]
WORDS = ["zorblax", "quimbly", "fendrick", "splorgan", "wumpetty", "grindle", "moxtrel"]


def reset(enclave: Enclave) -> None:
    sql(enclave.store, "truncate principals, documents restart identity cascade")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_no_user_ever_sees_what_they_may_not_read(
    tmp_path: Path, enclave: Enclave, world: tuple[dict[str, set[str]], list[set[Principal]]]
) -> None:
    check_world(enclave, tmp_path, world)


def check_world(
    enclave: Enclave, tmp_path: Path, world: tuple[dict[str, set[str]], list[set[Principal]]]
) -> None:
    """Build the world, then check every user's search, answers and RLS against it."""
    memberships, acls = world
    reset(enclave)
    folder = tmp_path / "corpus"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for user, groups in memberships.items():
        enclave.store.add_user(user, sorted(groups))
    doc_ids: dict[str, int] = {}
    for index, acl in enumerate(acls):
        word = WORDS[index]
        path = folder / f"doc{index}.md"
        path.write_text(f"# Note {index}\n\nThis note mentions {word} and the shared topic.")
        report = enclave.ingestor.ingest([path], sorted(acl))
        doc_ids[word] = report.files[0].document_id  # type: ignore[assignment]
    acl_of = {doc_ids[WORDS[i]]: acl for i, acl in enumerate(acls)}

    store, shipped = enclave.store, enclave.store.settings
    llm = RecordingLLM()
    assistant = Assistant(enclave.retriever, llm, context_tokens=4096, max_answer_tokens=64)
    for user in [*USERS, "stranger"]:
        mine = {Principal("user", user)} | {
            Principal("group", g) for g in memberships.get(user, ())
        }
        permitted = {d for d, acl in acl_of.items() if acl & mine}
        viewer = enclave.store.viewer(user)

        listed = {d.document_id for d in enclave.store.visible_documents(viewer)}
        assert listed == permitted

        for word, query in itertools.chain(
            ((w, w) for w in doc_ids), [(None, "the shared topic of every note")]
        ):
            for exact, signs in DENSE_METHODS:
                limits = {"exact_search_limit": exact, "signs_search_limit": signs}
                store.settings = replace(shipped, **limits)
                hits = enclave.retriever.search(viewer, query, k=5)
                assert {h.document_id for h in hits} <= permitted
                if word is not None and doc_ids[word] in permitted:
                    assert doc_ids[word] in {h.document_id for h in hits}, (user, word)
            store.settings = shipped

            asked = len(llm.prompts)
            answer = assistant.ask(viewer, f"What about {query}?", k=4)
            assert {h.document_id for h in answer.sources} <= permitted
            assert {c.hit.document_id for c in answer.citations} <= permitted
            if not answer.sources:  # nothing readable matched: the model is not asked
                assert answer.abstained and len(llm.prompts) == asked
                continue
            assert len(llm.prompts) == asked + 1
            shown = llm.prompts[-1].completion.rsplit("\nQuestion:", 1)[0]  # the sources
            for other_word, other_id in doc_ids.items():
                if other_id not in permitted:
                    assert other_word not in shown

        # Row-level security on its own: no query filter, just the policy.
        with enclave.store.reading_as(viewer) as cur:
            cur.execute("select distinct document_id from chunks")
            assert {r["document_id"] for r in cur.fetchall()} == permitted
            cur.execute("select id from documents")
            assert {r["id"] for r in cur.fetchall()} == permitted
            cur.execute("select distinct document_id from postings")
            assert {r["document_id"] for r in cur.fetchall()} == permitted
            cur.execute("select distinct document_id from chunk_signs")
            assert {r["document_id"] for r in cur.fetchall()} == permitted


def test_rls_blocks_a_query_that_forgets_the_filter(tmp_path: Path, enclave: Enclave) -> None:
    """A reader claiming every principal id in the filter still only gets what RLS allows."""
    enclave.store.add_user("eve", [])
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nThe launch code is swordfish.")
    enclave.ingestor.ingest([secret], [Principal("group", "board")])
    all_ids = [r["id"] for r in sql(enclave.store, "select id from principals")]
    forged = Viewer("eve", all_ids)  # a bug that resolved eve's principals wrongly
    assert enclave.retriever.search(forged, "launch code swordfish", k=5) == []
    assert enclave.store.visible_documents(forged) == []
