"""The ``churnml`` command line (contract v1, ``shared/contract.md``).

One small module per command over ``churnml.engines`` and the training and serving
functions; ``common`` holds the app, the shared options, the one settings object each
command builds from its flags and the environment, and the error handling of ``main``.
The commands are registered here, in the order ``churnml --help`` lists them.
"""

from __future__ import annotations

from churnml.cli import features, generate, promote, risk_list, run, score, serve, train, validate
from churnml.cli.common import app, main

__all__ = ["app", "main"]

app.command()(validate.validate)
app.command()(features.features)
app.command()(generate.generate)
app.command()(train.train)
app.command()(score.score)
app.command()(promote.promote)
app.command()(promote.rollback)
app.command("risk-list")(risk_list.risk_list)
app.command()(serve.serve)
app.command()(run.run)
