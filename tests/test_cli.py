"""The ``gpuserve`` command line, called through ``gpuserve.cli.main``."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import gpuserve
from gpuserve.cli import main, parse_inputs
from gpuserve.errors import GpuserveError
from gpuserve.settings import Settings
from gpuserve.state import HOME_ENV, read_json

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_FILE = REPO_ROOT / "examples" / "tiny.py"


def test_parse_string_pair() -> None:
    assert parse_inputs(None, ["text=hello world"]) == {"text": "hello world"}


def test_parse_empty_string_value() -> None:
    assert parse_inputs(None, ["text="]) == {"text": ""}


def test_parse_value_with_equals() -> None:
    assert parse_inputs(None, ["query=a=b"]) == {"query": "a=b"}


def test_parse_json_pairs() -> None:
    inputs = parse_inputs(None, ["times:=3", 'tags:=["a", "b"]', "shout:=true", "seed:=null", 'text:="3"'])

    assert inputs == {"times": 3, "tags": ["a", "b"], "shout": True, "seed": None, "text": "3"}


def test_parse_data_merge() -> None:
    inputs = parse_inputs('{"text": "hi", "times": 1}', ["times:=2", "style=shout"])

    assert inputs == {"text": "hi", "times": 2, "style": "shout"}


def test_parse_bad_pair_json() -> None:
    with pytest.raises(GpuserveError) as caught:
        parse_inputs(None, ["times:=three"])

    assert "Invalid JSON in 'times:=three'" in str(caught.value)
    assert "use key=value for plain strings" in str(caught.value)


def test_parse_bad_data_json() -> None:
    with pytest.raises(GpuserveError) as caught:
        parse_inputs("{text: hi}", [])

    assert "--data is not valid JSON" in str(caught.value)
    assert '{"text": "hi"}' in str(caught.value)


def test_parse_data_not_object() -> None:
    with pytest.raises(GpuserveError, match="--data must be a JSON object of inputs, got list"):
        parse_inputs('["hi"]', [])


@pytest.mark.parametrize("pair", ["hello", "=hello"])
def test_parse_pair_without_key(pair: str) -> None:
    with pytest.raises(GpuserveError) as caught:
        parse_inputs(None, [pair])

    assert f"Invalid input {pair!r}" in str(caught.value)
    assert "times:=3" in str(caught.value)


def test_parse_json_pair_without_key() -> None:
    with pytest.raises(GpuserveError, match="Invalid input ':=3'"):
        parse_inputs(None, [":=3"])


def test_parse_string_containing_json_separator() -> None:
    assert parse_inputs(None, ["text=a:=b"]) == {"text": "a:=b"}


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Point gpuserve's state at ``tmp_path`` and run from the repository root, as a user would."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    had_tiny = "tiny" in sys.modules
    yield tmp_path
    if not had_tiny and getattr(sys.modules.get("tiny"), "__file__", None) == str(TINY_FILE):
        del sys.modules["tiny"]


def test_bad_data_exits_1(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["predict", "ghost", "--data", "{text: hi}"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: --data is not valid JSON")
    assert err.count("\n") == 1


def test_list_empty(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["list"])

    captured = capsys.readouterr()
    assert code == 0
    assert "No deployments." in captured.out
    assert captured.err == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "ghost"],
        ["status", "ghost", "--json"],
        ["delete", "ghost"],
        ["logs", "ghost"],
        ["predict", "ghost", "text=hi"],
    ],
)
def test_unknown_deployment(home: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code = main(argv)

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err.startswith("error: No deployment named 'ghost'")
    assert "gpuserve list" in captured.err
    assert captured.err.count("\n") == 1


def test_invalid_deployment_name(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["status", "Bad_Name"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: Invalid deployment name 'Bad_Name'")
    assert err.count("\n") == 1


def test_deploy_missing_file(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["deploy", "examples/absent.py:Echo"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: File 'examples/absent.py' not found")


def test_deploy_invalid_override(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["deploy", "examples/tiny.py:Echo", "--name", "cli-echo", "--set", "idle_timeout:=0"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[-1].startswith("error: Echo: Invalid idle_timeout 0")
    assert not (home / "deployments" / "cli-echo").exists()


def test_deploy_unknown_setting(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["deploy", "examples/tiny.py:Echo", "--set", "idle=5"])

    err = capsys.readouterr().err
    assert code == 1
    assert "Unknown setting 'idle'" in err
    assert "idle_timeout" in err


def processes_mentioning(text: str) -> list[int]:
    """Return the ids of running processes whose command line contains ``text``."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            content = cmdline.read_bytes()
        except OSError:
            continue  # the process exited between the glob and the read
        if text.encode() in content and int(cmdline.parent.name) != os.getpid():
            pids.append(int(cmdline.parent.name))
    return pids


