"""Long-running work that spans aggregates: the catalog import and order fulfilment."""
