"""The communication manager (agent): one per host, owns the host's substrate /64."""
