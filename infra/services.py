"""The services werkbrug runs, by name (for the demo, the declarations and the tests)."""

from services.billing.bootstrap import definition as billing
from services.intake.bootstrap import definition as intake
from services.offer.bootstrap import definition as offer
from services.subject_rights.bootstrap import definition as subject_rights
from services.trajectory.bootstrap import definition as trajectory

DEFINITIONS = {"intake": intake, "offer": offer, "trajectory": trajectory, "billing": billing,
               "subject_rights": subject_rights}
