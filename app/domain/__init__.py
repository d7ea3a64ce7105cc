"""The pure model: aggregates, commands, events and their rules. No I/O, no asyncio."""
