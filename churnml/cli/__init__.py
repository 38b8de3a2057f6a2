"""The ``churnml`` command line (contract v1, ``shared/contract.md``).

One small module per command over ``churnml.engines`` and the training and serving
functions; ``common`` holds the app, the shared options, the one settings object each
command builds from its flags and the environment, and the error handling of ``main``.
The commands are registered here, in the order ``churnml --help`` lists them.
"""

from __future__ import annotations

from churnml.cli import (
    features,
    generate,
    outcomes,
    promote,
    risk_list,
    run,
    score,
    serve,
    train,
    validate,
)
from churnml.cli.common import Command, app, main

__all__ = ["app", "main"]

app.command(cls=Command)(validate.validate)
app.command(cls=Command)(features.features)
app.command(cls=Command)(generate.generate)
app.command(cls=Command)(train.train)
app.command(cls=Command)(score.score)
app.command(cls=Command)(promote.promote)
app.command(cls=Command)(promote.rollback)
app.command("risk-list", cls=Command)(risk_list.risk_list)
app.command("retention-contacts", cls=Command)(outcomes.retention_contacts)
app.command(cls=Command)(outcomes.report)
app.command(cls=Command)(serve.serve)
app.command(cls=Command)(run.run)
