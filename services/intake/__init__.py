"""intake: WerkSaam's service for referrals and quote decisions (Bijlage 2 steps 1 and 3)."""
