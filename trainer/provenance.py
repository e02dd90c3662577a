"""Where files and code come from: git provenance through GitPython."""

from __future__ import annotations

from pathlib import Path

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
