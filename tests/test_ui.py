"""The cost where users look: the stock MLflow UI, read in headless Chromium.

A real ``mlflow server`` on loopback, started the way ``genai-tracing ui`` starts it, is filled
through the real SDKs and the fake providers with three traces whose costs are computed here by
hand from the prices below. The browser then reads what a user reads: the trace list's Cost
column, each trace's header badge and cost popover, the cost of every span in the span tree, and
Overview › Usage (total and per model). A duplicate span that carried cost would show in the span
tree and double a model's share of the Overview.

With ``GENAI_TRACING_SCREENSHOTS=<folder>`` the tests also save the screenshots the README shows,
at the moment their checks passed (``python docs/make_screenshots.py``).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Callable, Iterator

import mlflow
import pytest

import genai_tracing
from genai_tracing import _ui
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

from conftest import anthropic_client, gemini_client, openai_client

M = 1_000_000
EXPERIMENT = "ui-costs"
PRICES = {"models": {
    "gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6},
    "claude-sonnet-4-5": {"input_per_million": 3.0, "output_per_million": 15.0},
    "gemini-2.5-flash": {"input_per_million": 0.3, "output_per_million": 2.5},
}}


@dataclass(frozen=True)
class Call:
    """One provider call, its token counts, and its cost worked out by hand from PRICES."""

    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    input_cost: float
    output_cost: float

    @property
    def cost(self) -> float:
        return self.input_cost + self.output_cost


TRACES: dict[str, list[Call]] = {
    # One small OpenAI call: its header badge rounds to $0.00.
    "quick": [Call("openai", "gpt-4o-mini", 1_200, 300, 1_200 * 0.15 / M, 300 * 0.6 / M)],
    # An agent calling all three providers in one trace.
    "agent": [
        Call("anthropic", "claude-sonnet-4-5", 20_000, 2_000, 20_000 * 3.0 / M, 2_000 * 15.0 / M),
        Call("gemini", "gemini-2.5-flash", 40_000, 4_000, 40_000 * 0.3 / M, 4_000 * 2.5 / M),
        Call("openai", "gpt-4o-mini", 100_000, 10_000, 100_000 * 0.15 / M, 10_000 * 0.6 / M),
    ],
    # Gemini alone: MLflow traces generate_content and its inner _generate_content.
    "gemini": [Call("gemini", "gemini-2.5-flash", 1_000, 200, 1_000 * 0.3 / M, 200 * 2.5 / M)],
}
QUESTION = "Which plan fits a team of 12?"
ANSWER = "The Team plan: 12 seats, shared budget alerts."


def usd(amount: float) -> str:
    """How the UI writes a cost almost everywhere: US dollars, 2 to 6 decimals."""
    text = f"{Decimal(repr(amount)).quantize(Decimal('0.000001'), ROUND_HALF_UP):,f}"
    whole, decimals = text.split(".")
    return f"${whole}.{decimals.rstrip('0').ljust(2, '0')}"


def cents(amount: float) -> str:
    """How the trace header writes a total: rounded to cents (JavaScript's toFixed(2))."""
    return f"${Decimal(repr(amount)).quantize(Decimal('0.01'), ROUND_HALF_UP)}"


def test_display_formats_match_the_ui() -> None:
    # Checked against what MLflow 3.17's UI renders for the same amounts.
    assert [usd(x) for x in (0.00036, 0.09, 0.133, 0.13416, 0.02136, 1234.5)] == \
        ["$0.00036", "$0.09", "$0.133", "$0.13416", "$0.02136", "$1,234.50"]
    assert [cents(x) for x in (0.00036, 0.133, 0.0008)] == ["$0.00", "$0.13", "$0.00"]


# -- genai_tracing._ui without a server ----------------------------------------------------

def test_ui_url_of_a_remote_server() -> None:
    assert _ui.ui_url("http://127.0.0.1:5000", "7") == \
        "http://127.0.0.1:5000/#/experiments/7/traces?startTimeLabel=ALL"
    assert _ui.ui_url("https://mlflow.example.com/team/", "7") == \
        "https://mlflow.example.com/team/#/experiments/7/traces?startTimeLabel=ALL"
    assert _ui.ui_url("http://127.0.0.1:5000", None) == "http://127.0.0.1:5000/#/experiments"


def test_ui_url_on_databricks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABRICKS_HOST", "https://adb-1.azuredatabricks.net/")
    assert _ui.ui_url("databricks", "1234") == \
        "https://adb-1.azuredatabricks.net/ml/experiments/1234/traces?startTimeLabel=ALL"

    config = tmp_path / "databrickscfg"
    config.write_text("[staging]\nhost = adb-2.azuredatabricks.net\ntoken = x\n")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(config))
    assert _ui.ui_url("databricks://staging", "5") == \
        "https://adb-2.azuredatabricks.net/ml/experiments/5/traces?startTimeLabel=ALL"

    monkeypatch.delenv("DATABRICKS_HOST")
    with pytest.raises(genai_tracing.ConfigurationError, match="DATABRICKS_HOST"):
        _ui.ui_url("databricks", "5")


