"""The services werkbrug runs, by name (for the demo, the declarations and the tests)."""

from services.billing.adapters import definition as billing
from services.intake.adapters import definition as intake
from services.offer.adapters import definition as offer
from services.subject_rights.adapters import definition as subject_rights
from services.trajectory.adapters import definition as trajectory

DEFINITIONS = {"intake": intake, "offer": offer, "trajectory": trajectory, "billing": billing,
               "subject_rights": subject_rights}
