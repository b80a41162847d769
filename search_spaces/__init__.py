"""Hybrid conv / attention / state-space search spaces and their weight-sharing supernet."""

from search_spaces.arch import Arch, AttentionLayer, ConvLayer, SSMLayer, StageArch
from search_spaces.errors import ArchError, SpaceError
from search_spaces.spec import SearchSpaceSpec, get_space, list_presets, load_space_file, space_from_dict
from search_spaces.supernet import HybridSupernet

__all__ = [
    "Arch", "ArchError", "AttentionLayer", "ConvLayer", "HybridSupernet", "SSMLayer", "SearchSpaceSpec",
    "SpaceError", "StageArch", "get_space", "list_presets", "load_space_file", "space_from_dict",
]
