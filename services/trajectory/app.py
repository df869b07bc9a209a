"""The trajectory FastStream application for FastStream's CLI:

    faststream docs gen --factory services.trajectory.app:create
"""

from services.trajectory.bootstrap import definition
from shared.runtime import app_factory

create = app_factory(definition)
