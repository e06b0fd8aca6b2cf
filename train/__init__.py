"""Train and evaluate VQA models: ViLT classifiers (soft targets, the Trainer) and BLIP-2.

``python -m train --help`` for training, ``python -m train.evaluate --help`` for scoring.
"""
