"""Persistence: MongoDB through PyMongo's asyncio API, one database per service."""
