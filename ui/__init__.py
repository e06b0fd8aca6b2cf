"""The web page: layout (``ui.page``), event handlers (``ui.handlers``), words (``ui/text``).

``build_demo(services)`` builds the page around already-loaded models; ``launch_kwargs``
gives ``demo.launch`` its theme, styles, script and limits. Models come from ``vqa_core``.
"""

from .handlers import VQAHandlers
from .page import build_demo, launch_kwargs, page_theme

__all__ = ["VQAHandlers", "build_demo", "launch_kwargs", "page_theme"]