@pytest.mark.parametrize("uri", ["sqlite:///mlflow.db", "file:///srv/mlruns", "mlruns",
                                 "postgresql://db/mlflow"])
def test_a_local_store_needs_a_server(uri: str) -> None:
    assert _ui.is_local_store(uri)
    with pytest.raises(genai_tracing.ConfigurationError, match="genai-tracing ui"):
        _ui.ui_url(uri, "1")


def test_main_ui_links_a_server_that_does_not_answer(
        capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    assert _ui.main_ui(["--tracking-uri", dead, "--experiment", EXPERIMENT, "--no-browser"]) == 0
    out = capsys.readouterr().out
    assert f"Traces, all time: {dead}/#/experiments\n" in out
    assert "not found" in out


# -- The server, filled with traces of known cost ------------------------------------------

@dataclass
class Filled:
    """The running server and what was written to it."""

    server_url: str
    experiment_id: str
    traces_url: str
    trace_ids: dict[str, str] = field(default_factory=dict)  # TRACES key -> trace id
    # TRACES key -> [(call, span id)], and the ids of the spans that carry no cost.
    priced_spans: dict[str, list[tuple[Call, str]]] = field(default_factory=dict)
    unpriced_spans: dict[str, list[str]] = field(default_factory=dict)


class UiProcess:
    """``python -m genai_tracing._ui`` (what ``genai-tracing ui`` runs), read line by line."""

    def __init__(self, *args: str, cwd: Path,
                 command: tuple[str, ...] = (sys.executable, "-m", "genai_tracing._ui")) -> None:
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        # The server keeps artifacts in ./mlartifacts of its working directory: not the repo's.
        self.process = subprocess.Popen(
            [*command, *args], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, prefix: str, timeout: float = 240.0) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} line; output so far: {self.output}") from None
            if line is None:
                raise AssertionError(f"exited before printing {prefix!r}: {self.output}")
            self.output.append(line)
            if line.startswith(prefix):
                return line[len(prefix):].strip()


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on a fresh sqlite store, started and stopped like a user would."""
    store = TemporaryStore.create(tmp_path_factory.mktemp("ui-store"))
    ui = UiProcess("--tracking-uri", store.uri, "--experiment", EXPERIMENT, "--no-browser",
                   cwd=store.folder)
    try:
        server_url = ui.wait_for("MLflow UI for").rsplit(" at ", 1)[1]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server_url), server_url
        # The experiment does not exist yet, so the link opens the experiment list.
        assert ui.wait_for("Traces, all time:") == f"{server_url}/#/experiments"
        with urllib.request.urlopen(f"{server_url}/health", timeout=30) as response:
            assert response.status == 200
        yield server_url
    finally:
        ui.process.send_signal(signal.SIGINT)  # Ctrl+C
        try:
            code = ui.process.wait(60)
        except subprocess.TimeoutExpired:
            ui.process.kill()
            raise
    assert code == 0, ui.output
    # Ctrl+C stopped the server too (its workers may take a moment to close the port).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{server_url}/health", timeout=5).close()
        except OSError:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"{server_url} still answers after Ctrl+C")


def _group_members(group: int) -> list[int]:
    """Live processes in process group ``group`` (zombies are dead, awaiting only a reaper)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


