"""Optional integrations; nothing here is imported unless asked for."""
