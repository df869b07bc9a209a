"""billing: Heliomare's service for invoice orders and invoices to WerkSaam (Bijlage 2 steps 5 and 8, art 7)."""
