"""Every Python block of the README runs as written, in README order, as a reader would run them.

Each block runs in its own fresh interpreter, in one shared temporary folder (so the store the
first block writes is the one later blocks report on), with the real SDKs pointed at the loopback
fakes through their own environment variables (``OPENAI_BASE_URL`` ...): the blocks themselves
say nothing about fakes. A ``>>>`` block runs as a doctest; a block defining ``test_*`` functions
runs under pytest; a line ``print(x)  # value`` must print ``value`` (``...`` matching
anything). The ``genai-tracing`` commands of shell blocks run too. TOML blocks must load as a
price file. ``<!-- readme-test: skip <reason> -->``
right before a block skips it, for the few that cannot run here (none today).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from genai_tracing._pricing import parse_price_table
from genai_tracing.testing import FakeProvider, FakeUsage

README = Path(__file__).resolve().parent.parent / "README.md"
TIMEOUT_S = 90  # importing MLflow alone takes ~5 s on 2 shared cores
_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s+(.+?)\s*-->")
_PRINTED = re.compile(r"^\s*print\(.*\)\s+#\s+(.+)$")


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    code: str
    skip: str | None


def blocks(language: str) -> list[Block]:
    found, lines = [], README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match and match.group(1):
            start, body = i + 1, []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            before = next((lines[j] for j in range(start - 2, -1, -1) if lines[j].strip()), "")
            skip = _SKIP.search(before)
            if match.group(1) == language:
                found.append(Block(start, language, "\n".join(body) + "\n",
                                   skip.group(1) if skip else None))
        i += 1
    return found


def _offline_nltk(folder: Path) -> str:
    for part in ("corpora/stopwords", "tokenizers/punkt"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    return str(folder)


@pytest.fixture(scope="module")
def reader() -> Iterator[tuple[Path, dict[str, str]]]:
    """The reader's folder and environment: no store yet, the SDKs' own variables at the fakes."""
    import tempfile

    # 1,200 input and 300 output tokens per call: the numbers the README's comments show.
    with FakeProvider(usage=FakeUsage(input_tokens=1200, output_tokens=300)) as fake, \
            tempfile.TemporaryDirectory(prefix="readme-") as folder:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MLFLOW_", "GENAI_TRACING_", "PYTEST_"))}
        env.update(OPENAI_BASE_URL=fake.openai_base_url, OPENAI_API_KEY="test",
                   ANTHROPIC_BASE_URL=fake.anthropic_base_url, ANTHROPIC_API_KEY="test",
                   GOOGLE_API_KEY="test", LITELLM_LOCAL_MODEL_COST_MAP="True",
                   GENAI_TRACING_CACHE_DIR=str(Path(folder) / ".cache"),
                   # llama-index 0.10 downloads NLTK data on import unless it finds some.
                   NLTK_DATA=_offline_nltk(Path(folder) / ".nltk"))
        yield Path(folder), env


@pytest.mark.parametrize("block", blocks("python"), ids=lambda b: f"README.md:{b.line}")
def test_python_block_runs_as_written(block: Block, reader) -> None:
    if block.skip:
        pytest.skip(block.skip)
    folder, env = reader
    if block.code.lstrip().startswith(">>>"):
        path = folder / f"block_{block.line}.txt"
        command = ["-m", "doctest", "-o", "ELLIPSIS", "-o", "NORMALIZE_WHITESPACE", path.name]
    elif re.search(r"^def test_", block.code, re.M):
        path = folder / f"test_block_{block.line}.py"
        command = ["-m", "pytest", "-q", "-p", "no:cacheprovider", path.name]
    else:
        path = folder / f"block_{block.line}.py"
        command = [path.name]
    path.write_text(block.code, encoding="utf-8")

    done = subprocess.run([sys.executable, *command], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S)

    assert done.returncode == 0, f"README.md:{block.line} failed:\n{done.stdout}\n{done.stderr}"
    expected = [m.group(1).strip() for m in map(_PRINTED.match, block.code.splitlines()) if m]
    if expected and command == [path.name]:
        printed = done.stdout.strip().splitlines()[-len(expected):]
        assert len(printed) == len(expected), done.stdout
        for line, want in zip(printed, expected):  # "..." stands for anything, as in doctests
            assert re.fullmatch(".*".join(map(re.escape, want.split("..."))), line), (line, want)


@pytest.mark.parametrize("block", [b for b in blocks("bash") if "\ngenai-tracing " in
                                   "\n" + b.code], ids=lambda b: f"README.md:{b.line}")
def test_genai_tracing_commands_run_as_written(block: Block, reader) -> None:
    """Each ``genai-tracing`` line of a shell block: 0, or 1 for "nothing matched" (the
    reader's store holds only today's traces), never 2, a usage error such as a renamed option."""
    folder, env = reader
    commands = [line for line in block.code.splitlines() if line.startswith("genai-tracing ")]
    script = "".join(f"{c}\nrc=$?; [ $rc -le 1 ] || {{ echo 'failed: {c}' >&2; exit $rc; }}\n"
                     for c in commands)
    path = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}

    done = subprocess.run(["bash", "-c", script], cwd=folder, env={**env, **path},
                          capture_output=True, text=True, timeout=TIMEOUT_S * len(commands))

    assert done.returncode == 0, f"README.md:{block.line}:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("block", blocks("toml"), ids=lambda b: f"README.md:{b.line}")
def test_toml_block_is_a_valid_price_file(block: Block) -> None:
    table = parse_price_table(tomllib.loads(block.code), origin=f"README.md:{block.line}",
                              from_file=True)
    assert table
