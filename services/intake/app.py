"""The intake FastStream application for FastStream's CLI:

    faststream docs gen --factory services.intake.app:create
"""

from services.intake.bootstrap import definition
from shared.runtime import app_factory

create = app_factory(definition)