@pytest.mark.skipif(not Path("/proc/self/task").exists() or os.name != "posix",
                    reason="reads processes from Linux's /proc")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_ui_command_stops_its_server_on_sigterm_and_sighup(tmp_path: Path, sig: str) -> None:
    """A plain ``kill`` or a closed terminal stops ``genai-tracing ui`` and its server, workers
    included, as Ctrl+C does: the port closes and no process of the server's group is left."""
    store = TemporaryStore.create(tmp_path / "store")
    command = (str(Path(sys.executable).with_name("genai-tracing")), "ui")
    ui = UiProcess("--tracking-uri", store.uri, "--no-browser", cwd=store.folder, command=command)
    try:
        server_url = ui.wait_for("MLflow UI for").rsplit(" at ", 1)[1]
        ui.wait_for("Press Ctrl+C")
        port = int(server_url.rsplit(":", 1)[1])
        children = Path(f"/proc/{ui.process.pid}/task/{ui.process.pid}/children").read_text()
        (server,) = [int(pid) for pid in children.split()]
        assert os.getpgid(server) == server  # its own group: the one stop_ui signals
        assert _group_members(server), "the server has no live process before the signal"
        ui.process.send_signal(getattr(signal, sig))
        code = ui.process.wait(60)
    finally:
        if ui.process.poll() is None:
            ui.process.kill()
    try:
        assert code == 0, ui.output
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _group_members(server):
            time.sleep(0.2)
        assert not _group_members(server), f"server processes left after {sig}"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        if _group_members(server):  # the test failed: leave no server behind
            os.killpg(server, signal.SIGKILL)


def _fill(fake: FakeProvider, calls: list[Call]) -> str:
    oai, claude, gemini = openai_client(fake), anthropic_client(fake), gemini_client(fake)
    messages = [{"role": "user", "content": QUESTION}]
    clients: dict[str, Callable[[str], Any]] = {
        "openai": lambda model: oai.chat.completions.create(model=model, messages=messages),
        "anthropic": lambda model: claude.messages.create(model=model, max_tokens=500,
                                                          messages=messages),
        "gemini": lambda model: gemini.models.generate_content(model=model, contents=QUESTION),
    }

    def call(c: Call) -> None:
        fake.usage = FakeUsage(input_tokens=c.input_tokens, output_tokens=c.output_tokens)
        clients[c.provider](c.model)

    if len(calls) == 1:
        call(calls[0])  # the provider call is the trace's root span
    else:
        @mlflow.trace(name="support_agent")
        def agent(question: str) -> str:
            for c in calls:
                call(c)
            return ANSWER

        agent(QUESTION)
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id is not None
    return trace_id


@pytest.fixture(scope="session")
def filled(ui_server: str, tmp_path_factory: pytest.TempPathFactory) -> Filled:
    """Every trace of TRACES, written through genai_tracing to the server over HTTP."""
    # The context restores MLflow's global tracking state afterwards, for the other tests.
    with TemporaryStore(folder=tmp_path_factory.mktemp("ui-client"), uri=ui_server) as store, \
            FakeProvider(text=ANSWER) as fake:
        config = genai_tracing.enable_tracing(tracking_uri=ui_server, experiment=EXPERIMENT,
                                              prices=PRICES)
        assert config.experiment_id is not None
        trace_ids = {name: _fill(fake, calls) for name, calls in TRACES.items()}
        mlflow.flush_trace_async_logging()
        stored = {name: store.get_trace(trace_id) for name, trace_id in trace_ids.items()}

    result = Filled(ui_server, config.experiment_id,
                    _ui.ui_url(ui_server, config.experiment_id), trace_ids)
    for name, calls in TRACES.items():
        spans = stored[name].data.spans
        for c in calls:
            # The call's span is the outermost one of its model and tokens (the first to start);
            # every other span must show no cost, even a duplicate that wrongly has one.
            (span, *_) = sorted((s for s in spans if s.attributes.get("mlflow.llm.model") ==
                                 c.model and (s.attributes.get("mlflow.chat.tokenUsage") or {})
                                 .get("input_tokens") == c.input_tokens),
                                key=lambda s: s.start_time_ns)
            result.priced_spans.setdefault(name, []).append((c, span.span_id))
        counted = {span_id for _, span_id in result.priced_spans[name]}
        result.unpriced_spans[name] = [s.span_id for s in spans if s.span_id not in counted]
    return result


