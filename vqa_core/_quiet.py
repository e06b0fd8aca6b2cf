"""Quiet two expected warnings that would otherwise print on every start.

transformers imports torchao (vqa_core's int8 loader) whenever it is installed; on import
torchao warns that its CUDA-only kernels do not load on a CPU build, and torch warns that
torchao uses a deprecated registration. Neither is actionable for a user of this app.
Imported first by ``vqa_core/__init__.py`` so the levels are set before transformers loads.
"""

import logging

logging.getLogger("torchao").setLevel(logging.ERROR)
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
