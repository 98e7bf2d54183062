"""Reading an HTML page the way the report's tests need: its elements and the text of its
sections (`parse`), and whatever in it a browser would fetch or run
(`self_contained_problems`)."""

from __future__ import annotations

import re
from html.parser import HTMLParser


class Page(HTMLParser):
    """What a check of the page needs: elements, their attributes, the text per section."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.sections: list[str] = []
        self.text: dict[str, list[str]] = {}
        self._section: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        if tag == "section":
            self._section = found.get("id") or "?"
            self.sections.append(self._section)

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None

    def handle_data(self, data: str) -> None:
        if self._section and data.strip():
            self.text.setdefault(self._section, []).append(data.strip())

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def self_contained_problems(text: str) -> list[str]:
    """Whatever in the page a browser would fetch or run."""
    page = parse(text)
    problems = []
    for tag in ("script", "link", "img", "iframe", "object", "embed", "image", "use", "audio"):
        if tag in ("use", "image"):
            for t, attrs in page.tags:
                href = attrs.get("href") or attrs.get("xlink:href") or ""
                if t == tag and not href.startswith("#"):
                    problems.append(f"<{tag}> refers outside the page: {href}")
        elif page.count(tag):
            problems.append(f"the page holds <{tag}>")
    for tag, attrs in page.tags:
        for name in ("src", "href", "srcset", "poster", "data", "action"):
            value = attrs.get(name) or ""
            if value and not value.startswith("#"):
                problems.append(f"<{tag} {name}={value!r}>")
    # url(#clip) names a part of the page itself; any other url( would be fetched.
    for pattern in (r"https?://", r"file:", r"//[a-z0-9]", r"@import", r"url\s*\(\s*(?![\"']?#)"):
        if re.search(pattern, text, re.IGNORECASE):
            problems.append(f"the page names {pattern!r}")
    return problems
