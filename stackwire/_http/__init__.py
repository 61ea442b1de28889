"""Pure HTTP rules (tier 1): no aiohttp, no I/O; doctested."""
