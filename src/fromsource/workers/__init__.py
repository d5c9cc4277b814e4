"""Build workers: claims (one builder per release), queues (in-process or Celery), the worker.

The embedded default builds in the server process
(:class:`fromsource.workers.queue.InProcessQueue`); with a broker URL,
``serve`` sends requests to ``fromsource worker`` processes through Celery on
Redis (:class:`fromsource.workers.queue.CeleryQueue`).  Either way a release
is built by one builder at a time (:mod:`fromsource.workers.claims`); in a
fleet, each build goes to a worker that has its target, which workers
advertise (:mod:`fromsource.workers.routing`, :mod:`fromsource.workers.registry`).  This
package's top level is light on purpose: the server imports it without
loading the build pipeline or Celery.
"""

from fromsource.workers.request import BuildRequest, RunResult, new_owner

__all__ = ["BuildRequest", "RunResult", "new_owner"]
