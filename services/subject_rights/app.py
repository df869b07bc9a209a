"""The subject_rights FastStream application for FastStream's CLI:

    faststream docs gen --factory services.subject_rights.app:create
"""

from services.subject_rights.bootstrap import definition
from shared.runtime import app_factory

create = app_factory(definition)
