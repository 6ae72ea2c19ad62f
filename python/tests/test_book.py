"""The book's JAX chapter: its python blocks run, in order, in one namespace (as a reader would
run them); tests/tests/book.rs leaves python blocks to this test."""

import pathlib
import re

CHAPTER = pathlib.Path(__file__).resolve().parents[2] / "docs" / "07-using-rpa-from-jax.md"


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_jax_chapter_runs():
    blocks = python_blocks(CHAPTER.read_text())
    assert len(blocks) >= 6, "the chapter's examples went missing"
    namespace = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{CHAPTER.name} python block {i + 1}", "exec"), namespace)
