"""The stream processor: Faust app, agents, user state and retrieval."""
