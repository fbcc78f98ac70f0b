"""The Overseer operator: expands JobGraphs into Jobs and moves them along."""
