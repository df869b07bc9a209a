"""trajectory: Heliomare's service for the trajectory (Bijlage 2 steps 4, 6, 7) and the yearly report."""
