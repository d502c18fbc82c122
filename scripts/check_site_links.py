"""Check every link inside the built website: each local href/src names a file that exists, and each #anchor an id on that page.

    python scripts/check_site_links.py [_build/site]      # what `make site-check` runs after the build

Links that leave the site (https:, mailto:, ...) are not followed: the check runs offline. Standard
library only. Exit status 1, with one line per broken link, when anything is broken.
"""
from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class Page(HTMLParser):
    """The ids a page defines and the local links it makes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        self.links += [attrs[name] for name in ("href", "src") if attrs.get(name)]


def read(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def broken_links(site: Path) -> list[str]:
    # _static/ holds the theme's files (some are template fragments, not pages): links into it are
    # checked, links out of it are not.
    pages = {p.resolve(): read(p) for p in sorted(site.rglob("*.html"))}
    static = (site / "_static").resolve()
    found = []
    for path, page in pages.items():
        for link in page.links if not path.is_relative_to(static) else ():
            parts = urlsplit(link)
            if parts.scheme or parts.netloc:  # another site (https:, mailto:, data:, javascript:)
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(site.resolve())}: {link}"
            if not target.is_file():
                found.append(f"{where} -> no such file")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in pages[target].ids:
                found.append(f"{where} -> no id {parts.fragment!r} on that page")
    return found


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    site = Path(args[0] if args else "_build/site")
    if not (site / "index.html").is_file():
        print(f"error: no website in {site}: build it first with `make site`", file=sys.stderr)
        return 2
    found = broken_links(site)
    for line in found:
        print(line)
    pages = sum(1 for _ in site.rglob("*.html"))
    print(f"site links: {'OK' if not found else f'{len(found)} broken'} ({pages} pages in {site})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
