"""Storefront: a real-time web storefront on a small CQRS kernel."""
