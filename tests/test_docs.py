"""The documentation: README.md is a quickstart (under 20,000 bytes) that links every page of docs/, and
every link of README.md, docs/*.md and deploy/README.md stays inside the repository: relative, to a
file that exists, and (with `#anchor`) to a heading of that file by GitHub's anchor rules."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_BYTES = 20_000


def markdown_files() -> list[Path]:
    """The pages whose links are checked."""
    return [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "deploy" / "README.md",
    ]


FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1", re.DOTALL)
# [text](target "title") and ![alt](target), text holding one level of brackets.
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+[\"'(][^)]*)?\s*\)"
)
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.MULTILINE)
AUTOLINK = re.compile(r"<([a-z][a-z0-9+.-]*:[^>\s]*)>", re.IGNORECASE)
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']*)[\"']", re.IGNORECASE)
# What GitHub turns into a link by itself (outside code).
BARE_URL = re.compile(r"(?<![\w/<(\[])(?:https?://|www\.)[^\s<>()\[\]`]+", re.IGNORECASE)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")


def without_code_blocks(text: str) -> Iterator[str]:
    """The lines of `text` outside fenced code blocks."""
    fence: str | None = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
            else:
                yield line
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
            fence = None


def prose(text: str) -> str:
    """`text` without its code: fenced blocks and code spans hold no links."""
    return CODE_SPAN.sub("", "\n".join(without_code_blocks(text)))


def link_targets(text: str) -> list[str]:
    """Every link target of a Markdown text, bare URLs included (GitHub links those too)."""
    body = prose(text)
    targets = [
        match.group(1)
        for pattern in (INLINE_LINK, REFERENCE_DEFINITION)
        for match in pattern.finditer(body)
    ]
    targets = [target[1:-1] if target.startswith("<") else target for target in targets]
    stripped = INLINE_LINK.sub("", REFERENCE_DEFINITION.sub("", body))
    for pattern in (AUTOLINK, HTML_LINK, BARE_URL):
        targets.extend(
            match.group(1) if match.groups() else match.group(0).rstrip(".,:;!?'\"*_~")
            for match in pattern.finditer(stripped)
        )
    return targets


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: its text lowercased, punctuation but `-` and `_` dropped, spaces `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a Markdown text's headings (a repeated one also as `-1`, `-2`, ...)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in without_code_blocks(text):
        match = ATX_HEADING.match(line)
        if not match:
            continue
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(f"{anchor}-{count}" if count else anchor)
    return found


def link_problems(source: Path, text: str, root: Path) -> list[str]:
    """What is wrong with the links of `text`, the content of `source` in the repository at `root`."""
    problems = []
    root = root.resolve()
    for target in link_targets(text):
        if SCHEME.match(target) or target.startswith(("//", "www.")):
            problems.append(f"{target}: not a relative link")
            continue
        path, _, anchor = target.partition("#")
        path = unquote(path.partition("?")[0])
        if path.startswith("/"):
            problems.append(f"{target}: absolute path")
            continue
        if not path:  # a heading of this very text
            if unquote(anchor) not in anchors(text):
                problems.append(f"{target}: no heading #{anchor} here")
            continue
        destination = (source.parent / path).resolve()
        if not destination.is_relative_to(root):
            problems.append(f"{target}: outside the repository")
        elif not destination.exists():
            problems.append(f"{target}: no such file")
        elif anchor:
            if destination.suffix != ".md" or not destination.is_file():
                problems.append(f"{target}: an anchor into a file that is not Markdown")
            elif unquote(anchor) not in anchors(destination.read_text(encoding="utf-8")):
                problems.append(f"{target}: no heading #{anchor} in {destination.name}")
    return problems


def test_readme_is_a_quickstart() -> None:
    size = len(README.read_bytes())
    assert size < README_MAX_BYTES, f"README.md is {size} bytes: move reference into docs/"


@pytest.mark.parametrize("page", markdown_files(), ids=lambda page: str(page.relative_to(ROOT)))
def test_links_stay_in_the_repository(page: Path) -> None:
    assert link_problems(page, page.read_text(encoding="utf-8"), ROOT) == []


def test_readme_links_every_docs_page() -> None:
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for target in link_targets(README.read_text(encoding="utf-8"))
    }
    pages = sorted((ROOT / "docs").glob("*.md"))
    assert pages
    assert [page.name for page in pages if page.resolve() not in linked] == []


@pytest.mark.parametrize("page", sorted((ROOT / "docs").glob("*.md")), ids=lambda page: page.name)
def test_docs_pages_start_with_a_title(page: Path) -> None:
    assert page.read_text(encoding="utf-8").startswith("# ")


def test_github_anchors() -> None:
    assert github_anchor("Issue 18's targets") == "issue-18s-targets"
    assert (
        github_anchor("Big content, long tasks, retried sends")
        == "big-content-long-tasks-retried-sends"
    )
    assert github_anchor("`message/send` and `tasks/get`") == "messagesend-and-tasksget"
    assert github_anchor("A2A 0.2.5 / 0.3 / 1.0") == "a2a-025--03--10"
    assert github_anchor("[The console](docs/console.md) in_brief") == "the-console-in_brief"
    assert anchors("# Top\n## Part\n```\n# not a heading\n```\n## Part\n") == {
        "top",
        "part",
        "part-1",
    }


def test_the_checker_finds_broken_links(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(
        "# Page\n\n## Issue 18's targets\n", encoding="utf-8"
    )
    (tmp_path / "tool.py").write_text("", encoding="utf-8")
    text = "\n".join(
        [
            "# Readme",
            "Good: [page](docs/page.md), [targets](docs/page.md#issue-18s-targets), [here](#readme),",
            "![figure](tool.py), [ref][r], `[code](https://example.com/in-a-code-span)`.",
            "[r]: docs/page.md#page",
            "```sh",
            "curl http://127.0.0.1:8000/   # [in a block](https://example.com/)",
            "```",
            "Bad: [web](https://example.com/a), [plain](http://example.com/),",
            "[up](../shared/README.md), [gone](docs/missing.md), [anchor](docs/page.md#nowhere),",
            "[root](/etc/passwd), <https://example.com/auto>, see https://example.com/bare or",
            '<a href="mailto:someone@example.com">mail</a>, [line](tool.py#L3), [self](#nowhere).',
            "[s]: https://example.com/reference",
        ]
    )
    problems = link_problems(tmp_path / "README.md", text, tmp_path)
    assert [problem.split(":")[0] for problem in problems] == [
        "https",
        "http",
        "../shared/README.md",
        "docs/missing.md",
        "docs/page.md#nowhere",
        "/etc/passwd",
        "tool.py#L3",
        "#nowhere",
        "https",
        "https",
        "mailto",
        "https",
    ]
