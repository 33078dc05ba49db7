"""The pure core: pipelines, nodes, state, routing, checks, the confidence gate, the in-memory
runner and the protocols adapters implement. Imports only the standard library, pydantic,
networkx, tenacity and (for prompt templates) jinja2."""
