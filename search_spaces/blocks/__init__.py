"""Block families, one per file, registered by name in BLOCKS."""

from search_spaces.blocks import attention, conv, ssm  # noqa: F401  (registers the families)
from search_spaces.blocks.base import BLOCKS, ElasticBlock, Site, register_block

__all__ = ["BLOCKS", "ElasticBlock", "Site", "register_block"]
