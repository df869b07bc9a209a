from services.intake.bootstrap import definition
from shared.runtime import run_service

run_service(definition())
