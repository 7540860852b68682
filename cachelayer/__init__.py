"""cachelayer: a cache-aside data layer for Django models."""
