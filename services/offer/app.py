"""The offer FastStream application for FastStream's CLI:

    faststream docs gen --factory services.offer.app:create
"""

from services.offer.bootstrap import definition
from shared.runtime import app_factory

create = app_factory(definition)
