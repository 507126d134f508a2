"""The system manager: intent, authorization, address resolution and per-host compilation."""
