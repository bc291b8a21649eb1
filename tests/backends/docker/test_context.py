"""The build context: which project files reach the image, by the ignore rules and the default exclusions.

These tests copy folders made in ``tmp_path`` and need no Docker engine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import gpuserve
from gpuserve.backends.docker.context import IgnoreRules, check_project_dir, copy_project


def _make_project(root: Path, files: dict[str, str]) -> Path:
    """Create a project folder with ``files`` (relative path -> content)."""
    project = root / "project"
    project.mkdir()
    for relative, content in files.items():
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return project


def _copied(project: Path, root: Path) -> set[str]:
    """Copy ``project`` into a fresh context folder and return the relative paths of what arrived."""
    target = root / "context"
    copy_project(project, target)
    return {path.relative_to(target).as_posix() for path in target.rglob("*") if not path.is_dir()}


@pytest.mark.parametrize(
    "relative",
    [
        ".git/config",
        ".venv/bin/python",
        "__pycache__/serve.cpython-311.pyc",
        "pkg/__pycache__/model.cpython-311.pyc",
        ".env",
        ".env.local",
        "config/.env",
        "server.pem",
        "certs/client.pem",
        "id_rsa",
        "keys/id_rsa.pub",
        ".aws/credentials",
        "node_modules/left-pad/index.js",
    ],
)
def test_default_exclusion(tmp_path: Path, relative: str) -> None:
    project = _make_project(tmp_path, {"serve.py": "code", relative: "excluded"})
    copied = _copied(project, tmp_path)
    assert relative not in copied
    assert "serve.py" in copied


def test_plain_project_copied(tmp_path: Path) -> None:
    files = {"serve.py": "code", "pkg/__init__.py": "", "pkg/model.py": "weights = 1", "data/labels.txt": "a\nb"}
    project = _make_project(tmp_path, files)
    assert _copied(project, tmp_path) == set(files)


def test_copy_returns_bytes(tmp_path: Path) -> None:
    project = _make_project(tmp_path, {"serve.py": "12345", "data/blob.bin": "x" * 100, ".env": "SECRET=1"})
    assert copy_project(project, tmp_path / "context") == 105


def test_copied_content_matches(tmp_path: Path) -> None:
    project = _make_project(tmp_path, {"pkg/model.py": "weights = 1"})
    copy_project(project, tmp_path / "context")
    assert (tmp_path / "context" / "pkg" / "model.py").read_text() == "weights = 1"


def test_gpuserveignore_over_dockerignore(tmp_path: Path) -> None:
    project = _make_project(
        tmp_path,
        {
            "serve.py": "code",
            "a.txt": "a",
            "b.txt": "b",
            ".gpuserveignore": "a.txt\n",
            ".dockerignore": "b.txt\n",
        },
    )
    copied = _copied(project, tmp_path)
    assert "a.txt" not in copied
    assert "b.txt" in copied


def test_dockerignore_alone(tmp_path: Path) -> None:
    project = _make_project(tmp_path, {"serve.py": "code", "b.txt": "b", ".dockerignore": "b.txt\n"})
    assert "b.txt" not in _copied(project, tmp_path)


def test_defaults_apply_with_ignore_file(tmp_path: Path) -> None:
    project = _make_project(tmp_path, {"serve.py": "code", ".env": "SECRET=1", ".gpuserveignore": "*.log\n"})
    assert ".env" not in _copied(project, tmp_path)


def test_double_star_any_depth(tmp_path: Path) -> None:
    project = _make_project(
        tmp_path,
        {"run.log": "", "a/run.log": "", "a/b/c/run.log": "", "a/b/keep.txt": "", ".gpuserveignore": "**/*.log\n"},
    )
    assert _copied(project, tmp_path) == {"a/b/keep.txt", ".gpuserveignore"}


def test_double_star_inside_folder(tmp_path: Path) -> None:
    project = _make_project(
        tmp_path,
        {
            "data/x.bin": "",
            "data/a/b/y.bin": "",
            "data/a/keep.csv": "",
            "other/z.bin": "",
            ".gpuserveignore": "data/**/*.bin\n",
        },
    )
    copied = _copied(project, tmp_path)
    assert "data/x.bin" not in copied
    assert "data/a/b/y.bin" not in copied
    assert "data/a/keep.csv" in copied
    assert "other/z.bin" in copied


def test_single_star_one_level(tmp_path: Path) -> None:
    project = _make_project(tmp_path, {"notes.md": "", "docs/guide.md": "", ".gpuserveignore": "*.md\n"})
    copied = _copied(project, tmp_path)
    assert "notes.md" not in copied
    assert "docs/guide.md" in copied


def test_question_mark_one_char(tmp_path: Path) -> None:
    project = _make_project(tmp_path, {"run1.log": "", "run22.log": "", ".gpuserveignore": "run?.log\n"})
    copied = _copied(project, tmp_path)
    assert "run1.log" not in copied
    assert "run22.log" in copied


def test_negation_reincludes(tmp_path: Path) -> None:
    project = _make_project(tmp_path, {"a.txt": "", "keep.txt": "", ".gpuserveignore": "*.txt\n!keep.txt\n"})
    copied = _copied(project, tmp_path)
    assert "keep.txt" in copied
    assert "a.txt" not in copied


def test_negation_below_excluded_folder(tmp_path: Path) -> None:
    project = _make_project(
        tmp_path,
        {"data/keep.csv": "", "data/big.bin": "", "data/sub/more.bin": "", ".gpuserveignore": "data\n!data/keep.csv\n"},
    )
    copied = _copied(project, tmp_path)
    assert "data/keep.csv" in copied
    assert "data/big.bin" not in copied
    assert "data/sub/more.bin" not in copied


def test_last_rule_excludes(tmp_path: Path) -> None:
    project = _make_project(tmp_path, {"keep.txt": "", ".gpuserveignore": "*.txt\n!keep.txt\nkeep.txt\n"})
    assert "keep.txt" not in _copied(project, tmp_path)


def test_last_rule_includes(tmp_path: Path) -> None:
    project = _make_project(tmp_path, {"keep.txt": "", ".gpuserveignore": "keep.txt\n*.txt\n!keep.txt\n"})
    assert "keep.txt" in _copied(project, tmp_path)


@pytest.mark.parametrize("rule", ["build", "build/", "/build", "./build"])
def test_folder_rule_excludes_below(tmp_path: Path, rule: str) -> None:
    project = _make_project(
        tmp_path,
        {"build/a.o": "", "build/sub/b.o": "", "builder.py": "", "src/build/c.o": "", ".gpuserveignore": rule + "\n"},
    )
    copied = _copied(project, tmp_path)
    assert "build/a.o" not in copied
    assert "build/sub/b.o" not in copied
    assert "builder.py" in copied
    assert "src/build/c.o" in copied


@pytest.mark.parametrize("rule", ["/notes.md", "./notes.md"])
def test_anchored_rule_root_only(tmp_path: Path, rule: str) -> None:
    project = _make_project(tmp_path, {"notes.md": "", "docs/notes.md": "", ".gpuserveignore": rule + "\n"})
    copied = _copied(project, tmp_path)
    assert "notes.md" not in copied
    assert "docs/notes.md" in copied


def test_comments_and_blank_lines(tmp_path: Path) -> None:
    ignore = "# build outputs\n\n   \n*.o\n  # secret.txt\n\n"
    project = _make_project(tmp_path, {"a.o": "", "secret.txt": "", "# build outputs": "", ".gpuserveignore": ignore})
    copied = _copied(project, tmp_path)
    assert "a.o" not in copied
    assert "secret.txt" in copied
    assert "# build outputs" in copied


def test_rules_skip_comments() -> None:
    rules = IgnoreRules(["# comment", "", "   ", "*.o"])
    assert len(rules.rules) == 1


def test_symlink_outside_skipped(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("host file")
    project = _make_project(tmp_path, {"serve.py": "code"})
    (project / "link.txt").symlink_to(outside)
    assert "link.txt" not in _copied(project, tmp_path)


def test_symlink_inside_kept(tmp_path: Path) -> None:
    project = _make_project(tmp_path, {"data/labels.txt": "a\nb"})
    (project / "labels.txt").symlink_to(Path("data") / "labels.txt")
    copy_project(project, tmp_path / "context")
    assert (tmp_path / "context" / "labels.txt").read_text() == "a\nb"


def test_symlink_dangling_skipped(tmp_path: Path) -> None:
    project = _make_project(tmp_path, {"serve.py": "code"})
    (project / "gone.txt").symlink_to(project / "missing.txt")
    assert "gone.txt" not in _copied(project, tmp_path)


@pytest.mark.parametrize("secret", ["app/.env", "app/id_rsa", "app/server.pem"])
def test_allowlist_keeps_secrets_out(tmp_path: Path, secret: str) -> None:
    project = _make_project(tmp_path, {"app/serve.py": "code", secret: "secret", ".gpuserveignore": "*\n!app\n"})
    copied = _copied(project, tmp_path)
    assert "app/serve.py" in copied
    assert secret not in copied


def test_symlink_to_secret_not_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cross_device_link(source: object, target: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device_link)
    project = _make_project(tmp_path, {"serve.py": "code", ".env": "SECRET=1"})
    (project / "settings.txt").symlink_to(".env")
    copy_project(project, tmp_path / "context")
    contents = [path.read_text() for path in (tmp_path / "context").rglob("*") if path.is_file()]
    assert "SECRET=1" not in contents


def test_copy_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cross_device_link(source: object, target: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device_link)
    project = _make_project(tmp_path, {"pkg/model.py": "weights = 1", ".env": "SECRET=1"})
    copy_project(project, tmp_path / "context")
    assert (tmp_path / "context" / "pkg" / "model.py").read_text() == "weights = 1"
    assert not (tmp_path / "context" / ".env").exists()


def test_home_directory_rejected() -> None:
    home = Path.home().resolve()
    with pytest.raises(gpuserve.ConfigError, match="home directory") as info:
        check_project_dir(Path.home())
    assert str(home) in str(info.value)


def test_home_from_env_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(gpuserve.ConfigError) as info:
        check_project_dir(home)
    assert str(home.resolve()) in str(info.value)


def test_below_home_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "project").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    check_project_dir(home / "project")


def test_root_rejected() -> None:
    with pytest.raises(gpuserve.ConfigError, match="The project directory / is the root"):
        check_project_dir(Path("/"))


def test_missing_folder_rejected(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-project"
    with pytest.raises(gpuserve.ConfigError, match="does not exist") as info:
        check_project_dir(missing)
    assert str(missing.resolve()) in str(info.value)


def test_copy_checks_project(tmp_path: Path) -> None:
    with pytest.raises(gpuserve.ConfigError, match="does not exist"):
        copy_project(tmp_path / "no-such-project", tmp_path / "context")
    assert not (tmp_path / "context").exists()


def test_relative_project_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _make_project(tmp_path, {"serve.py": "code"})
    monkeypatch.chdir(project)
    assert copy_project(Path("."), tmp_path / "context") == len("code")
    assert os.listdir(tmp_path / "context") == ["serve.py"]


def test_folder_symlink_inside_kept(tmp_path: Path) -> None:
    project = _make_project(tmp_path, {"data/models/weights.bin": "w"})
    (project / "models").symlink_to(Path("data") / "models")
    copy_project(project, tmp_path / "context")
    assert (tmp_path / "context" / "models" / "weights.bin").read_text() == "w"
