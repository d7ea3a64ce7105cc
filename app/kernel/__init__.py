"""The reusable CQRS machinery. It knows nothing about products or orders."""