PARTIAL_EXPERIMENT = "ui-costs-partial"
UNKNOWN_MODEL = "in-house-llm-7b"  # in no price table: its call stays unpriced


@pytest.fixture(scope="session")
def partial(ui_server: str, filled: Filled, tmp_path_factory: pytest.TempPathFactory) -> Filled:
    """One trace with a priced and an unpriced call, in an experiment of its own."""
    call = Call("openai", "gpt-4o-mini", 2_000, 500, 2_000 * 0.15 / M, 500 * 0.6 / M)
    with TemporaryStore(folder=tmp_path_factory.mktemp("ui-partial"), uri=ui_server) as store, \
            FakeProvider(text=ANSWER) as fake:
        config = genai_tracing.enable_tracing(tracking_uri=ui_server,
                                              experiment=PARTIAL_EXPERIMENT, prices=PRICES)
        assert config.experiment_id is not None
        oai = openai_client(fake)
        messages = [{"role": "user", "content": QUESTION}]

        @mlflow.trace(name="support_agent")
        def agent(question: str) -> str:
            fake.usage = FakeUsage(input_tokens=call.input_tokens,
                                   output_tokens=call.output_tokens)
            oai.chat.completions.create(model=call.model, messages=messages)
            fake.usage = FakeUsage(input_tokens=700, output_tokens=70)
            oai.chat.completions.create(model=UNKNOWN_MODEL, messages=messages)
            return ANSWER

        agent(QUESTION)
        trace_id = mlflow.get_last_active_trace_id()
        assert trace_id is not None
        mlflow.flush_trace_async_logging()
        stored = store.get_trace(trace_id)
    # What the browser should show, checked on the stored trace first.
    assert stored.info.tags.get("cost") == "partial"
    assert stored.info.cost["total_cost"] == pytest.approx(call.cost, rel=1e-9)
    result = Filled(ui_server, config.experiment_id,
                    _ui.ui_url(ui_server, config.experiment_id), {"partial": trace_id})
    result.priced_spans["partial"] = [(call, "")]
    return result


def test_store_holds_the_hand_computed_costs(filled: Filled) -> None:
    # What the UI should show is what the server stored; checked here so a wrong number is
    # blamed on the right side.
    client = mlflow.MlflowClient(filled.server_url)
    for name, calls in TRACES.items():
        trace = client.get_trace(filled.trace_ids[name])
        assert trace.info.cost == pytest.approx({
            "input_cost": sum(c.input_cost for c in calls),
            "output_cost": sum(c.output_cost for c in calls),
            "total_cost": sum(c.cost for c in calls)}, rel=1e-9)
        spans = {s.span_id: s for s in trace.data.spans}
        # Exactly one span per call carries a cost.
        priced = [s.name for s in spans.values() if s.attributes.get("mlflow.llm.cost")]
        assert len(priced) == len(calls), priced
        for c, span_id in filled.priced_spans[name]:
            assert spans[span_id].attributes["mlflow.llm.cost"] == pytest.approx({
                "input_cost": c.input_cost, "output_cost": c.output_cost,
                "total_cost": c.cost}, rel=1e-9)
        for span_id in filled.unpriced_spans[name]:
            # No amount; an inner span MLflow made for the same call keeps MLflow's usage and is
            # marked as counted on the call's span.
            attributes = spans[span_id].attributes
            assert not attributes.get("mlflow.llm.cost")
            assert ("mlflow.chat.tokenUsage" not in attributes
                    or "genai_tracing.counted_on" in attributes)


