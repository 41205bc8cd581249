"""The repository explains itself: no comment, docstring or doc sends the reader outside it.

Code cites the contract as "docs/contract.md, section N" and the Nushell wire notes as
docs/nushell-protocol.md; both live in docs/. Pure file reads, no imports of greenfetch.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE = re.compile(
    r"\.\./shared|shared/(reference|spec|seeds)/|\bcontract (section|§)|(?<!docs/)contract\.md"
)


def test_nothing_points_outside_the_repository():
    places = [
        p
        for top in ("greenfetch", "nu_plugin", "tests", "scripts", "docs")
        for p in (ROOT / top).rglob("*")
        if p.is_file() and p.suffix in {".py", ".md", ""} and "__pycache__" not in p.parts
    ]
    places.append(ROOT / "README.md")
    hits = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in places
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line) and p.name != "test_repository.py"
    ]
    assert not hits, "point to docs/ instead:\n" + "\n".join(hits)


def test_what_the_code_cites_is_in_docs():
    assert (ROOT / "docs" / "contract.md").is_file() and (ROOT / "docs" / "nushell-protocol.md").is_file()
    sections = set(re.findall(r"^## (\d+)\.", (ROOT / "docs" / "contract.md").read_text(), re.M))
    cited = {
        n
        for top in ("greenfetch", "nu_plugin", "tests")
        for p in (ROOT / top).rglob("*.py")
        for n in re.findall(r"docs/contract\.md, sections? (\d+)", p.read_text())
    }
    assert cited <= sections, f"cited sections missing from docs/contract.md: {sorted(cited - sections)}"
