"""PRINTABLE_PATTERN refuses exactly the listed characters, in every engine that reads it.

The list is the security requirement (controls, bidirectional marks, zero-width
characters); the expected set below is written from it, not from the pattern. Each
code point of the Basic Multilingual Plane, and a sample beyond it, is put through
pydantic-core (Rust regex), Python's ``re`` (what the jsonschema tests use) and, where
node is installed, a real ECMA-262 engine with and without the ``u`` flag.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field, TypeAdapter, ValidationError

from iotmon_contract import PRINTABLE_PATTERN, fields, to_printable
from tests.contract.test_schema_agreement import UNPRINTABLE

EXPECTED_REFUSED = {ord(c) for c in UNPRINTABLE}
SURROGATES = range(0xD800, 0xE000)
CODE_POINTS = [c for c in range(0x10000) if c not in SURROGATES] + [
    0x10000, 0x1F600, 0x1F3F3, 0xE0001, 0xE007F, 0xF0000, 0x10FFFD, 0x10FFFF,
]  # fmt: skip


def test_expected_set_is_what_the_security_issue_lists() -> None:
    listed = (
        set(range(0x00, 0x20))  # C0
        | {0x7F}  # DEL
        | set(range(0x80, 0xA0))  # C1
        | set(range(0x202A, 0x202F))  # LRE RLE PDF LRO RLO
        | set(range(0x2066, 0x206A))  # LRI RLI FSI PDI
        | set(range(0x200B, 0x2010))  # ZWSP ZWNJ ZWJ LRM RLM
        | {0x2028, 0x2029, 0xFEFF}
        | {0x061C}  # ARABIC LETTER MARK, the third bidi mark besides LRM and RLM
    )
    assert listed == EXPECTED_REFUSED


def test_pydantic_refuses_exactly_the_listed_characters() -> None:
    adapter = TypeAdapter(Annotated[str, Field(pattern=PRINTABLE_PATTERN)])
    refused = set()
    for code in CODE_POINTS:
        try:
            adapter.validate_python(f"a{chr(code)}b")
        except ValidationError:
            refused.add(code)
    assert refused == EXPECTED_REFUSED


def test_python_re_refuses_exactly_the_listed_characters() -> None:
    # The jsonschema side of the agreement tests reads patterns with Python's re.
    pattern = re.compile(PRINTABLE_PATTERN[:-1] + r"\Z")
    refused = {code for code in CODE_POINTS if not pattern.search(f"a{chr(code)}b")}
    assert refused == EXPECTED_REFUSED


_NODE_SCRIPT = """
const [pattern, codes] = JSON.parse(require("fs").readFileSync(0, "utf8"));
const verdicts = {};
for (const flags of ["", "u"]) {
  const re = new RegExp(pattern, flags);
  verdicts[flags || "none"] = codes.filter((c) => !re.test("a" + String.fromCodePoint(c) + "b"));
}
process.stdout.write(JSON.stringify(verdicts));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node (an ECMA-262 engine) not installed")
def test_a_real_ecma_262_engine_refuses_exactly_the_listed_characters() -> None:
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [node, "-e", _NODE_SCRIPT],
        input=json.dumps([PRINTABLE_PATTERN, CODE_POINTS]),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    verdicts = json.loads(result.stdout)
    assert set(verdicts["none"]) == EXPECTED_REFUSED  # how most JSON Schema tools run it
    assert set(verdicts["u"]) == EXPECTED_REFUSED  # how ajv runs it


def test_the_source_says_the_restriction_is_deliberate() -> None:
    source = Path(fields.__file__).read_text(encoding="utf-8")
    assert "A deliberate restriction, made for a security issue" in source


@given(
    st.text(st.one_of(st.characters(), st.sampled_from(["\udc80", "\ud83d"]))), st.integers(1, 50)
)
def test_to_printable_always_fits(text: str, max_length: int) -> None:
    adapter = TypeAdapter(Annotated[str, Field(max_length=max_length, pattern=PRINTABLE_PATTERN)])
    made = to_printable(text, max_length)
    assert adapter.validate_python(made) == made


def test_to_printable_keeps_printable_text_and_replaces_the_rest() -> None:
    assert to_printable("µS/cm 😀", 100) == "µS/cm 😀"
    assert to_printable("line one\r\nline two\u202e\udc80!", 100) == "line one line two !"
    assert to_printable("abcdef", 3) == "abc"
