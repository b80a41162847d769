"""Hybrid conv / attention / state-space search spaces and their weight-sharing supernet."""

from search_spaces.arch import Arch, LayerChoice, StageArch
from search_spaces.blocks import AttentionLayer, ConvLayer, SSMLayer
from search_spaces.counts import Counts, count
from search_spaces.errors import ArchError, SpaceError, UserError
from search_spaces.registry import BLOCKS
from search_spaces.spec import SearchSpaceSpec, get_space, list_presets, load_space_file, space_from_dict
from search_spaces.supernet import HybridSupernet
from search_spaces.walk import LayerSite, plan, walk

__all__ = [
    "BLOCKS", "Arch", "ArchError", "AttentionLayer", "ConvLayer", "Counts", "HybridSupernet", "LayerChoice",
    "LayerSite", "SSMLayer", "SearchSpaceSpec", "SpaceError", "StageArch", "UserError", "count", "get_space",
    "list_presets", "load_space_file", "plan", "space_from_dict", "walk",
]
