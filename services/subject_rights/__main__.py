from services.subject_rights.adapters import definition
from shared.runtime import run_service

run_service(definition())
