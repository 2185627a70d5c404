"""The thin HTTP shell around the engine: middleware, dependencies, error shapes."""
