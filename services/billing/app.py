"""The billing FastStream application for FastStream's CLI:

    faststream docs gen --factory services.billing.app:create
"""

from services.billing.bootstrap import definition
from shared.runtime import app_factory

create = app_factory(definition)
