"""The high-level causal model: finite variables, mechanisms, interventions, counterfactual data."""
from .counterfactuals import CounterfactualExample, counterfactual_dataset, distinguishing_rate, informativeness
from .domains import Domain, Type
from .model import CausalModel, Property, Variable

__all__ = ["CausalModel", "CounterfactualExample", "Domain", "Property", "Type", "Variable",
           "counterfactual_dataset", "distinguishing_rate", "informativeness"]
