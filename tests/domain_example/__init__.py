"""A second domain on the same kernel: tallies, which anyone may watch grow.

It uses the kernel and the declaration machinery only — no storefront name — and shows what
a domain brings, one module each, as the storefront does:

    tally.py         the aggregate, its command and its events (a union), the decision, and
                     the command's spec for the kernel's registry
    projection.py    the read model: its row (one Struct, written and read through it), its
                     view, the projection (a `case` per event of the union)
    query.py         the read side: tallies by id, through the same row
    read_model.py    the live read model's declaration: projection, query, fragment, who
                     may watch
    templates/fragments/tally.html   the fragment pushed to pages

tests/integration/test_domain_example.py runs it end to end on a real Redis.
"""
