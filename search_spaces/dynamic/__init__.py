"""Elastic ops: each owns one max-size weight and slices (or transforms) it for a smaller choice.

Every op has `weights(...)`, the sliced tensors named as in the matching plain torch module, so
that the supernet's forward and `extract` use the same slicing.
"""

from search_spaces.dynamic.conv import DynamicConv, ElasticConvNormAct
from search_spaces.dynamic.linear import DynamicLinear
from search_spaces.dynamic.naming import prefixed
from search_spaces.dynamic.norm import DynamicBatchNorm, DynamicLayerNorm

__all__ = ["DynamicBatchNorm", "DynamicConv", "DynamicLayerNorm", "DynamicLinear", "ElasticConvNormAct", "prefixed"]

