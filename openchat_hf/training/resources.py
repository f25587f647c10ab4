"""The recipes and accelerate configs shipped inside the package (``pip install`` users have no clone)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from openchat_hf.training.errors import TrainingError

RECIPES_DIR = Path(str(resources.files("openchat_hf.training") / "recipes"))
ACCELERATE_CONFIGS_DIR = Path(str(resources.files("openchat_hf.training") / "accelerate_configs"))


def list_recipes() -> list[str]:
    """The packaged recipes, as ``tiny/sft/config_cpu.yaml``-style names."""
    return sorted(str(p.relative_to(RECIPES_DIR)) for p in RECIPES_DIR.rglob("*.yaml"))


def list_accelerate_configs() -> list[str]:
    """The packaged accelerate configs, as ``ddp`` / ``multi_node/zero3``-style names."""
    return sorted(
        str(p.relative_to(ACCELERATE_CONFIGS_DIR).with_suffix("")) for p in ACCELERATE_CONFIGS_DIR.rglob("*.yaml")
    )


def recipe_path(name: str) -> Path:
    """A recipe file: an existing path, else a packaged recipe (``tiny/sft/config_cpu.yaml``, ``recipes/`` optional)."""
    if Path(name).expanduser().is_file():
        return Path(name).expanduser()
    packaged = RECIPES_DIR / name.removeprefix("recipes/")
    if packaged.is_file():
        return packaged
    raise TrainingError(f"Recipe {name!r} is neither a file nor a packaged recipe ({', '.join(list_recipes())}).")


def accelerate_config_path(name: str) -> Path:
    """An accelerate config: an existing path, else a packaged one by name (``ddp``, ``zero3``, ``multi_node/fsdp``)."""
    if Path(name).expanduser().is_file():
        return Path(name).expanduser()
    packaged = ACCELERATE_CONFIGS_DIR / name.removeprefix("accelerate_configs/")
    for candidate in (packaged, packaged.with_name(packaged.name + ".yaml")):
        if candidate.is_file():
            return candidate
    raise TrainingError(
        f"Accelerate config {name!r} is neither a file nor a packaged config ({', '.join(list_accelerate_configs())})."
    )
