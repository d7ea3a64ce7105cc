"""One module per read model: how events (or journal entries) update it."""
