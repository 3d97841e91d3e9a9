"""Run MLflow's own autolog tests twice: as written, then with enable_tracing() in autolog's place.

Usage (from the repository root, after fetching MLflow's test files, see README.md here)::

    .venv/bin/python tests/mlflow_autolog/run.py [--mlflow-src DIR] [--flavor openai ...]

The first run is plain MLflow autolog. The second loads ``genai_tracing_swap`` (in support/),
which turns each ``mlflow.<flavor>.autolog()`` into ``enable_tracing(providers=[flavor])``. It
prints one row per test (plain result, result with genai_tracing) and exits 1 when a test that
passes plain fails with genai_tracing, unless ALLOWED_COST_DIFFERENCES names it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUPPORT = HERE / "support"

# MLflow's files each flavor needs, as paths inside an MLflow source tree.
FILES = {
    "openai": ["tests/openai/conftest.py", "tests/openai/test_openai_autolog.py",
               "tests/openai/test_openai_responses_autolog.py"],
    "anthropic": ["tests/anthropic/test_anthropic_autolog.py"],
    "gemini": ["tests/gemini/test_gemini_autolog.py"],
    "litellm": ["tests/litellm/conftest.py", "tests/litellm/test_litellm_autolog.py"],
}
ALWAYS = ["tests/openai/mock_openai.py"]  # the fake OpenAI server, used by openai and litellm

# Only for class (i) of issue 13, and only with --own-prices: MLflow's test asserts the
# mlflow.llm.cost its mock_litellm_cost fixture prices (1.0 and 2.0 per token) and genai_tracing,
# pricing from its own tables, writes another value. Each entry names the test id and a text its
# failure message must contain, so any other failure of that test still counts. Without
# --own-prices genai_tracing gets the fixture's price too and no entry is needed.
_MOCKED_COST_TESTS = [
    "tests/anthropic/test_anthropic_autolog.py::test_messages_autolog_tool_calling",
    "tests/anthropic/test_anthropic_autolog.py::test_messages_autolog",
    "tests/anthropic/test_anthropic_autolog.py::test_messages_autolog_with_thinking",
    "tests/openai/test_openai_autolog.py::test_chat_completions_autolog",
]
ALLOWED_COST_DIFFERENCES: dict[str, str] = {
    f"{test}[{variant}]": "input_cost" for test in _MOCKED_COST_TESTS
    for variant in ("sync", "async")}

PASSED, FAILED, ERROR, SKIPPED, MISSING = "passed", "FAILED", "ERROR", "skipped", "-"
_RANK = {MISSING: 0, PASSED: 1, SKIPPED: 2, FAILED: 3, ERROR: 4}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlflow-src", type=Path, default=HERE / "upstream",
                        help="an MLflow source tree at the installed version (default: %(default)s)")
    parser.add_argument("--flavor", action="append", choices=sorted(FILES),
                        help="run only these flavors (repeatable; default: all four)")
    parser.add_argument("--keep", action="store_true", help="keep the run folder and its logs")
    parser.add_argument("--own-prices", action="store_true",
                        help="genai_tracing prices with its own tables, not the price the tests "
                             "mock for LiteLLM; cost-only differences are then allowed")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest, e.g. -k streaming")
    args = parser.parse_args(argv)
    flavors = args.flavor or list(FILES)

    missing = [p for f in flavors for p in FILES[f] + ALWAYS if not (args.mlflow_src / p).exists()]
    if missing:
        print(f"MLflow's test files are not in {args.mlflow_src}: {', '.join(missing)}\n"
              "Fetch them first (tests/mlflow_autolog/README.md).", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="mlflow-autolog-"))
    try:
        test_files = _lay_out(work, args.mlflow_src, flavors)
        plain = _run(work, test_files, args.pytest_args, swap=False)
        ours = _run(work, test_files, args.pytest_args, swap=True, own_prices=args.own_prices)
    finally:
        if args.keep:
            print(f"run folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return _report(plain, ours, allowed=ALLOWED_COST_DIFFERENCES if args.own_prices else {})


def _lay_out(work: Path, src: Path, flavors: list[str]) -> list[str]:
    """MLflow's files under work/tests/, beside the stand-ins for its shared test helpers."""
    shutil.copytree(SUPPORT / "tests", work / "tests")
    shutil.copy(SUPPORT / "genai_tracing_swap.py", work)
    test_files = []
    for path in sorted({p for f in flavors for p in FILES[f]} | set(ALWAYS)):
        target = work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / "__init__.py").touch()
        shutil.copy(src / path, target)
        if Path(path).name.startswith("test_"):
            test_files.append(path)
    images = work / "tests" / "resources" / "images"
    images.mkdir(parents=True)
    (images / "test.png").write_bytes(_tiny_png())  # read by anthropic's multi-modal test
    (work / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
        "addopts = -p no:cacheprovider\n")
    return test_files