def command_line(pid: int) -> str:
    """Return the command line of ``pid``, or '' when no such process runs (zombies have none)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class Deployed:
    name: str
    directory: Path
    #: stdout of the deploy command.
    output: str


@contextlib.contextmanager
def deploy_echo(home: Path, capsys: pytest.CaptureFixture[str], *options: str) -> Iterator[Deployed]:
    """Deploy examples/tiny.py:Echo as 'cli-echo' with the CLI, and delete it afterwards whatever happens."""
    name = "cli-echo"
    directory = home / "deployments" / name
    try:
        code = main(["deploy", "examples/tiny.py:Echo", "--name", name, *options])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        yield Deployed(name, directory, captured.out)
    finally:
        if (directory / "deployment.json").exists():
            main(["delete", name])
        assert processes_mentioning(str(directory)) == []


@pytest.fixture
def echo(home: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Deployed]:
    with deploy_echo(home, capsys, "--set", "idle_timeout:=30") as deployed:
        yield deployed


def test_deploy_prints_url(echo: Deployed) -> None:
    assert f"Deployed '{echo.name}' at http://127.0.0.1:" in echo.output
    assert f"gpuserve predict {echo.name}" in echo.output


def test_deploy_set_overrides(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with deploy_echo(home, capsys, "--set", "idle_timeout:=45", "--set", "max_concurrency:=2") as deployed:
        record = read_json(deployed.directory / "deployment.json")
        settings = Settings.from_json(record["settings_json"])

        assert settings.scaling.idle_timeout == 45
        assert settings.scaling.max_concurrency == 2


def test_predict_prints_json(echo: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["predict", echo.name, "text=hi", "times:=2"])

    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out) == "hi hi"


def test_predict_data_compact(echo: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["predict", echo.name, "style=shout", "--data", '{"text": "hi", "style": "plain"}', "--compact"])

    assert code == 0
    assert capsys.readouterr().out == '"HI"\n'


def test_predict_pairs_after_data(echo: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["predict", echo.name, "--data", '{"text": "hi"}', "style=shout"])

    assert code == 0
    assert json.loads(capsys.readouterr().out) == "HI"


def test_predict_invalid_input(echo: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["predict", echo.name, "text=hi", "times:=99"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: POST /predict returned 422")
    assert "times" in err
    assert err.count("\n") == 1


def test_status_json_ready(echo: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["status", echo.name, "--json"])

    status = json.loads(capsys.readouterr().out)
    assert code == 0
    assert status["state"] == "ready"
    assert status["name"] == echo.name
    assert status["backend"] == "local"


def test_status_table(echo: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["status", echo.name])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert any(line.split() == ["state:", "ready"] for line in lines)


def test_list_shows_deployment(echo: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["list"])

    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert rows[0] == ["NAME", "BACKEND", "STATE", "URL"]
    assert rows[1][:3] == [echo.name, "local", "ready"]


def test_logs_prints_server_log(echo: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["logs", echo.name])

    assert code == 0
    assert capsys.readouterr().out.strip() != ""


def test_logs_tail(echo: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["logs", echo.name, "--tail", "1"])

    assert code == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_delete_stops_processes(echo: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    main(["status", echo.name, "--json"])
    status = json.loads(capsys.readouterr().out)
    assert "gpuserve.backends.local.frontdoor" in command_line(status["server_pid"])
    assert "gpuserve.runtime" in command_line(status["worker_pid"])

    code = main(["delete", echo.name])

    assert code == 0
    assert f"Deleted '{echo.name}'" in capsys.readouterr().out
    assert processes_mentioning(str(echo.directory)) == []
    assert "gpuserve" not in command_line(status["server_pid"])
    assert "gpuserve" not in command_line(status["worker_pid"])
    assert not echo.directory.exists()


def test_status_after_delete(echo: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    main(["delete", echo.name])
    capsys.readouterr()

    code = main(["status", echo.name])

    assert code == 1
    assert capsys.readouterr().err.startswith(f"error: No deployment named '{echo.name}'")


def test_serve_exits_when_setup_fails(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gpuserve", "serve", "tests/endpoints/failing_setup.py:FailingSetup", "--port", "0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "weights missing" in result.stderr


def test_version_flag() -> None:
    result = subprocess.run([sys.executable, "-m", "gpuserve", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.strip() == f"gpuserve {gpuserve.__version__}"


def test_set_json_string_gets_hint(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gpuserve", "deploy", "examples/tiny.py:Echo", "--set", "idle_timeout=5"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "GPUSERVE_HOME": str(tmp_path)},
    )
    assert result.returncode == 1
    assert "write --set idle_timeout:=5 for a JSON value" in result.stderr


def test_unreadable_record_names_the_file(gpuserve_home: Path) -> None:
    folder = gpuserve_home / "deployments" / "broken"
    folder.mkdir(parents=True)
    (folder / "deployment.json").write_text("{not json")
    with pytest.raises(gpuserve.BackendError, match="record of deployment 'broken' .* is unreadable"):
        gpuserve.Deployment.get("broken")
