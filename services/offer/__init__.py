"""offer: Heliomare's service for registered referrals and quotes (Bijlage 2 steps 1-3)."""
