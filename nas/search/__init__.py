"""Multi-objective search: strategies (ask/tell), objectives and Pareto utilities."""

from nas.search.objectives import Objectives
from nas.search.pareto import hypervolume, non_dominated_sort, pareto_front
from nas.search.strategies import (
    NSGA2,
    STRATEGIES,
    RandomSearch,
    RegularizedEvolution,
    Strategy,
    make_strategy,
)

__all__ = [
    "NSGA2", "STRATEGIES", "Objectives", "RandomSearch", "RegularizedEvolution", "Strategy", "hypervolume",
    "make_strategy", "non_dominated_sort", "pareto_front",
]
