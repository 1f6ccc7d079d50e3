"""The text of an HTML page as a browser shows it: blocks in document order, without chrome."""

from __future__ import annotations

import warnings

from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning
from bs4.element import PreformattedString, Tag

HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# Elements whose text is a block of its own: text directly inside a <div> is as much a
# paragraph as a <p> (pages written by hand or exported from a wiki often have no <p> at all).
BLOCKS = frozenset(
    (
        *HEADINGS,
        *("p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "figcaption", "caption"),
        *("div", "section", "article", "main", "header", "footer", "aside", "form", "address"),
        *("ul", "ol", "dl", "table", "tr", "figure", "details", "summary", "fieldset", "body"),
    )
)
CHROME_ROLES = ("navigation", "banner", "search", "contentinfo")


def page_blocks(markup: str) -> tuple[str, list[tuple[str, str]]]:
    """(the <title>, (element name, text) of each block of text), in document order."""
    with warnings.catch_warnings():
        # XHTML (javadoc, DocBook) is read as the HTML it is meant to be; the warning that it
        # looks like XML would only land in the middle of an ingest's progress bar.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(markup, "lxml")
    _strip_chrome(soup)
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    return title, _html_blocks(soup)


def _strip_chrome(soup: BeautifulSoup) -> None:
    """Remove what is not the page's content: scripts, menus, and the page chrome of a saved
    intranet page (what declares itself navigation, banner, search or page footer, and a
    footer outside the article: "© 2026 … · Impressum · Datenschutz")."""
    for junk in soup(["script", "style", "noscript", "template", "nav"]):
        junk.decompose()
    for chrome in soup.find_all(attrs={"role": list(CHROME_ROLES)}):
        chrome.decompose()
    for footer in soup.find_all("footer"):
        if footer.find_parent(("article", "main")) is None:
            footer.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")


def _html_blocks(soup: BeautifulSoup) -> list[tuple[str, str]]:
    """(element name, text) of each run of text under one block element, in document order.
    Inline markup joins its text as a browser shows it ("Ge<b>halt</b>" is "Gehalt")."""
    blocks: list[tuple[str, str]] = []
    current: Tag | None = None
    parts: list[str] = []

    def flush() -> None:
        if current is None:
            return
        joined = "".join(parts)
        text = joined.strip("\n") if current.name == "pre" else " ".join(joined.split())
        if text.strip():
            blocks.append((current.name, text))

    for string in soup.find_all(string=True):
        if isinstance(string, PreformattedString):
            continue  # comments, the doctype
        # Walked by hand: find_parent(BLOCKS) builds a matcher for the 40 names on every call,
        # which made a 300 kB page of highlighted source code take 3 s to read.
        block = next((p for p in string.parents if p.name in BLOCKS), None)
        if block is None:
            continue  # <head>: the title is read apart
        if block is not current:
            if not string.strip():
                continue  # whitespace between elements starts no block
            flush()
            current, parts = block, []
        parts.append(str(string))
    flush()
    return blocks
