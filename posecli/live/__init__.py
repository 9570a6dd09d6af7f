"""Live: lift a camera or a network stream as it arrives, with a bounded delay (``posecli live``).

    stream (ffmpeg) -> frames, each with its timestamp    (source: reader thread, bounded queue)
       -> 2D people (the tracker) -> the followed person   (detection thread)
       -> causal windows (posecli.lifter.stream), rigid bones, trajectory, foot contacts
          over a bounded history -> one JSON line per final frame        (session: lift thread)

- :mod:`posecli.live.source`: ffmpeg on a file, ``-`` (standard input), a camera or a URL;
  frames with their own timestamps; a queue that drops the oldest frame rather than grow.
- :mod:`posecli.live.session`: :class:`LiveSession`, the incremental lift (arrays in, JSON
  records out; no threads, no I/O), and the choice of the person to follow.
- :mod:`posecli.live.run`: the threads, the outputs (lines to a file or standard output, UDP
  datagrams, the usual files at the end), stall / end / Ctrl-C.
"""

#: look-ahead (s): the measured trade-off between delay and accuracy (README, bench_live.py)
DEFAULT_DELAY = 0.2
#: seconds without a frame that end a run (a stalled stream)
DEFAULT_TIMEOUT = 10.0
#: seconds a frame may wait for the detector before it is dropped
DEFAULT_BACKLOG = 0.5
