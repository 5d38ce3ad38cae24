"""Reading a django-q2 site's tables, for ``manage.py q_import_django_q``.

Each kind of row is a *part* (:class:`~qdjango.django_q2.report.Part`): the task history
(:mod:`qdjango.django_q2.tasks`) and the schedules (:mod:`qdjango.django_q2.schedules`).
django-q2 need not be installed: its tables are read with plain SQL, and its pickled columns
through :mod:`qdjango.django_q2.pickles`, which builds plain values only.
"""

from qdjango.django_q2.pickles import UnsafeValue, read_pickled
from qdjango.django_q2.report import Part, Report, Source
from qdjango.django_q2.schedules import Schedules
from qdjango.django_q2.tasks import TaskHistory

__all__ = ["Part", "Report", "Schedules", "Source", "TaskHistory", "UnsafeValue", "read_pickled"]
