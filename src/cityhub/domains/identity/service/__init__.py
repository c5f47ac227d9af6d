"""Identity business logic, split by subject; the API and pages call these functions."""
