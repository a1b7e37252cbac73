"""Distributed jobs: a sans-IO plan (model, policies, dispatcher) and the runner that runs it."""
