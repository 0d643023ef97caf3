"""The auction results domain: the simulated platform, result rules and alert text (no AWS)."""
