"""Upload a written folder to the Hugging Face Hub, failing in one line when the Hub cannot be reached."""

from __future__ import annotations

import logging
from pathlib import Path

from openchat_hf.hub_errors import first_line, hub_errors
from openchat_hf.modeling.errors import ModelingError

logger = logging.getLogger(__name__)


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    endpoint: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload OpenChat checkpoint (openchat-hf export)",
) -> str:
    """Create ``repo_id`` on the Hub if needed and upload ``folder``; return the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo_id, exist_ok=True, private=private)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message=commit_message)
    except hub_errors() as err:
        raise ModelingError(
            f"Pushing to {repo_id} failed: {first_line(err)} (check the repo name and your token; "
            f"the exported folder {folder} is kept)."
        ) from err
    logger.info("Pushed %s to %s", folder, info.commit_url if hasattr(info, "commit_url") else repo_id)
    return str(getattr(info, "commit_url", info))
