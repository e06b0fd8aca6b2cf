"""The models on a Ray Serve cluster, and the page as a thin HTTP client of them.

``serving.deployments`` (needs ``ray[serve]``, see requirements-serve.txt) defines the Serve
application; ``serving.client`` (needs only httpx) gives the page remote answerers with the
same interface as vqa_core's. Nothing is imported here, so the client never pulls in Ray.
"""

__all__ = ["RAY_CLUSTER_ENV"]

# Ray Serve's documented high-throughput mode, for every process of the cluster (set before
# `ray start`; the Makefile, tests, benchmarks and kuberay.yaml do): HAProxy takes HTTP
# straight to each application's ingress replica, which here is the model replica itself,
# instead of Serve's Python proxy and an actor call. On this project's 2-core machine it
# took the remote path's overhead from about 25 ms to about 5 ms (docs/scaling.md).
RAY_CLUSTER_ENV = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
}
