"""The domain of scv-gateway: contacts, identifiers, claims, interactions, merge sets, journeys.

Nothing in this package imports Strawberry or Starlette, so every rule can be used and tested
without GraphQL (the CLI, the export and the benchmarks call it directly).
"""
