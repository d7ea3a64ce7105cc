"""`storefront loadtest`: shoppers and catalog watchers driving a running deployment over HTTP
and WebSockets (the public contract of API.md only), with a live progress line and a report."""