def test_main_ui_prints_the_traces_link_of_a_remote_server(
        filled: Filled, capsys: pytest.CaptureFixture[str]) -> None:
    code = _ui.main_ui(["--tracking-uri", filled.server_url, "--experiment", EXPERIMENT,
                        "--no-browser"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"Traces, all time: {filled.traces_url}\n" in out
    assert filled.traces_url == (f"{filled.server_url}/#/experiments/{filled.experiment_id}"
                                 "/traces?startTimeLabel=ALL")
    assert "Display > Columns > Cost" in out


# -- The browser ---------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT = 90  # seconds; the machine may be busy, and nothing here asserts on timing
# Keys the UI keeps in local storage (found in mlflow/server/js/build): popups already seen,
# the assistant panel closed, telemetry off.
QUIET_UI = {
    "mlflow.settings.telemetry.enabled_v1": "false",
    "mlflow.telemetry.info.alert.dismissed_v1": "true",
    "mlflow.detectIssues.guidanceShown_v1": "true",
    "mlflow.flagForReview.guidanceShown_v1": "true",
    "mlflow.assistant.panelOpen_v1": "false",
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
    "mlflow.overview.mysqlBannerDismissed_v0": "true",
    "_mlflow_model_registry_promo_modal_dismissed_v1": "true",
}
# The trace list's column choices, per experiment: {"cost": true} turns the Cost column on.
COLUMNS_KEY = "mlflow.traces-v4.columns.{experiment_id}_v4"


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("needs Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver; .ci/run does)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("the browser tests need selenium: pip install 'selenium>=4'")

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1920,1080",
                 "--lang=en-US"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT * 2)
    try:
        yield driver
    finally:
        driver.quit()


def open_ui(driver: Any, filled: Filled, fragment: str, *, cost_column: bool | None) -> None:
    """Load the UI afresh at ``fragment`` with the popups dismissed and the Cost column set."""
    driver.get("about:blank")
    driver.get(f"{filled.server_url}/health")  # same origin, so its local storage is the UI's
    storage = dict(QUIET_UI)
    key = COLUMNS_KEY.format(experiment_id=filled.experiment_id)
    for name, value in storage.items():
        driver.execute_script("localStorage.setItem(arguments[0], arguments[1])", name, value)
    if cost_column is None:
        driver.execute_script("localStorage.removeItem(arguments[0])", key)
    else:
        driver.execute_script("localStorage.setItem(arguments[0], arguments[1])", key,
                              f'{{"cost": {str(cost_column).lower()}}}')
    driver.get(f"{filled.server_url}/{fragment}")


def wait_until(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.common.exceptions import NoSuchElementException, \
        StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.25, ignored_exceptions=(
        NoSuchElementException, StaleElementReferenceException)).until(condition, what)


def snap(driver: Any, name: str) -> None:
    """Save a screenshot for the docs when GENAI_TRACING_SCREENSHOTS names a folder."""
    folder = os.environ.get("GENAI_TRACING_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(Path(folder) / name))


def hover(driver: Any, element: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).move_to_element(element).perform()


# The trace table, read in one go: {trace id: {column header: cell text}}.
READ_TABLE = """
const headers = [...document.querySelectorAll('[role=columnheader]')]
    .map(h => h.innerText.trim());
const rows = {};
for (const row of document.querySelectorAll('[role=row]')) {
  const box = row.querySelector('input[aria-label^="Select trace "]');
  if (!box) continue;
  const cells = [...row.querySelectorAll('[role=cell]')].map(c => c.innerText.trim());
  rows[box.getAttribute('aria-label').slice('Select trace '.length)] =
      Object.fromEntries(headers.map((h, i) => [h, cells[i]]));
}
return {headers, rows};
"""


def read_table(driver: Any, filled: Filled) -> dict[str, Any] | None:
    table = driver.execute_script(READ_TABLE)
    return table if set(filled.trace_ids.values()) <= set(table["rows"]) else None


@pytest.mark.browser
def test_trace_list_cost_column(browser: Any, filled: Filled) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_ui(browser, filled, filled.traces_url.split("/", 3)[3], cost_column=None)
    table = wait_until(browser, lambda d: read_table(d, filled), "the three traces listed")
    # Off by default, as the README says; Tokens is on.
    assert "Tokens" in table["headers"] and "Cost" not in table["headers"]

    # Display › Columns › Cost, as a user turns it on.
    browser.find_element(By.CSS_SELECTOR,
                         "[data-component-id='mlflow.traces-v4.display.trigger']").click()
    wait_until(browser, lambda d: d.find_element(
        By.XPATH, "//div[@role='menuitem'][normalize-space()='Columns']"), "Columns").click()
    cost = wait_until(browser, lambda d: d.find_element(
        By.CSS_SELECTOR, "[data-component-id='mlflow.traces-v4.column-selector.item.cost']"),
        "the Cost column choice")
    assert cost.get_attribute("aria-checked") == "false"
    cost.click()

    table = wait_until(browser, lambda d: (t := read_table(d, filled)) and "Cost" in t["headers"]
                       and t, "the Cost column")
    shown = {name: (table["rows"][trace_id]["Cost"], table["rows"][trace_id]["Tokens"])
             for name, trace_id in filled.trace_ids.items()}
    expected = {name: (usd(sum(c.cost for c in calls)),
                       str(sum(c.input_tokens + c.output_tokens for c in calls)))
                for name, calls in TRACES.items()}
    assert shown == expected
    # The choice is kept for the next visit.
    key = COLUMNS_KEY.format(experiment_id=filled.experiment_id)
    assert '"cost":true' in browser.execute_script("return localStorage.getItem(arguments[0])",
                                                   key)

    def menu_closed(d: Any) -> bool:
        if not d.find_elements(By.CSS_SELECTOR, "[role=menu]"):
            return True
        d.switch_to.active_element.send_keys(Keys.ESCAPE)  # one level of menu per press
        return False

    wait_until(browser, menu_closed, "the menu closed")
    snap(browser, "trace-list-cost-column.png")


def read_popover(driver: Any, title: str) -> dict[str, str] | None:
    """A hover card's label/value pairs, e.g. {"Input cost": "$0.087", ...}."""
    from selenium.webdriver.common.by import By

    for card in driver.find_elements(By.CSS_SELECTOR, "[data-radix-popper-content-wrapper]"):
        lines = card.text.splitlines()
        if lines and lines[0] == title:
            return dict(zip(lines[1::2], lines[2::2]))
    return None


@pytest.mark.browser
@pytest.mark.parametrize("name", list(TRACES))
def test_trace_header_popover_and_span_tree(browser: Any, filled: Filled, name: str) -> None:
    from selenium.webdriver.common.by import By

    calls, trace_id = TRACES[name], filled.trace_ids[name]
    open_ui(browser, filled, f"#/experiments/{filled.experiment_id}/traces?startTimeLabel=ALL"
            f"&selectedEvaluationId={trace_id}", cost_column=True)
    dialog = wait_until(browser, lambda d: d.find_element(By.CSS_SELECTOR, "[role=dialog]"),
                        "the trace view")

    # Span tree: each call's span shows its own cost, and no other span shows any.
    def span_costs(_: Any) -> dict[str, str | None] | None:
        costs: dict[str, str | None] = {}
        for span_id in [s for _, s in filled.priced_spans[name]] + filled.unpriced_spans[name]:
            row = dialog.find_element(By.CSS_SELECTOR,
                                      f"[data-testid='span-metric-row-{span_id}']")
            titles = [e.get_attribute("title") or "" for e in
                      row.find_elements(By.CSS_SELECTOR, "[title]")]
            if not any(t.startswith("Duration") for t in titles):
                return None  # still rendering
            costs[span_id] = next((t.removeprefix("Estimated cost: ") for t in titles
                                   if t.startswith("Estimated cost: ")), None)
        return costs

    shown = wait_until(browser, span_costs, "every span in the span tree")
    expected: dict[str, str | None] = {span_id: usd(c.cost)
                                       for c, span_id in filled.priced_spans[name]}
    expected.update({span_id: None for span_id in filled.unpriced_spans[name]})
    assert shown == expected

    # Select the first call, so the right pane shows a priced span (and the screenshot does).
    first_call = filled.priced_spans[name][0][1]
    dialog.find_element(By.CSS_SELECTOR, f"[data-testid='span-title-row-{first_call}']").click()

    # Header: the total badge, rounded to cents; its hover card breaks the cost down.
    tokens = dialog.find_element(
        By.XPATH, ".//span[@data-state][span[substring(normalize-space(), "
                  "string-length(normalize-space()) - 6) = ' tokens']]")
    assert tokens.text == f"{sum(c.input_tokens + c.output_tokens for c in calls):,} tokens"
    badge = tokens.find_element(By.XPATH, "./following-sibling::span[@data-state][1]")
    total = sum(c.cost for c in calls)
    assert badge.text == cents(total)
    hover(browser, badge)
    popover = wait_until(browser, lambda d: read_popover(d, "Cost breakdown"), "cost popover")
    assert popover == {"Input cost": usd(sum(c.input_cost for c in calls)),
                       "Output cost": usd(sum(c.output_cost for c in calls)),
                       # The popover's total is rounded to cents like the badge.
                       "Total": cents(total)}
    if name == "agent":
        snap(browser, "trace-span-costs.png")


@pytest.mark.browser
def test_usage_overview_total_and_per_model(browser: Any, filled: Filled) -> None:
    from selenium.webdriver.common.by import By

    open_ui(browser, filled, f"#/experiments/{filled.experiment_id}/overview/usage",
            cost_column=None)

    def card(title: str) -> Any:
        heading = wait_until(browser, lambda d: d.find_element(
            By.XPATH, f"//span[normalize-space()='{title}']"), title)
        # The card: the nearest ancestor holding both the total and the chart.
        return heading.find_element(By.XPATH, "./ancestor::div[.//h3 and .//div[contains("
                                    "@class, 'recharts-responsive-container')]][1]")

    calls = [c for trace in TRACES.values() for c in trace]
    total = sum(c.cost for c in calls)
    by_model: dict[str, float] = {}
    for c in calls:
        by_model[c.model] = by_model.get(c.model, 0.0) + c.cost

    breakdown = card("Cost Breakdown")
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", breakdown)
    for title in ("Cost Breakdown", "Cost Over Time"):
        shown = wait_until(browser, lambda d: (t := card(title).find_element(
            By.TAG_NAME, "h3").text).endswith("Total Cost") and t, f"{title}'s total")
        assert shown == f"{usd(total)} Total Cost", title

    # The legend lists each model with its whole-percent share, largest first.
    def legend(_: Any) -> list[str] | None:
        items = breakdown.find_elements(By.CSS_SELECTOR, ".recharts-legend-item-text")
        return [i.text for i in items] if len(items) == len(by_model) else None

    # Recharts grows the donut from nothing; hover it only once its shape stops changing.
    drawn: list[list[str]] = []

    def donut_still(_: Any) -> bool:
        drawn.append([e.get_attribute("d") or "" for e in breakdown.find_elements(
            By.CSS_SELECTOR, ".recharts-pie path")])
        return len(drawn) > 2 and bool(drawn[-1]) and drawn[-1] == drawn[-2] == drawn[-3]

    wait_until(browser, donut_still, "the cost donut drawn")
    shares = {m: Decimal(repr(v / total * 100)) for m, v in by_model.items()}
    ordered = sorted(by_model, key=by_model.__getitem__, reverse=True)
    assert wait_until(browser, legend, "one legend entry per model") == [
        f"{m}{shares[m].quantize(Decimal('1'), ROUND_HALF_UP)}%" for m in ordered]

    # Hovering a legend entry labels its slice with the model's cost and exact share.
    for model in ordered:
        entry = breakdown.find_element(
            By.XPATH, f".//li[contains(@class, 'recharts-legend-item')][starts-with("
                      f"normalize-space(), '{model}')]")
        hover(browser, entry)

        def slice_label(_: Any, model: str = model) -> str | None:
            texts = [t.text for t in breakdown.find_elements(By.CSS_SELECTOR, "svg text")]
            if model not in texts:
                return None  # still the previous slice's label
            return next((t for t in texts if t.startswith("$")), None)

        label = wait_until(browser, slice_label, f"{model}'s slice label")
        share = shares[model].quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert label == f"{usd(by_model[model])}, {share}%"
        if model == ordered[0]:
            snap(browser, "usage-overview-cost.png")


@pytest.mark.browser
def test_trace_list_shows_a_partial_cost(browser: Any, partial: Filled) -> None:
    """A trace whose total leaves an unpriced call out says so in the list, next to its cost."""
    open_ui(browser, partial, partial.traces_url.split("/", 3)[3], cost_column=True)
    table = wait_until(browser, lambda d: (t := read_table(d, partial)) and "Cost" in t["headers"]
                       and t, "the trace listed with its Cost column")
    row = table["rows"][partial.trace_ids["partial"]]
    (call, _), = partial.priced_spans["partial"]
    assert row["Cost"] == usd(call.cost)  # the priced part only ...
    # ... and the tag saying so, in the list's Tags column, as "cost: partial" or the like.
    tags = next((v for h, v in row.items() if h.lower() == "tags"), None)
    assert tags is not None, f"no Tags column in {table['headers']}"
    assert re.search(r"\bcost\W+partial\b", tags), tags
    snap(browser, "trace-list-partial-cost.png")
