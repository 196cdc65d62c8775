"""One aiohttp service: car sharing, fleet waybills, CallUp, token auth, messenger and realtime push."""
