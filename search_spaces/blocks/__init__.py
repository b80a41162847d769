"""Block families, one per file; each registers itself with `register_block` (see search_spaces.registry)."""

from search_spaces.blocks import attention, conv, fused, gated, longconv, ssm, vssm, window  # noqa: F401  (registers)
from search_spaces.blocks.attention import AttentionLayer, AttentionParams
from search_spaces.blocks.base import ElasticBlock, Site, register_block, unregister_block
from search_spaces.blocks.conv import ConvLayer, ConvParams
from search_spaces.blocks.ssm import SSMLayer, SSMParams

__all__ = ["AttentionLayer", "AttentionParams", "ConvLayer", "ConvParams", "ElasticBlock", "SSMLayer", "SSMParams",
           "Site", "register_block", "unregister_block"]
