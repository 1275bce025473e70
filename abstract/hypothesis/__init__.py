"""The compiled hypothesis: a spec's `hypothesis` block read into a typed, validated plan.

Torch-free on purpose: `abstract check` compiles every hypothesis (options, sites,
interventions) without importing torch; the engine receives the compiled plan.
"""
from .plan import DataPlan, InterventionPlan, Plan, SearchPlan, TrainPlan, VariablePlan, build_plan

__all__ = ["DataPlan", "InterventionPlan", "Plan", "SearchPlan", "TrainPlan", "VariablePlan", "build_plan"]
