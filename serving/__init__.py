"""The models on a Ray Serve cluster, and the page as a thin HTTP client of them.

``serving.deployments`` (needs ``ray[serve]``, see requirements-serve.txt) defines the Serve
application; ``serving.client`` (needs only httpx) gives the page remote answerers with the
same interface as vqa_core's. Nothing is imported here, so the client never pulls in Ray.
"""

__all__: list[str] = []
