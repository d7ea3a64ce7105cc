"""Redis stores, the embedded Redis server and the payment gateway."""
