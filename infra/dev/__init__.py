"""``infra dev``: the stage's application running on this machine, on 127.0.0.1 only.

Everything is read from the plan that :func:`infra.harness.run_program` produces for the
stage, never from a second description of the app:

* :mod:`infra.dev.model`      the plan, turned into what runs locally (functions, routes, queues…)
* :mod:`infra.dev.store`      the stage's local folder: secrets, database files, link files
* :mod:`infra.dev.aws`        the embedded AWS (moto's server) and the resources in it
* :mod:`infra.dev.postgres`   a real PostgreSQL per ``Postgres``
* :mod:`infra.dev.functions`  one process per function, reloaded when its files change
* :mod:`infra.dev.api`        one HTTP server per ``ApiGatewayV2`` (payload format 2.0)
* :mod:`infra.dev.workers`    queue pollers, stream readers and topic subscribers
* :mod:`infra.dev.schedules`  functions fired on their EventBridge schedules
* :mod:`infra.dev.nextdev`    ``next dev`` per ``Nextjs``
* :mod:`infra.dev.supervisor` starts them in order, prints the URLs, stops every child
* :mod:`infra.dev.shell`      ``infra shell``: a command with the stage's link environment
"""
