"""The HTTP gateway (issue #7): uploads become queued jobs; jobs' progress and files are served.

- :mod:`.app`: :func:`create_app`, the FastAPI app (``meshcast gateway`` serves it with uvicorn);
- :mod:`.context`: what the routes share (:class:`~.context.Gateway`);
- :mod:`.auth`: API keys, the rate limit, whose jobs a key sees;
- :mod:`.errors`: the one error shape and its stable codes;
- :mod:`.upload`: the upload, streamed from the request into Redis, then probed;
- :mod:`.links` and :mod:`.schemas`: the job's document and its URLs;
- :mod:`.files`: stored files as responses (byte ranges);
- :mod:`.frame_meshes`: one mesh per person and frame, posed from ``result.npz``'s parameters
  with the bundle's body (``body.onnx``, loaded at start-up);
- :mod:`.metrics`: Prometheus;
- :mod:`.routers`: the routes.

It imports no pipeline beyond probing a video and the body model, and no torch: it queues jobs
by the task's name (:mod:`service.queue`) and serves what the workers stored.
"""

from service.gateway.app import create_app

__all__ = ["create_app"]
