"""The services werkbrug runs, by name (for the demo, the declarations and the tests)."""

from services.intake.adapters import definition as intake
from services.offer.adapters import definition as offer

DEFINITIONS = {"intake": intake, "offer": offer}
