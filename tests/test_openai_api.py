"""The OpenAI-compatible API through the official `openai` client, over real HTTP."""

from __future__ import annotations

import openai
import pytest

from enclave.pipeline.entities import Usage
from enclave.pipeline.llm import OpenAICompatibleLLM
from enclave.pipeline.prompting import build_prompt_without_sources
from tests.server_harness import ENGINEERING_FILES, Running

# Strings that occur only in engineering documents.
ENGINEERING_ONLY = ["lumenctl", "RFC 5424", "Download CSV", "Wartungsfenster", "OPC UA"]


def client_for(server: Running, user: str) -> openai.OpenAI:
    _, secret = server.accounts.create_token(user, "openai-test")
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=secret, max_retries=0)


def test_models_and_bad_tokens(server: Running) -> None:
    ids = {m.id for m in client_for(server, "alice").models.list()}
    assert ids == {"enclave", "enclave-no-search"}
    stranger = openai.OpenAI(base_url=f"{server.url}/v1", api_key="enc_forged", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()


def test_chat_completion_with_sources(server: Running) -> None:
    alice = client_for(server, "alice")
    response = alice.chat.completions.create(
        model="enclave",
        messages=[{"role": "user", "content": "How long does the audit log keep entries?"}],
    )
    content = response.choices[0].message.content
    assert "Sources:" in content and "audit-log.html" in content
    extra = response.model_extra["enclave"]
    assert extra["used_search"] is True
    assert extra["sources"][0]["file_name"] == "audit-log.html"
    # Tokens as the embedded llama.cpp counted them.
    assert response.usage is not None and response.usage.prompt_tokens > 100
    assert 0 < response.usage.completion_tokens < 200
    assert response.usage.total_tokens == (
        response.usage.prompt_tokens + response.usage.completion_tokens
    )


def test_streamed_chat_and_no_search_model(server: Running) -> None:
    alice = client_for(server, "alice")
    stream = alice.chat.completions.create(
        model="enclave",
        messages=[{"role": "user", "content": "What is new in Lumen 4.2?"}],
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(chunks) > 3 and "Sources:" in text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["enclave"]["sources"]
    assert all(c.usage is None for c in chunks)  # not asked for
    counted = list(
        alice.chat.completions.create(
            model="enclave",
            messages=[{"role": "user", "content": "What is new in Lumen 4.2?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    # As OpenAI sends it: a last chunk without choices that carries the usage.
    assert counted[-1].choices == [] and counted[-1].usage is not None
    assert counted[-1].usage.prompt_tokens > 100 and counted[-1].usage.completion_tokens > 0
    plain = alice.chat.completions.create(
        model="enclave-no-search", messages=[{"role": "user", "content": "Say hello."}]
    )
    assert plain.model_extra["enclave"]["used_search"] is False
    assert "Sources:" not in plain.choices[0].message.content
    with pytest.raises(openai.NotFoundError):
        alice.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])


def test_usage_reaches_an_enclave_that_uses_this_server_as_its_llm(server: Running) -> None:
    """The OpenAI backend reads the usage chunk a server sends when asked for it."""
    _, secret = server.accounts.create_token("alice", "upstream")
    upstream = OpenAICompatibleLLM(f"{server.url}/v1", "enclave-no-search", api_key=secret)
    usage = Usage()
    text = "".join(upstream.stream(build_prompt_without_sources("Say hello."), 32, usage))
    assert text.strip() and not usage.unknown
    assert usage.prompt_tokens > 5 and 0 < usage.completion_tokens <= 200


def test_embeddings(server: Running) -> None:
    result = client_for(server, "bob").embeddings.create(
        model="enclave", input=["first text", "zweiter Text"]
    )
    assert [len(d.embedding) for d in result.data] == [384, 384]
    # The word pieces the model read: at least one per word, fewer than one per letter.
    assert result.usage.prompt_tokens == result.usage.total_tokens >= 4


@pytest.mark.parametrize("stream", [False, True])
def test_outsider_token_never_gets_group_content(server: Running, stream: bool) -> None:
    """bob is not in engineering: no response, streamed or not, carries its documents."""
    bob = client_for(server, "bob")
    questions = [
        "How long does the audit log keep entries?",
        "How do I back up Lumen with lumenctl?",
        "Which format does syslog forwarding use?",
        "Wann ist das Wartungsfenster?",
    ]
    for question in questions:
        for search in (None, "audit log CSV download lumenctl"):
            response = bob.chat.completions.create(
                model="enclave",
                messages=[{"role": "user", "content": question}],
                stream=stream,
                extra_body={"enclave": {"search": search, "k": 8}},
            )
            if stream:
                chunks = list(response)
                text = "".join(c.choices[0].delta.content or "" for c in chunks)
                extra = chunks[-1].model_extra["enclave"]
            else:
                text = response.choices[0].message.content
                extra = response.model_extra["enclave"]
            files = {s["file_name"] for s in extra["sources"]}
            files |= {c["file_name"] for c in extra["citations"]}
            assert not files & ENGINEERING_FILES, (question, files)
            asked = f"{question} {search}".lower()
            for secret in ENGINEERING_ONLY:
                assert all(secret not in s["text"] for s in extra["sources"])
                if secret.lower() not in asked:  # the model may echo the question's words
                    assert secret not in text


def test_embeddings_as_floats_match_the_model(server: Running) -> None:
    import httpx
    import numpy as np

    _, secret = server.accounts.create_token("bob", "raw")
    response = httpx.post(
        f"{server.url}/v1/embeddings",
        json={"input": "audit log", "encoding_format": "float"},
        headers={"Authorization": f"Bearer {secret}"},
    ).json()
    vector = np.array(response["data"][0]["embedding"])
    expected = server.enclave.embedder.embed_passages(["audit log"])[0]
    assert np.allclose(vector, expected, atol=1e-5)
