"""pytest plugin: fixtures for asserting that an agent's trajectories pass `audit check` (filled by the CI-check work)."""
