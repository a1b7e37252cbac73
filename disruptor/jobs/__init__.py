"""Distributed jobs: a sans-IO plan (model, policies, faults, dispatcher, simulator) and the
coordinator that carries it out with real peers, beside the server of tasks placed here."""
