"""End to end in headless Chromium (Debian's package, driven by Playwright; no download)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.server_harness import PASSWORDS, Running

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


def signed_in(browser: Browser, server: Running, user: str) -> Page:
    page = browser.new_context(locale="en-US").new_page()
    page.goto(f"{server.url}/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORDS[user])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}/chat")
    return page


def ask(page: Page, question: str) -> list[str]:
    page.get_by_label("Your question").fill(question)
    page.get_by_role("button", name="Ask").click()
    answer = page.locator('[data-testid="answer"][data-done="true"]').last
    expect(answer).to_be_visible(timeout=120_000)
    return answer.locator("details summary").all_inner_texts()


def test_two_users_same_question_different_sources(browser: Browser, server: Running) -> None:
    question = "How long does the audit log keep entries?"
    alice = signed_in(browser, server, "alice")
    alice_sources = ask(alice, question)
    assert any("audit-log.html" in s for s in alice_sources)
    # The question moved above its answer; the box is empty for the next one, and Ctrl+Enter
    # (which the page says) asks it.
    box = alice.get_by_label("Your question")
    expect(box).to_have_value("")
    expect(box).to_have_accessible_description("Ctrl+Enter asks.")
    box.fill("Where is the audit log exported?")
    box.press("Control+Enter")
    expect(alice.locator(".message.user").last).to_have_text("Where is the audit log exported?")
    answered = alice.locator('[data-testid="answer"][data-done="true"]')
    expect(answered).to_have_count(2, timeout=120_000)
    # bob may not read the audit-log page: an honest abstention, nothing cited.
    bob = signed_in(browser, server, "bob")
    bob_sources = ask(bob, question)
    assert not any("audit-log.html" in s for s in bob_sources)
    expect(bob.locator('[data-testid="abstained"]').last).to_be_visible()
    expect(bob.locator('[data-testid="answer"] .answer').last).to_contain_text(
        "None of your documents answers this."
    )
    # A citation expands to title and excerpt, with the supporting sentence highlighted.
    first = alice.locator('[data-testid="sources"] details').first
    first.locator("summary").click()
    expect(first.locator(".excerpt")).to_contain_text("400 days")
    expect(first.locator('[data-testid="quote"]')).to_contain_text("400")
    ARTIFACTS.mkdir(exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)
    assert (ARTIFACTS / "chat.png").stat().st_size > 10_000


def test_upload_then_find_it(browser: Browser, server: Running, tmp_path: Path) -> None:
    note = tmp_path / "parking-rules.md"
    note.write_text("# Parking rules\n\nVisitors park in the quarzite lot behind hall 3.")
    bob = signed_in(browser, server, "bob")
    bob.goto(f"{server.url}/library")
    bob.get_by_label("File").set_input_files(str(note))
    bob.get_by_label("Who may read it").fill("group:hr")
    bob.get_by_role("button", name="Upload a document").click()
    expect(bob.locator("#documents")).to_contain_text("Parking rules", timeout=60_000)
    bob.goto(f"{server.url}/chat")
    sources = ask(bob, "Where do visitors park, in the quarzite lot?")
    assert any("parking-rules.md" in s for s in sources)


def test_restricted_document_cannot_be_opened_by_url(browser: Browser, server: Running) -> None:
    alice = signed_in(browser, server, "alice")
    alice.goto(f"{server.url}/library")
    link = alice.get_by_role("link", name="Audit log — Lumen feature guide")
    href = link.get_attribute("href")
    bob = signed_in(browser, server, "bob")
    response = bob.goto(f"{server.url}{href}")
    assert response is not None and response.status == 404
    assert "400 days" not in bob.content()


def test_german_interface_and_keyboard(browser: Browser, server: Running) -> None:
    page = signed_in(browser, server, "alice")
    page.get_by_role("link", name="DE").click()
    expect(page.get_by_label("Ihre Frage")).to_be_visible()
    page.get_by_label("Ihre Frage").focus()
    page.keyboard.type("Was steht im Produkthandbuch zur Wartung?")
    page.keyboard.press("Control+Enter")
    expect(page.locator('[data-testid="answer"][data-done="true"]')).to_be_visible(timeout=120_000)


def test_admin_changes_an_access_list_in_the_ui(browser: Browser, server: Running) -> None:
    root = signed_in(browser, server, "root")
    root.goto(f"{server.url}/admin")
    row = root.locator("#admin-documents tr", has_text="remote-work-policy.txt")
    expect(row.locator(".acl")).to_have_text("group:hr")
    root.once("dialog", lambda dialog: dialog.accept("group:hr, user:alice"))
    row.get_by_role("button", name="Access list").click()
    expect(row.locator(".acl")).to_have_text("group:hr, user:alice")
    alice = signed_in(browser, server, "alice")
    alice.goto(f"{server.url}/library")
    expect(alice.locator("#documents")).to_contain_text("remote-work-policy.txt")
