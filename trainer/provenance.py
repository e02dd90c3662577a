"""Where files and code come from: git provenance through GitPython."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loraledger.registry.models import GitProvenance


def git_provenance(path: Path) -> GitProvenance | None:
    """The git facts about ``path``, or None when it is not inside a git work tree."""
    import git

    try:
        repo = git.Repo(path.resolve().parent, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    if repo.working_tree_dir is None:  # a bare repository
        return None
    top = Path(repo.working_tree_dir)
    relative = path.resolve().relative_to(top.resolve()).as_posix()
    try:
        commit: str | None = repo.head.commit.hexsha
    except ValueError:  # no commit yet
        commit = None
    status = repo.git.status("--porcelain", "--", relative)
    untracked = status.startswith("??")
    remote = next((r.url for r in repo.remotes if r.name == "origin"), None)
    return GitProvenance(
        repository=str(top),
        remote=remote,
        commit=commit,
        path=relative,
        modified=bool(status) and not untracked,
        untracked=untracked,
    )


def code_provenance(directory: Path) -> dict[str, Any]:
    """The commit of the source tree at ``directory`` and whether it has local changes.

    ``changes`` lists modified and untracked (not ignored) files, as git status shows them.
    Outside a git work tree (an installed package) the commit is unknown and recorded so.
    """
    import git

    try:
        repo = git.Repo(directory, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return {
            "repository": None,
            "commit": None,
            "dirty": False,
            "changes": [],
            "note": f"{directory} is not in a git work tree",
        }
    try:
        commit: str | None = repo.head.commit.hexsha
    except ValueError:
        commit = None
    changes = [line[3:] for line in repo.git.status("--porcelain").splitlines() if line]
    remote = next((r.url for r in repo.remotes if r.name == "origin"), None)
    return {
        "repository": repo.working_tree_dir,
        "remote": remote,
        "commit": commit,
        "dirty": bool(changes) or commit is None,
        "changes": changes,
    }
