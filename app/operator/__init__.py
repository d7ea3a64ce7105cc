"""The operator's command-line tools behind `storefront dead-letters` and `rebuild-projection`."""
