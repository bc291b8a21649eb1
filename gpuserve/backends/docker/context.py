"""The build context: only the user's project (minus ignored files), gpuserve's source and wheel folders.

Ignore rules come from ``.gpuserveignore`` in the project, else ``.dockerignore``, in Docker's
syntax: one glob per line, ``**`` for any number of folders, ``!`` to re-include, the last matching
rule wins, and a rule that matches a folder excludes everything below it. Version-control folders,
virtual environments, caches and common secret files are always excluded.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError

logger = logging.getLogger(__name__)

ALWAYS_EXCLUDED = [
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "**/__pycache__",
    "**/*.pyc",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".tox",
    "node_modules",
]

#: Credentials never belong in an image: these stay out even when an ignore file's '!' rule matches them.
SECRET_PATTERNS = [
    "**/.env",
    "**/.env.*",
    "**/*.pem",
    "**/*.key",
    "**/id_rsa*",
    "**/id_ed25519*",
    "**/.ssh",
    "**/.aws",
    "**/.netrc",
    "**/.docker",
]


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    negate: bool


def _glob_to_regex(glob: str) -> re.Pattern[str]:
    parts = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            parts.append(".*")
            i += 2
        elif glob[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(parts) + r"\Z")


class IgnoreRules:
    """Decides which project-relative paths stay out of the build context."""

    def __init__(self, patterns: list[str]) -> None:
        self.rules: list[_Rule] = []
        for raw in patterns:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            line = line.lstrip("!").strip().strip("/")
            if line.startswith("./"):
                line = line[2:]
            if line:
                self.rules.append(_Rule(_glob_to_regex(line), negate))

    @classmethod
    def for_project(cls, project: Path) -> IgnoreRules:
        for name in (".gpuserveignore", ".dockerignore"):
            path = project / name
            if path.is_file():
                return cls(ALWAYS_EXCLUDED + path.read_text().splitlines())
        return cls(ALWAYS_EXCLUDED)

    def ignored(self, relative: str) -> bool:
        """True when ``relative`` (a POSIX path inside the project) or a folder above it is excluded."""
        candidates = _with_parents(relative)
        if any(rule.pattern.match(candidate) for rule in _SECRET_RULES for candidate in candidates):
            return True
        result = False
        for rule in self.rules:
            if any(rule.pattern.match(candidate) for candidate in candidates):
                result = not rule.negate
        return result


def _with_parents(relative: str) -> list[str]:
    candidates = [relative]
    while "/" in candidates[-1]:
        candidates.append(candidates[-1].rsplit("/", 1)[0])
    return candidates


_SECRET_RULES = [_Rule(_glob_to_regex(pattern), negate=False) for pattern in SECRET_PATTERNS]


def check_project_dir(project: Path) -> None:
    """Reject directories that are never a project: the file system root and the home directory."""
    resolved = project.expanduser().resolve()
    if resolved == Path(resolved.anchor) or resolved == Path.home().resolve():
        raise ConfigError(
            f"The project directory {resolved} is the root or your home directory, which gpuserve will not copy "
            "into an image; run from your project's folder or pass project_dir=..."
        )
    if not resolved.exists():
        raise ConfigError(f"The project directory {resolved} does not exist; pass an existing project_dir.")
    if not resolved.is_dir():
        raise ConfigError(
            f"The project directory {resolved} is a file, not a folder; pass the folder that contains it."
        )


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)  # same file system: no bytes copied
    except OSError:
        shutil.copy2(source, target)


def copy_project(project: Path, target: Path) -> int:
    """Copy the project's files that the ignore rules keep into ``target``, and return the bytes copied.

    A symbolic link is copied as the file or folder it points to when that lies inside the project
    and is not excluded itself. Links that leave the project are skipped.
    """
    check_project_dir(project)
    project = project.expanduser().resolve()
    rules = IgnoreRules.for_project(project)
    walk_folders = _may_reinclude(rules)
    seen: set[Path] = set()
    total = 0
    for folder, folders, files in os.walk(project, followlinks=True):
        real_folder = Path(folder).resolve()
        if real_folder in seen or not real_folder.is_relative_to(project):
            folders[:] = []
            continue  # a cycle of links, or a link out of the project
        seen.add(real_folder)
        relative_folder = Path(folder).relative_to(project).as_posix()
        prefix = "" if relative_folder == "." else relative_folder + "/"
        folders[:] = [
            name
            for name in folders
            if walk_folders or not _excluded(rules, project, Path(folder) / name, prefix + name)
        ]
        for name in files:
            source = Path(folder) / name
            if _excluded(rules, project, source, prefix + name) or not source.is_file():
                continue
            real = source.resolve()
            _link_or_copy(real, target / prefix / name)
            total += real.stat().st_size
    return total


def _excluded(rules: IgnoreRules, project: Path, path: Path, relative: str) -> bool:
    """Apply the ignore rules to a path, and for a symbolic link to what it points to as well."""
    if rules.ignored(relative):
        return True
    if not path.is_symlink():
        return False
    real = path.resolve()
    if not real.is_relative_to(project):
        logger.warning("Skipping %s: it links outside the project", relative)
        return True
    return real != project and rules.ignored(real.relative_to(project).as_posix())


def _may_reinclude(rules: IgnoreRules) -> bool:
    """A '!' rule may re-include files below an excluded folder, so such folders must still be walked."""
    return any(rule.negate for rule in rules.rules)


def copy_tree(source: Path, target: Path) -> None:
    """Copy a folder such as gpuserve's own source or a wheel folder, without bytecode caches."""
    for folder, folders, files in os.walk(source):
        folders[:] = [name for name in folders if name != "__pycache__"]
        for name in files:
            if not name.endswith(".pyc"):
                path = Path(folder) / name
                _link_or_copy(path, target / path.relative_to(source))