def _run(work: Path, test_files: list[str], extra: list[str], *, swap: bool,
         own_prices: bool = False) -> dict[str, tuple[str, str]]:
    """One pytest process per file, so one file's broken import cannot hide the others."""
    mode = "genai" if swap else "plain"
    results: dict[str, tuple[str, str]] = {}
    for test_file in test_files:
        stem = Path(test_file).stem
        junit = work / f"junit-{mode}-{stem}.xml"
        command = [sys.executable, "-m", "pytest", test_file, "-q", "-rN", "--tb=short",
                   f"--junitxml={junit}", "-o", "junit_family=xunit2", *extra]
        if swap:
            command[3:3] = ["-p", "genai_tracing_swap"]
        print(f"== {'with genai_tracing' if swap else 'plain autolog'}: "
              f"{' '.join(command[1:])}", flush=True)
        log = work / f"log-{mode}-{stem}.txt"
        with open(log, "w") as out:
            env = {**os.environ, "PYTHONPATH": str(work)}
            if own_prices:
                env["GENAI_TRACING_SWAP_OWN_PRICES"] = "1"
            subprocess.run(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
        found = _results(junit)
        if not found:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            print(f"   no result from {test_file}: {' | '.join(tail)}", flush=True)
        results.update(found)
    return results


def _results(junit: Path) -> dict[str, tuple[str, str]]:
    """Test id -> (outcome, first line of its failure); a teardown error counts against it."""
    results: dict[str, tuple[str, str]] = {}
    if not junit.exists():
        return results
    for case in ET.parse(junit).iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        # A file that fails to import is one case named after its module, with no class name.
        test_id = f"{classname.replace('.', '/')}.py::{name}" if classname else \
            f"{name.replace('.', '/')}.py (collection)"
        outcome, message = PASSED, ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": FAILED, "error": ERROR, "skipped": SKIPPED}[child.tag]
                message = (child.get("message") or "").strip().splitlines()[0:1]
                message = message[0] if message else ""
                break
        previous = results.get(test_id, (MISSING, ""))
        if _RANK[outcome] > _RANK[previous[0]]:
            results[test_id] = (outcome, message)
    return results


def _report(plain: dict[str, tuple[str, str]], ours: dict[str, tuple[str, str]], *,
            allowed: dict[str, str]) -> int:
    ids = sorted(set(plain) | set(ours))
    if not ids:
        print("no test ran", file=sys.stderr)
        return 2
    width = max(len(i) for i in ids)
    print(f"\n{'test':<{width}}  {'plain':<8}  with genai_tracing")
    regressions, differ_in_cost, fail_differently, only_ours = [], [], [], []
    for test_id in ids:
        p, o = plain.get(test_id, (MISSING, "")), ours.get(test_id, (MISSING, ""))
        note = ""
        if p[0] == PASSED and o[0] != PASSED:
            expected = allowed.get(test_id)
            if expected is not None and expected in o[1]:
                differ_in_cost.append(test_id)
                note = "  (allowed: cost priced differently)"
            else:
                regressions.append(test_id)
                note = f"  <- {o[1][:200]}"
        elif p[0] in (FAILED, ERROR) and o[0] in (FAILED, ERROR) and \
                _normalized(p[1]) != _normalized(o[1]):
            # Fails plain too (a test file of another MLflow or SDK version), but not the same
            # way: genai_tracing may have changed what the assertion reads. Look at both logs.
            fail_differently.append(test_id)
            note = f"  (fails differently: {o[1][:160]})"
        elif p[0] in (FAILED, ERROR) and o[0] == PASSED:
            only_ours.append(test_id)
        print(f"{test_id:<{width}}  {p[0]:<8}  {o[0]}{note}")
    passed_plain = sum(1 for i in ids if plain.get(i, (MISSING,))[0] == PASSED)
    passed_ours = sum(1 for i in ids if plain.get(i, (MISSING,))[0] == PASSED
                      and ours.get(i, (MISSING,))[0] == PASSED)
    print(f"\n{len(ids)} tests: {passed_plain} pass plain; of those {passed_ours} pass with "
          f"genai_tracing, {len(differ_in_cost)} differ only in an allowed cost, "
          f"{len(regressions)} fail with genai_tracing. {len(only_ours)} pass only with "
          f"genai_tracing; {len(fail_differently)} fail in both runs, differently.")
    return 1 if regressions else 0


def _normalized(message: str) -> str:
    """A failure message without the ids and addresses that differ between any two runs."""
    return re.sub(r"tr-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
                  r"|0x[0-9a-f]+", "<id>", message)


def _tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + \
        chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff")) + chunk(b"IEND", b"")


if __name__ == "__main__":
    sys.exit(main())
