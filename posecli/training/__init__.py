"""Training and evaluation of the lifter: beside the lift path, never under it.

- :mod:`~posecli.training.cameras`: virtual cameras (look-at, projection, random draws).
- :mod:`~posecli.training.augment`: detector-like 2D noise, limb lengths, speed, tumbles.
- :mod:`~posecli.training.mocap`: CMU motion capture clips and their window sampler.
- :mod:`~posecli.training.datasets`: HumanEva-I and VideoPose3D-format npz data.
- :mod:`~posecli.training.losses`, :mod:`~posecli.training.metrics`: the paper's loss and protocols.
- :mod:`~posecli.training.train`, :mod:`~posecli.training.evaluate`: ``posecli train`` / ``evaluate``.

Nothing in ``posecli lift`` imports this package (a test checks it for every lift route).
"""
