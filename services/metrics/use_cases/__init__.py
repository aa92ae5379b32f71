"""The metrics service's use cases: what readers, the worker's publications and the
programme's operators may do.

Each is an async function of a unit of work (`figures.MetricsWork`,
`programme.ProgrammeWork`), returning a result or raising a `shared.errors` kind; none
knows HTTP, SQL or Kafka. `figures`: keep each figure the worker publishes, and answer
readers and the dashboard. `programme`: the programme register (indicators, targets,
reported figures) and each target's progress.
"""

from services.metrics.use_cases.figures import (
    MetricsWork,
    current_figures,
    dashboard,
    figure_series,
    last_change,
    project_figure,
)

__all__ = [
    "MetricsWork",
    "current_figures",
    "dashboard",
    "figure_series",
    "last_change",
    "project_figure",
]
